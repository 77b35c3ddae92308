"""feles.worker.heartbeats: one thread beats for the jobs a worker holds, a third of a lease apart."""

from __future__ import annotations

import itertools
import threading
import time

from feles.protocol import Job
from feles.worker.heartbeats import Heartbeats


def job(job_id: str, lease: float) -> Job:
    return Job(
        id=job_id, run_id="r", repetition=0, round=0, phase="fit", device=0, model_version=0, epochs=1,
        batch_size=1, num_examples=1, seed=0, lease_seconds=lease,
    )  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.beats: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, beaten: Job) -> None:
        with self.lock:
            self.beats.append((beaten.id, time.monotonic()))

    def of(self, job_id: str) -> list[float]:
        with self.lock:
            return [at for beaten, at in self.beats if beaten == job_id]


def test_held_jobs_are_beaten_a_third_of_a_lease_apart_and_no_longer_once_let_go() -> None:
    heartbeats, recorder = Heartbeats(), Recorder()
    started = time.monotonic()
    with heartbeats.holding([job("slow", 0.6)], recorder), heartbeats.holding([job("quick", 30.0)], recorder):
        time.sleep(0.75)
    let_go = time.monotonic()
    time.sleep(0.4)
    heartbeats.close()
    beats = recorder.of("slow")
    assert len(beats) >= 2  # due at 0.2, 0.4 and 0.6 s
    assert beats[0] - started >= 0.2  # not before a third of the lease
    assert all(later - earlier >= 0.19 for earlier, later in itertools.pairwise(beats))
    assert all(at <= let_go + 0.05 for at in beats)  # none after the block ended
    assert recorder.of("quick") == []  # its first beat would be due after 10 s


def test_the_thread_stops_on_close_and_starts_again_for_the_next_holding() -> None:
    heartbeats, recorder = Heartbeats(), Recorder()
    with heartbeats.holding([job("a", 0.3)], recorder):
        time.sleep(0.05)
    heartbeats.close()
    assert not any(thread.name == "heartbeats" and thread.is_alive() for thread in threading.enumerate())
    with heartbeats.holding([job("b", 0.3)], recorder):
        time.sleep(0.25)
    heartbeats.close()
    assert recorder.of("b")
