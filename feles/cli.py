"""The `feles` command line: run | sweep | orchestrator | worker | validate."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from feles import __version__
from feles.api_token import TOKEN_ENV, TokenError, read_token
from feles.config import SimulationSpec, SpecError, load_spec
from feles.lifetime import stop_with_launcher
from feles.logs import configure_logging
from feles.protocol import SimulationStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from feles.local import LocalRun
    from feles.original_config import LoadedSpec
    from feles.sweep import Cell, SweepSpec
    from feles.sweep_local import SweepRunOptions
    from feles.worker.client import WorkerOptions

app = typer.Typer(
    help="FELES: a FEderated LEarning Simulator of heterogeneous, unreliable devices.",
    no_args_is_help=True,
    add_completion=False,
    # Plain tracebacks: they land in log files and pod logs, where boxes and colours are noise.
    pretty_exceptions_enable=False,
    # Click's plain help: rich's option tables cut long option names short ("--orchestrator-th…") in 80 columns.
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)


@functools.cache
def _console() -> Console:
    """Standard error as rich prints it. rich is imported at the first use: the orchestrator and the workers, which
    print through logging, never import it (~70 ms of their start)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


ConfigArg = Annotated[Path, typer.Argument(help="Simulation spec (YAML).", show_default=False)]
DataDirOption = Annotated[
    str | None,
    typer.Option("--data-dir", envvar="FELES_DATA_DIR", help="Dataset directory (overrides simulation.data_dir)."),
]
ThreadsOption = Annotated[
    int, typer.Option(min=1, help="torch threads per process; fixed so results do not depend on the machine.")
]


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class TorchDevice(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


DeviceOption = Annotated[
    TorchDevice,
    typer.Option(
        envvar="FELES_DEVICE", help="torch device of the workers: cuda when there is a GPU (auto), cpu or cuda."
    ),
]
StackJobsOption = Annotated[
    int,
    typer.Option(
        min=1,
        max=4096,
        help="Train up to this many alike fit jobs of a leased batch together (torch.func); results then match "
        "one-by-one training within float tolerance, not bit for bit (docs/accelerators.md). 1: off.",
    ),
]
RunStackJobsOption = Annotated[
    int,
    typer.Option(
        "--stack-jobs",
        min=1,
        max=4096,
        help="Each worker trains up to this many alike fit jobs together (torch.func; 2x to 10x faster for tiny "
        "jobs on a GPU). Results then match one-by-one training within float tolerance, not bit for bit, and "
        "depend on the number of workers (docs/accelerators.md). 1: off.",
    ),
]
LogLevelOption = Annotated[str, typer.Option(help="Log level: debug, info, warning, error.")]
LogFormatOption = Annotated[LogFormat, typer.Option(help="Log lines as text, or one JSON object per line.")]
TokenFileOption = Annotated[
    Path | None, typer.Option(help=f"File holding the API token (default: ${TOKEN_ENV}).", show_default=False)
]
LeaseOption = Annotated[
    float, typer.Option(min=0.1, help="Seconds before an unfinished job is given to another worker.")
]


def _error(label: str, detail: object = "") -> None:
    """Print `label` in red and `detail` verbatim: no rich markup is read in it, its newlines are kept."""
    from rich.text import Text

    text = Text(label, style="red")
    if str(detail):
        text.append(" ")
        text.append(str(detail))
    _console().print(text, highlight=False)


def _print_plain(message: str) -> None:
    """Print `message` as it is: no rich markup or emoji codes are read in it (paths may hold brackets)."""
    from rich.text import Text

    _console().print(Text(message), highlight=False)


def _load(config: Path) -> SimulationSpec:
    """The spec of a file, with its plug-ins checked; every problem printed with its field path, exit 1."""
    from feles.plugin_checks import plugin_errors

    try:
        spec = load_spec(config)
        errors = plugin_errors(spec)
        if errors:
            raise SpecError(str(config), errors)
    except SpecError as error:
        _error("invalid spec", error)
        raise typer.Exit(1) from None
    return spec


def _load_any(config: Path, check_plugins: bool = True) -> LoadedSpec:
    """Like _load, for a FELES spec or a config written for the original FELES (translated); without
    `check_plugins` only the schema (the plug-in checks import torch)."""
    from feles.original_config import load_any_spec

    try:
        loaded = load_any_spec(config)
        if not check_plugins:
            return loaded
        from feles.plugin_checks import plugin_errors

        errors = plugin_errors(loaded.spec)
        if errors:
            raise SpecError(str(config), errors)
    except SpecError as error:
        _error("invalid spec", error)
        raise typer.Exit(1) from None
    return loaded


@app.command()
def validate(
    config: ConfigArg,
    show_translation: Annotated[
        bool, typer.Option(help="For a config written for the original FELES, print the translated FELES spec.")
    ] = False,
) -> None:
    """Check a spec file; print every error with its field path and exit 1 if there is any.

    A config written for the original FELES is translated: its mapping, key by key, and its warnings are printed.
    """
    loaded = _load_any(config)
    spec, translation = loaded.spec, loaded.translation
    if translation is not None:
        typer.echo(f"{config}: a config written for the original FELES, translated key by key:")
        typer.echo("\n".join(f"  {line}" for line in translation.mapping))
        for line in translation.warnings:
            typer.echo(f"warning: {line}")
        if show_translation:
            typer.echo(translation.to_yaml(str(config)), nl=False)
    devices, rounds = spec.devices.num, spec.simulation.num_rounds
    typer.echo(
        f"{config}: valid ({spec.simulation.dataset}, {spec.algorithms.federated_algorithm}, "
        f"{devices} device{'s' * (devices != 1)}, {rounds} round{'s' * (rounds != 1)})"
    )


@app.command()
def orchestrator(
    config: Annotated[Path, typer.Option("--config", "-c", help="Simulation spec (YAML).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8080,
    port_file: Annotated[Path | None, typer.Option(help="Write the port actually used to this file.")] = None,
    fd: Annotated[
        int | None,
        typer.Option(
            min=0, help="Serve on this inherited listening socket (from feles run, systemd) instead of --host/--port."
        ),
    ] = None,
    lease_seconds: LeaseOption = 120.0,
    data_dir: DataDirOption = None,
    exit_on_completion: Annotated[
        bool, typer.Option(help="Exit when the simulation ends instead of serving its results.")
    ] = False,
    threads: ThreadsOption = 2,
    output_folder: Annotated[
        Path | None, typer.Option(help="Results and checkpoint folder (overrides simulation.output_folder).")
    ] = None,
    token_file: TokenFileOption = None,
    insecure: Annotated[
        bool, typer.Option(help="Serve /v1 without a token (only on a machine nobody else can reach).")
    ] = False,
    fresh: Annotated[
        bool, typer.Option(help="Discard a checkpoint in the output folder instead of resuming from it.")
    ] = False,
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Run the orchestrator alone: the HTTP API and the simulation loop (resumes from a checkpoint)."""
    from feles.orchestrator.checkpoint import CheckpointError
    from feles.orchestrator.listener import InheritedSocketError
    from feles.orchestrator.server import OrchestratorOptions, OutputFolderError, serve
    from feles.plugin_params import PluginParamsError

    stop_with_launcher()
    configure_logging(log_level, log_format.value)
    spec = _load(config)
    if output_folder is not None:
        spec.simulation.output_folder = str(output_folder)
    token = _token(token_file)
    if token is None and not insecure:
        _console().print(f"[red]no API token:[/red] set {TOKEN_ENV} or --token-file (or pass --insecure)")
        raise typer.Exit(2)
    options = OrchestratorOptions(
        host=host,
        port=port,
        port_file=port_file,
        lease_seconds=lease_seconds,
        data_dir=data_dir,
        exit_on_completion=exit_on_completion,
        threads=threads,
        api_token=token,
        fresh=fresh,
        fd=fd,
    )
    try:
        code = serve(spec, options)
    except CheckpointError as error:
        _error("cannot resume:", error)
        raise typer.Exit(1) from None
    except (OutputFolderError, PluginParamsError) as error:
        _error("cannot start:", error)
        raise typer.Exit(1) from None
    except InheritedSocketError as error:
        _error("--fd:", error)
        raise typer.Exit(2) from None
    _exit_at_once(code)


def _exit_at_once(code: int) -> NoReturn:
    """End an orchestrator or worker process without the interpreter's teardown of torch's modules.

    The teardown measured 0.3 s on a quiet machine and up to 3 s on a busy one, all of it after the run's
    end. Nothing is owed by then: the loop has written the results and closed the records; logs are flushed here.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_after_exit_handlers(code: int) -> NoReturn:
    """End `feles run` once its run is over: the exit handlers run, the interpreter's teardown of the modules
    (httpx, rich, pydantic; 0.15 to 0.2 s after the last round) does not."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _token(token_file: Path | None) -> str | None:
    try:
        return read_token(token_file)
    except TokenError as error:
        _error(str(error))
        raise typer.Exit(2) from None


@app.command()
def worker(
    orchestrator_url: Annotated[
        str, typer.Option("--orchestrator", envvar="FELES_ORCHESTRATOR", help="Orchestrator base URL.")
    ],
    name: Annotated[str, typer.Option(help="Worker name (logs, status).")] = "worker",
    data_dir: DataDirOption = None,
    wait: Annotated[float, typer.Option(min=0, max=60, help="Long-poll seconds per job request.")] = 20.0,
    threads: ThreadsOption = 1,
    give_up_after: Annotated[
        float | None, typer.Option(help="Exit 1 after the orchestrator is unreachable this long (default: never).")
    ] = None,
    token_file: TokenFileOption = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Serve Prometheus metrics on this port (default: off).")
    ] = None,
    device: DeviceOption = TorchDevice.AUTO,
    max_jobs: Annotated[
        int,
        typer.Option(
            min=1,
            max=4096,
            help="Most jobs asked for per lease request (the orchestrator decides how many come); 1: one at a time.",
        ),
    ] = 256,
    stack_jobs: StackJobsOption = 1,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Run this many workers, named NAME-0, NAME-1, ...: this process imports torch once and forks the "
            "others, which start at once and share its memory (Linux, macOS). SIGTERM stops them all.",
        ),
    ] = 1,
    log_file: Annotated[
        str | None,
        typer.Option(
            help="Append this process's output (logs, errors) to this file instead of stderr; with --processes, "
            "{index} in it becomes each worker's index.",
            show_default=False,
        ),
    ] = None,
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = LogFormat.TEXT,
) -> None:
    """Run a worker (or --processes of them): register, then train the devices' jobs until the simulation is over.

    With --metrics-port P and --processes, worker i serves its metrics on P + i (0: each a free port).
    """
    # Imports httpx and httpcore: before forking, so that the workers share them rather than import httpcore each.
    from feles.worker.client import WorkerOptions
    from feles.worker.processes import can_fork, run_forked

    stop_with_launcher()
    if processes > 1 and not can_fork():
        _error("--processes above 1 needs a platform that forks (Linux, macOS): start several workers instead")
        raise typer.Exit(2)
    options = WorkerOptions(
        orchestrator=orchestrator_url,
        name=name,
        data_dir=Path(data_dir) if data_dir else None,
        wait=wait,
        threads=threads,
        give_up_after=give_up_after,
        token=_token(token_file),
        metrics_port=metrics_port,
        device=device.value,
        max_jobs=max_jobs,
        stack_jobs=stack_jobs,
    )

    def run_one(index: int) -> int:
        if log_file is not None:
            _output_to(log_file.replace("{index}", str(index)))
        if processes == 1:
            configure_logging(log_level, log_format.value)
            return _run_worker(options)
        process_name = f"{name}-{index}"
        configure_logging(log_level, log_format.value, process_name)
        port = metrics_port + index if metrics_port else metrics_port
        return _run_worker(dataclasses.replace(options, name=process_name, metrics_port=port))

    code = run_one(0) if processes == 1 else run_forked(processes, run_one)
    if code != 0:
        raise typer.Exit(code)
    _exit_at_once(code)


def _run_worker(options: WorkerOptions) -> int:
    """One worker's job loop; its exit code (2: the device asked for is missing; 1: no orchestrator or token)."""
    from feles.worker.accelerator import DeviceUnavailable
    from feles.worker.client import OrchestratorUnavailable, Unauthorized, Worker

    log = logging.getLogger("feles.worker")
    try:
        return Worker(options).run()
    except DeviceUnavailable as error:
        _error(str(error))
        return 2
    except (OrchestratorUnavailable, Unauthorized) as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        log.info("interrupted; worker exits")
        return 130


def _output_to(path: str) -> None:
    """Send this process's stdout and stderr (Python's and the C libraries') to the end of a file."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as error:
        _error(f"--log-file {path}: {error.strerror or error}")
        raise SystemExit(2) from None
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


@app.command()
def run(
    config: ConfigArg,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            max=256,
            help="Worker processes (forked from one start-up, sharing torch's memory, where the platform forks).",
        ),
    ] = 2,
    data_dir: DataDirOption = None,
    lease_seconds: LeaseOption = 120.0,
    threads: ThreadsOption = 1,
    orchestrator_threads: Annotated[
        int,
        typer.Option(
            min=1, help="torch threads of the orchestrator (aggregation); more contend with the workers' cores."
        ),
    ] = 1,
    resume: Annotated[
        bool, typer.Option(help="Continue from the checkpoint in the output folder instead of starting over.")
    ] = False,
    device: DeviceOption = TorchDevice.AUTO,
    give_up_after: Annotated[
        float,
        typer.Option(
            min=1,
            help="Seconds the workers wait for an orchestrator that fails (HTTP 5xx) or does not answer before they "
            "exit; once all have, the run stops with an error (its logs kept).",
        ),
    ] = 120.0,
    stack_jobs: RunStackJobsOption = 1,
) -> None:
    """Run a whole simulation on this machine: orchestrator + N workers on 127.0.0.1."""
    from feles.local import LocalRun, LocalRunError, LocalRunOptions

    # The schema only: the orchestrator checks the plug-ins as it starts (their errors end the run with its log),
    # so this parent, which waits for the run, never imports torch (~1 s and ~250 MiB held to the end).
    config = _spec_to_run(config, _load_any(config, check_plugins=False), resume)
    options = LocalRunOptions(
        config, workers, data_dir, lease_seconds, threads, orchestrator_threads, resume, device.value, give_up_after,
        stack_jobs,
    )  # fmt: skip
    local = LocalRun(options)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _interrupt_on_sigint(local)
    try:
        with RunProgress(local.spec) as progress:

            def on_page(url: str) -> None:  # once the orchestrator and the first workers are started
                _console().print(f"live view: {url}", highlight=False)
                progress.start()

            outcome = local.run(progress.show, on_page=on_page)
    except LocalRunError as error:
        _error("simulation failed:", error)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        where = f"; results so far in {local.results_path}" if local.results_path.exists() else ""
        _print_plain(f"interrupted{where}")
        raise typer.Exit(130) from None
    status = outcome.status
    if status.phase.value != "Succeeded":
        _error("simulation failed:", f"{status.message} (logs in {outcome.log_dir})")
        raise typer.Exit(1)
    value = f"{status.metric_value:.4f}" if status.metric_value is not None else "n/a"
    _console().print(
        f"done in {outcome.wall_seconds:.1f} s: test {status.metric} {value} after {status.round} rounds "
        f"({status.stop_reason}), simulated time {status.simulated_time:.1f} s\n"
        f"results: {outcome.results_path} and {outcome.results_path.with_suffix('.csv')}"
    )
    _exit_after_exit_handlers(0)


def _interrupt_on_sigint(local: LocalRun) -> None:
    """Ctrl-C raises KeyboardInterrupt as usual and also asks the run to stop, so that it stops even if the
    exception is lost; left alone where SIGINT was ignored at start (a background job of a script)."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def on_sigint(signum: int, frame: object) -> None:
        local.request_interrupt()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)


def _spec_to_run(config: Path, loaded: LoadedSpec, resume: bool) -> Path:
    """`config`, or for a config written for the original FELES its translation, written into the output folder
    so that every process of the run reads the same spec (drawn seed included); its warnings printed."""
    from feles.original_config import write_translated_spec

    if loaded.translation is None:
        return config
    try:
        translated = write_translated_spec(config, loaded, resume)
    except OSError as error:
        _error("cannot write the translated spec:", f"{error.filename}: {error.strerror or error}")
        raise typer.Exit(1) from None
    _console().print(
        f"{config}: a config written for the original FELES, translated into {translated}", highlight=False
    )
    for line in loaded.translation.warnings:
        _print_plain(f"warning: {line}")
    return translated


@app.command()
def sweep(
    sweep_path: Annotated[
        Path,
        typer.Argument(
            help="Sweep spec (YAML): a base spec and axes; with --summary also a sweep's output folder.",
            show_default=False,
        ),
    ],
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            "-p",
            min=1,
            max=256,
            help="Cells running at once (default: the sweep's parallelism).",
            show_default=False,
        ),
    ] = None,
    workers_per_run: Annotated[
        int, typer.Option("--workers-per-run", "-w", min=1, max=256, help="Worker processes of each cell.")
    ] = 1,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="The sweep's folder (default: base.simulation.output_folder).", show_default=False
        ),
    ] = None,
    data_dir: DataDirOption = None,
    lease_seconds: LeaseOption = 120.0,
    threads: ThreadsOption = 1,
    fresh: Annotated[
        bool, typer.Option(help="Start every cell over, discarding their checkpoints and results.")
    ] = False,
    retry_failed: Annotated[bool, typer.Option(help="Run the cells that failed before again, from round 1.")] = False,
    stack_jobs: RunStackJobsOption = 1,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every cell's spec and list the grid; run nothing.")
    ] = False,
    summary: Annotated[
        bool,
        typer.Option(
            "--summary",
            "--report",
            help="Print the comparison table of the results so far (and write it); run nothing.",
        ),
    ] = False,
) -> None:
    """Run a grid of simulations on this machine, N at once, and compare them.

    Each cell (one combination of the axes' values) runs as `feles run` would, in <folder>/<cell>/. A re-run
    skips the cells that succeeded and resumes the interrupted ones from their checkpoints; Ctrl-C leaves every
    cell resumable. At the end, a table compares the cells: final and best test metric (accuracy, mae or mse) as
    mean ± std over the seeds, per combination of the other axes (also written as summary.csv and summary.md in the
    folder).

    Example: feles sweep examples/sweep.yaml --parallel 2
    """
    from feles.sweep import is_sweep_folder

    if summary and sweep_path.is_dir():
        _print_comparison(sweep_path)
        return
    sweep_spec, cells = _load_sweep(sweep_path)
    folder = output or Path(sweep_spec.base.simulation.output_folder)
    if not summary:
        from feles.sweep_local import folder_error, folder_problem

        problem = folder_problem(folder)
        if problem is not None:  # before any cell runs, and a dry run says so too
            _error("cannot run the sweep:", folder_error(folder, problem))
            raise typer.Exit(1)
    if dry_run:
        _print_grid(sweep_path, cells, folder)
        return
    if summary:
        if not is_sweep_folder(folder):
            _console().print(f"[red]no sweep in {folder}[/red]: run it first", highlight=False)
            raise typer.Exit(1)
        _print_comparison(folder)
        return
    from feles.sweep_local import SweepRunOptions

    options = SweepRunOptions(
        folder=folder,
        parallel=parallel or sweep_spec.parallelism,
        workers_per_run=workers_per_run,
        data_dir=data_dir,
        lease_seconds=lease_seconds,
        threads=threads,
        fresh=fresh,
        retry_failed=retry_failed,
        stack_jobs=stack_jobs,
    )
    _run_sweep(sweep_spec, cells, options)


def _load_sweep(path: Path) -> tuple[SweepSpec, list[Cell]]:
    """The sweep of a file and its cells, every cell's spec and plug-ins checked; each problem printed, exit 1."""
    from feles.plugin_checks import plugin_errors
    from feles.sweep import expand, load_sweep

    try:
        sweep_spec = load_sweep(path)
        cells = expand(sweep_spec, check=plugin_errors, source=str(path))
    except SpecError as error:
        _error("invalid sweep", error)  # not markup: values may hold brackets
        raise typer.Exit(1) from None
    return sweep_spec, cells


def _print_grid(path: Path, cells: list[Cell], folder: Path) -> None:
    _console().print(f"{path}: valid, {len(cells)} cells into {folder}/", highlight=False)
    for cell in cells:
        values = ", ".join(f"{key}={value}" for key, value in cell.values.items())
        typer.echo(f"{cell.name}\t{values}")


def _run_sweep(sweep_spec: SweepSpec, cells: list[Cell], options: SweepRunOptions) -> None:
    """Run the cells with a live table, then print the comparison; exit 1 if a cell failed, 130 if interrupted."""
    from rich.live import Live

    from feles.sweep import SweepError
    from feles.sweep_local import SweepFolderError, SweepRun, progress_table

    folder = options.folder
    try:
        runner = SweepRun(sweep_spec, cells, options)
    except SweepError as error:
        _error("cannot resume", error)
        raise typer.Exit(1) from None
    try:
        runner.prepare()
    except SweepFolderError as error:
        _error("cannot run the sweep:", error)
        raise typer.Exit(1) from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with Live(
        get_renderable=lambda: progress_table(runner.progress, runner.objective),
        console=_console(),
        refresh_per_second=2,
    ) as live:
        try:
            runner.run(live.refresh)
        except (KeyboardInterrupt, SystemExit):
            live.refresh()
            interrupted = True
        else:
            interrupted = False
    if not _console().is_terminal:  # a file or a pipe: the table's last line (its caption) ends without a newline
        _console().line()
    if interrupted:
        message = f"interrupted: every cell can resume; run the same command again (folder {folder})"
        _console().print(message, markup=False, highlight=False)
        raise typer.Exit(130)
    _print_comparison(folder)
    failed = runner.failed_cells()
    if failed:
        _console().print(f"[red]{len(failed)} cell(s) failed:[/red] {', '.join(failed)} (logs in their folders)")
        raise typer.Exit(1)


def _print_comparison(folder: Path) -> None:
    """Print the comparison of a sweep's folder, write summary.csv and summary.md there."""
    from rich.console import Console

    from feles.sweep_report import comparison, rich_comparison, write_comparison

    try:
        table = comparison(folder)
    except ValueError as error:
        _console().print(f"[red]cannot compare:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    written = write_comparison(table, folder)
    output, rendered = Console(soft_wrap=True), rich_comparison(table, title=f"sweep {folder}")
    if not output.is_terminal:  # a file or a pipe: the table's natural width, nothing cut
        output.width = output.measure(rendered, options=output.options.update_width(10_000)).maximum
    output.print(rendered)
    _console().print(f"written: {', '.join(str(path) for path in written)}", highlight=False)


class RunProgress:
    """A rich progress bar over repetitions x rounds, fed with the orchestrator's status documents.

    It appears at `start` (or the first status): `feles run` starts it once its processes are started, since
    importing rich before would delay them (~70 ms).
    """

    def __init__(self, spec: SimulationSpec) -> None:
        self.rounds = spec.simulation.num_rounds
        self.total = spec.simulation.repetitions * self.rounds
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def start(self) -> None:
        if self.progress is not None:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            console=_console(),
        )
        self.task = self.progress.add_task("starting", total=self.total, metrics="")
        self.progress.start()

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def show(self, status: SimulationStatus) -> None:
        self.start()
        assert self.progress is not None and self.task is not None
        metrics = ""
        if status.metric_value is not None and status.loss is not None:
            name = "acc" if status.metric == "accuracy" else status.metric
            metrics = f"{name} {status.metric_value:.4f}  loss {status.loss:.4f}  sim {status.simulated_time:,.0f} s"
        description = f"rep {status.repetition + 1}/{status.repetitions} round {status.round}/{status.rounds}"
        completed = status.repetition * self.rounds + status.round
        self.progress.update(self.task, completed=completed, description=description, metrics=metrics)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"feles {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """FELES: a FEderated LEarning Simulator of heterogeneous, unreliable devices."""


# --- Kubernetes: the CRD and the operator (feles_operator; imported lazily: the simulator never needs kopf) ---


@app.command()
def crd(
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            "-k",
            help="simulation (FelesSimulation), sweep (FelesSweep) or all (both, as multi-document YAML).",
        ),
    ] = "simulation",
) -> None:
    """Print a CustomResourceDefinition (YAML), generated from the SimulationSpec and SweepSpec schemas."""
    from feles_operator.crd import KINDS, all_crds_yaml

    if kind != "all" and kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join([*KINDS, 'all'])}", param_hint="--kind")
    typer.echo(all_crds_yaml() if kind == "all" else KINDS[kind](), nl=False)


@app.command("operator")
def run_operator(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace", "-n", help="Serve FelesSimulations of this namespace (repeatable).", show_default=False
        ),
    ] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Serve every namespace (needs cluster-wide RBAC).")
    ] = False,
    standalone: Annotated[
        bool,
        typer.Option(
            "--standalone/--peering",
            help="Run alone (one replica), or coordinate with other kopf operators (needs kopf's peering CRDs).",
        ),
    ] = True,
    liveness: Annotated[
        str | None, typer.Option(help="Serve a liveness probe at this URL, e.g. http://0.0.0.0:8080/healthz.")
    ] = None,
    image: Annotated[
        str | None, typer.Option(envvar="FELES_IMAGE", help="Image of simulations without .spec.image.")
    ] = None,
    orchestrator_url: Annotated[
        str | None,
        typer.Option(
            envvar="FELES_ORCHESTRATOR_URL_TEMPLATE",
            help="Base URL of an orchestrator, with {name} and {namespace} (default: its in-cluster Service); "
            "e.g. http://127.0.0.1:8080 through `kubectl port-forward` when the operator runs outside the cluster.",
        ),
    ] = None,
    poll_interval: Annotated[
        float | None,
        typer.Option(envvar="FELES_POLL_INTERVAL", min=0.1, help="Seconds between status polls (default 5)."),
    ] = None,
    network_policy: Annotated[
        bool | None,
        typer.Option(
            "--network-policy/--no-network-policy",
            envvar="FELES_NETWORK_POLICY",
            help="Create a NetworkPolicy per simulation (default: on).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log more.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Log everything, API requests included.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log warnings and errors only.")] = False,
) -> None:
    """Run the Kubernetes operator: FelesSimulation resources become orchestrator and worker pods.

    Uses the in-cluster service account, or else the current kubeconfig context. The same as
    `kopf run --standalone -m feles_operator`; settings also come from FELES_* environment variables.
    """
    from feles_operator.main import run as run_kopf
    from feles_operator.settings import OperatorSettings, SettingsError

    if bool(namespace) == all_namespaces:
        _console().print("[red]give --namespace NAME (repeatable) or --all-namespaces[/red]")
        raise typer.Exit(2)
    try:
        # Handed to kopf as an object; the variables without an option (POD_NAMESPACE, ...) still count.
        settings = OperatorSettings.from_options(
            image=image, orchestrator_url=orchestrator_url, poll_interval=poll_interval, network_policy=network_policy
        )
    except SettingsError as error:
        _console().print(f"[red]invalid setting:[/red] {error}")
        raise typer.Exit(2) from None
    run_kopf(
        settings=settings,
        namespaces=namespace or (),
        all_namespaces=all_namespaces,
        standalone=standalone,
        liveness=liveness,
        verbose=verbose,
        debug=debug,
        quiet=quiet,
    )


# --- Results analysis: tables and plots of results files (feles.analyze; matplotlib is imported lazily) ---


def _analysis_format(value: str) -> str:
    from feles.analysis.tables import TableFormat

    choices = [table_format.value for table_format in TableFormat]
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
    return value


@app.command()
def analyze(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="Results files (results.json) or folders; a folder means every results file under it, recursively.",
            show_default=False,
        ),
    ],
    plots: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the PNG plots (default: a 'plots' folder inside the first RESULTS folder).",
            show_default=False,
        ),
    ] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Draw no plots.")] = False,
    print_table: Annotated[bool, typer.Option("--print/--no-print", help="Print the table on standard output.")] = True,
    table_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            callback=_analysis_format,
            help="Table format: table (for a terminal), csv, json or markdown.",
        ),
    ] = "table",
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            help="Name of a run in the table and legends; repeat once per results file, in the order listed.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(
            help="Test metric to reach for 'rounds to target', in the runs' metric: an accuracy in [0, 1] (reached "
            "at or above it), or a regression run's mae or mse (reached at or below it). Default: each run's "
            "simulation.stop_conds.metric.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write one self-contained HTML report here: comparison table, every figure, each run's spec.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Summarise results: per run, final and best test metric (accuracy, mae or mse), rounds to the target,
    simulated time, energy and failures (mean ± std over repetitions); PNG plots with every run overlaid. Runs
    with device records (devices/ beside results.json) also get fairness, per-device, selection matrix, time
    split and work figures.

    Example: feles analyze runA runB runC --report report.html --format markdown
    """
    from rich.console import Console
    from rich.text import Text

    from feles.analysis.tables import TEXT_RENDERERS, TableFormat, print_rich_table
    from feles.analyze import LoadError, OutputError, TargetError, default_plots_folder
    from feles.analyze import analyze as run_analysis

    folder = None if no_plots else (plots or default_plots_folder(results))
    try:
        outcome = run_analysis(
            results,
            folder,
            label or (),
            target,
            # Text, not markup: labels and paths may hold brackets that rich would read as tags.
            lambda message: _console().print(Text.assemble(("warning:", "yellow"), " ", message), highlight=False),
            report,
        )
    except LoadError as error:
        _error("cannot analyse:", error)
        raise typer.Exit(1) from None
    except OutputError as error:
        _error("cannot write:", error)
        raise typer.Exit(1) from None
    except TargetError as error:
        raise typer.BadParameter(str(error), param_hint="'--target'") from None
    if print_table:
        chosen = TableFormat(table_format)
        if chosen is TableFormat.TABLE:
            print_rich_table(outcome.summaries, Console())
        else:
            typer.echo(TEXT_RENDERERS[chosen](outcome.summaries), nl=False)
    for note in outcome.notes:
        _console().print(f"note: {note}", markup=False, highlight=False)
    if outcome.plots:
        _console().print(f"plots: {', '.join(str(path) for path in outcome.plots)}", markup=False, highlight=False)
    if outcome.report is not None:
        _console().print(f"report: {outcome.report}", markup=False, highlight=False)


data_app = typer.Typer(help="Datasets: download their files (fetch), show where they are (list).", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset: mnist, fashion_mnist, emnist, cifar10 or cifar100.")],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Folder for the files (default: $FELES_DATA_DIR if set, else ${XDG_CACHE_HOME:-~/.cache}/feles/"
            "datasets/NAME, where runs look when no data dir is given).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download a dataset's files from its official source, each checked against its published SHA-256.

    A file lands as NAME.part, renamed only once its hash matches; run again to resume a broken download.
    """
    from feles.data.catalog import UnknownDatasetError, catalog_entry
    from feles.data.fetch import FetchError, fetch_dataset
    from feles.data.location import fetch_dir

    target = fetch_dir(name, directory)
    try:
        fetched = fetch_dataset(catalog_entry(name), target, _console())
    except (UnknownDatasetError, FetchError) as error:
        _error("fetch failed:", error)
        raise typer.Exit(1) from None
    for item in fetched:
        typer.echo(
            f"{item.path}: {'downloaded, SHA-256 checked' if item.downloaded else 'already there, SHA-256 checked'}"
        )
    typer.echo(f"{name}: ready in {target}")


@data_app.command("list")
def data_list(data_dir: DataDirOption = None) -> None:
    """Each downloadable dataset, and the folder its files are found in (or 'missing')."""
    from feles.data.fetch import local_copies
    from feles.data.location import resolve_data_dir

    for name, folder in local_copies(resolve_data_dir(data_dir, None)).items():
        typer.echo(f"{name:<14} {folder if folder is not None else 'missing (feles data fetch ' + name + ')'}")
