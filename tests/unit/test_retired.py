"""feles.orchestrator.retired: retired job ids are remembered for a while, in bounded memory."""

from __future__ import annotations

from feles.orchestrator.jobs import Completion, JobQueue
from feles.orchestrator.retired import RetiredJobs
from tests.unit.test_jobs import job, result


def test_the_newest_ids_are_remembered_and_the_oldest_forgotten() -> None:
    retired = RetiredJobs(capacity=3)
    retired.add(["a", "b"])
    assert "a" in retired and "c" not in retired
    retired.add(["c"])  # the newer generation is full: it becomes the older one
    retired.add(["d"])
    assert all(job_id in retired for job_id in "abcd")
    retired.add(["e", "f"])  # full again: a, b, c are forgotten
    assert len(retired) == 3
    assert "a" not in retired and all(job_id in retired for job_id in "def")


def test_a_late_answer_to_a_job_taken_long_ago_is_unknown_rather_than_a_duplicate() -> None:
    queue = JobQueue(lease_seconds=10)
    queue._retired = RetiredJobs(capacity=2)
    for round_ in range(3):
        ids = [f"r{round_}.{i}" for i in range(2)]
        queue.submit([job(job_id) for job_id in ids])
        queue.lease_many("w1", 2)
        queue.take(ids)
    assert queue.complete("r2.0", result("r2.0"), {}, "w1") is Completion.DUPLICATE
    assert queue.complete("r0.0", result("r0.0"), {}, "w1") is Completion.UNKNOWN
