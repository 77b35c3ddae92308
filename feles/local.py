"""The embedded runner: one orchestrator and N worker processes on 127.0.0.1, stopped cleanly at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from feles.api_token import TOKEN_ENV, generate_token
from feles.config import SimulationSpec, load_spec
from feles.http_transport import load_httpx
from feles.lifetime import PARENT_PID_ENV
from feles.orchestrator.listener import bind_socket
from feles.protocol import API_PREFIX, SimulationPhase, SimulationStatus
from feles.worker.processes import can_fork

if TYPE_CHECKING:
    import httpx

#: Seconds a process gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 10.0
STARTUP_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.5
#: The orchestrator's live page (feles.orchestrator.web.PAGE_PATH; not imported: it pulls in FastAPI).
LIVE_PAGE = "/ui"
#: Most seconds the orchestrator may outlive the end until an open live page (it polls every second) has seen it:
#: it waits only until the page's next poll, and 2 s were sometimes too few for a browser on a loaded machine.
LIVE_PAGE_GRACE_SECONDS = 5.0
#: A page that polled within these seconds is open (it backs off to 10 s only when polls fail).
LIVE_PAGE_OPEN_SECONDS = 3.0
#: Status polls while waiting for an open page to see the end.
PAGE_POLL_SECONDS = 0.1


class LocalRunError(RuntimeError):
    """A part of the local run failed; the message says which and shows its last log lines."""


@dataclass(frozen=True)
class LocalRunOptions:
    config: Path
    workers: int = 2
    data_dir: str | None = None
    lease_seconds: float = 120.0
    threads: int = 1
    orchestrator_threads: int = 1
    resume: bool = False
    device: str | None = None  # the workers' --device; None: theirs ($FELES_DEVICE, else auto)
    # Workers exit after the orchestrator has failed (5xx) or been unreachable this long; once all have, the run
    # ends with an error instead of waiting forever on an orchestrator that is up but cannot hand out jobs.
    give_up_after: float = 120.0
    # The workers' --stack-jobs: alike fit jobs of a leased batch trained together (within float tolerance of one
    # by one, and so depending on which jobs meet on a worker); 1: off, bit for bit.
    stack_jobs: int = 1


@dataclass(frozen=True)
class LocalRunOutcome:
    status: SimulationStatus
    results_path: Path
    log_dir: Path
    wall_seconds: float


class LocalRun:
    """Starts the processes, follows the orchestrator's status and stops everything on exit."""

    def __init__(self, options: LocalRunOptions) -> None:
        self.options = options
        self.spec: SimulationSpec = load_spec(options.config)
        output = Path(self.spec.simulation.output_folder)
        self.results_path = output / self.spec.simulation.output_file
        self.log_dir = output / "logs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # One token per run, handed to the children through the environment (never on a command line).
        self.token = generate_token()
        # Set by request_interrupt (feles run's SIGINT handler): the follow loop stops at its next poll, also when
        # the KeyboardInterrupt the handler raised was lost (one raised inside a finalizer is only printed).
        self.interrupt_requested = threading.Event()

    def request_interrupt(self) -> None:
        """Stop the run at the next poll, as a KeyboardInterrupt would (the processes stopped, the results kept)."""
        self.interrupt_requested.set()

    def run(
        self,
        on_status: Callable[[SimulationStatus], None] = lambda status: None,
        on_page: Callable[[str], None] | None = None,
    ) -> LocalRunOutcome:
        """Run to the end; `on_page` gets the live page's URL once the orchestrator listens."""
        started = time.monotonic()
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            folder = self.spec.simulation.output_folder
            reason = error.strerror or error
            raise LocalRunError(f"output folder {folder!r} cannot hold the results: {reason}") from None
        with ExitStack() as stack:
            stack.callback(self.stop)
            url = self._start_orchestrator()
            # The socket already listens: workers start now, importing torch while the orchestrator does the same;
            # their first requests wait in the socket's backlog.
            start_the_others = self._start_workers(url)
            if on_page is not None:  # after the processes' start, which printing (rich's import) would delay
                # The token rides in the fragment, which a browser never sends: it stays out of access logs.
                on_page(f"{url}{LIVE_PAGE}#token={self.token}")
            status = self._follow(url, on_status, start_the_others)
            wall_seconds = time.monotonic() - started
            if page_is_open(status, time.time()):
                self._let_the_page_see_the_end(url)
        return LocalRunOutcome(status, self.results_path, self.log_dir, wall_seconds)

    def _spawn(self, name: str, arguments: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        log_file = (self.log_dir / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "feles", *arguments]
        # PARENT_PID_ENV: the children stop when this process dies, even by SIGKILL, which it cannot pass on.
        environment = {**os.environ, TOKEN_ENV: self.token, PARENT_PID_ENV: str(os.getpid())}
        self.processes[name] = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=environment, pass_fds=pass_fds
        )
        log_file.close()

    def _start_orchestrator(self) -> str:
        """Bind a free port on 127.0.0.1 here and hand the listening socket to the orchestrator; its URL."""
        with bind_socket("127.0.0.1", 0) as sock:
            arguments = [
                "orchestrator",
                "--config",
                str(self.options.config),
                "--fd",
                str(sock.fileno()),
                "--lease-seconds",
                str(self.options.lease_seconds),
                "--threads",
                str(self.options.orchestrator_threads),
            ]
            if not self.options.resume:
                arguments.append("--fresh")
            if self.options.data_dir:
                arguments += ["--data-dir", self.options.data_dir]
            self._spawn("orchestrator", arguments, pass_fds=(sock.fileno(),))
            return f"http://127.0.0.1:{sock.getsockname()[1]}"

    def _start_workers(self, url: str) -> Callable[[], None]:
        """Start the workers, or the first of them; what starts the others once the orchestrator answers."""
        workers = self.options.workers
        if workers > 1 and can_fork():
            # One process imports torch once and forks the others: all are ready about when one alone would
            # be, and they share the imports' memory. Each writes its own log, as separate processes would.
            log_file = str(self.log_dir / "worker-{index}.log")
            for index in range(1, workers):  # new logs, as _spawn makes worker-0's: a rerun's must not add up
                (self.log_dir / f"worker-{index}.log").write_bytes(b"")
            self._spawn("worker-0", [*self._worker_arguments(url, "worker"), "--processes", str(workers),
                                     "--log-file", log_file])  # fmt: skip
            return lambda: None
        # Separate processes: as many now as leave the orchestrator a core of its own, the others later.
        early = early_workers(workers, available_cores())
        for index in range(early):
            self._start_worker(url, index)

        def start_the_others() -> None:
            for index in range(early, workers):
                self._start_worker(url, index)

        return start_the_others

    def _start_worker(self, url: str, index: int) -> None:
        self._spawn(f"worker-{index}", self._worker_arguments(url, f"worker-{index}"))

    def _worker_arguments(self, url: str, name: str) -> list[str]:
        arguments = ["worker", "--orchestrator", url, "--name", name, "--threads", str(self.options.threads),
                     "--give-up-after", str(self.options.give_up_after)]  # fmt: skip
        if self.options.device:
            arguments += ["--device", self.options.device]
        if self.options.stack_jobs > 1:
            arguments += ["--stack-jobs", str(self.options.stack_jobs)]
        if self.options.data_dir:
            arguments += ["--data-dir", self.options.data_dir]
        return arguments

    def _follow(
        self, url: str, on_status: Callable[[SimulationStatus], None], on_ready: Callable[[], None]
    ) -> SimulationStatus:
        """Poll the orchestrator's status until the run ends; `on_ready` runs once, when it first answers."""
        answered, deadline = False, time.monotonic() + STARTUP_TIMEOUT_SECONDS
        with _status_client(url, self.token, timeout=10) as http:
            while True:
                if self.interrupt_requested.is_set():
                    raise KeyboardInterrupt
                self._check_alive("orchestrator")
                status = _fetch_status(http)
                if status is None and not answered and time.monotonic() > deadline:
                    raise LocalRunError(self._with_log("orchestrator", "did not answer in time"))
                if status is not None:
                    if not answered:
                        on_ready()
                    answered = True
                    on_status(status)
                    if _finished(status):
                        return status
                if all(self.processes[name].poll() is not None for name in self._worker_names()):
                    # Workers exit once the simulation is over: look at the status once more before blaming them.
                    status = _fetch_status(http)
                    if status is not None and _finished(status):
                        on_status(status)
                        return status
                    orchestrator_log = self.log_dir / "orchestrator.log"
                    raise LocalRunError(
                        self._with_log(self._worker_names()[0], "every worker has exited")
                        + f"\n(the orchestrator's log: {orchestrator_log})"
                    )
                self._pause()

    def _pause(self) -> None:
        """POLL_SECONDS, or less: until a worker exits, which they do as soon as the simulation ends."""
        running = [self.processes[name] for name in self._worker_names() if self.processes[name].poll() is None]
        if not running:
            time.sleep(POLL_SECONDS)
            return
        with suppress(subprocess.TimeoutExpired):
            running[0].wait(timeout=POLL_SECONDS)

    def _let_the_page_see_the_end(self, url: str) -> None:
        """Keep the orchestrator up until the open live page has polled once after the end (at most the grace)."""
        deadline = time.monotonic() + LIVE_PAGE_GRACE_SECONDS
        with _status_client(url, self.token, timeout=2) as http:
            while time.monotonic() < deadline:
                status = _fetch_status(http)
                if status is None or page_saw_the_end(status):
                    return
                time.sleep(PAGE_POLL_SECONDS)

    def _worker_names(self) -> list[str]:
        return [name for name in self.processes if name.startswith("worker-")]

    def _check_alive(self, name: str) -> None:
        code = self.processes[name].poll()
        if code is not None:
            raise LocalRunError(self._with_log(name, f"exited with code {code}"))

    def _with_log(self, name: str, problem: str, lines: int = 25) -> str:
        path = self.log_dir / f"{name}.log"
        tail = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        body = "\n".join(f"  | {line}" for line in tail)
        return f"{name} {problem} (log: {path})" + (f"\n{body}" if body else "")

    def stop(self) -> None:
        """SIGTERM every process still running, then SIGKILL those that ignore it."""
        running = [process for process in self.processes.values() if process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def early_workers(workers: int, cores: int) -> int:
    """How many workers start with the orchestrator: as many as leave it a core of its own (at least one).

    Importing torch and building the run takes each process about 1.7 s of CPU. Three processes doing it at
    once on 2 cores were all ready only after 2.9 s (bench/light.py: the first job at 3.1 s); the orchestrator
    and one worker alone are ready sooner, and the later workers' imports overlap the first rounds.
    """
    return min(workers, max(1, cores - 1))


def _status_client(url: str, token: str, timeout: float) -> httpx.Client:
    """A client of the orchestrator's API. httpx is imported here, after the processes have started: at the top
    of this module it delayed them by its import (~75 ms)."""
    httpx = load_httpx()
    # verify=False: plain http to 127.0.0.1, and the CA bundle took 24 to 100 ms of start-up to load.
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=url, timeout=timeout, headers=headers, verify=False)


def _fetch_status(http: httpx.Client) -> SimulationStatus | None:
    """The orchestrator's status; None while it does not answer, or answers with anything but a status."""
    import httpx

    try:
        response = http.get(f"{API_PREFIX}/status")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    try:
        return SimulationStatus.model_validate_json(response.content)
    except ValidationError:
        return None


def page_is_open(status: SimulationStatus, now: float) -> bool:
    """Whether a live page polled recently: only then is the end worth waiting for (nobody else watches)."""
    return status.page_polled_at is not None and now - status.page_polled_at <= LIVE_PAGE_OPEN_SECONDS


def page_saw_the_end(status: SimulationStatus) -> bool:
    """Whether the live page has been sent the finished run's status, so that it shows it.

    Not "polled after the end": the orchestrator noted a poll as it began, and stopped at once, it sometimes
    exited before the answer went out, and the page (which stops polling at the end) never showed the end.
    """
    return status.page_saw_end


def _finished(status: SimulationStatus) -> bool:
    return status.phase in (SimulationPhase.SUCCEEDED, SimulationPhase.FAILED)
