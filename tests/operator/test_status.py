"""Status mapping: the orchestrator's /v1/status, the pods and the clock in; the CR's status and events out."""

from __future__ import annotations

from typing import Any

import pytest

from feles.protocol import SimulationPhase, SimulationStatus
from feles_operator.conditions import get_condition
from feles_operator.simulation.status.events import MAX_ROUND_EVENTS
from feles_operator.simulation.status.observation import Observation, PodSummary
from feles_operator.simulation.status.pods import summarize_pods
from feles_operator.simulation.status.schema import FelesSimulationStatus
from feles_operator.simulation.status.transitions import initial_status, invalid_status, next_status
from feles_operator.timestamps import rfc3339

T0 = 1_800_000_000.0


def document(**changes: Any) -> SimulationStatus:
    values: dict[str, Any] = {
        "phase": SimulationPhase.RUNNING,
        "repetition": 0,
        "repetitions": 1,
        "round": 3,
        "rounds": 10,
        "accuracy": 0.712345,
        "loss": 0.81234,
        "simulated_time": 123.456,
        "workers": 4,
        "started_at": T0 - 60,
    }
    values.update(changes)
    return SimulationStatus(**values)


def observe(doc: SimulationStatus | None, now: float = T0, **changes: Any) -> Observation:
    values: dict[str, Any] = {
        "now": now,
        "generation": 1,
        "desired_workers": 4,
        "workers_ready": 4,
        "orchestrator": doc,
        "error": None if doc else "ConnectError: connection refused",
        "unreachable_after": 120.0,
    }
    values.update(changes)
    return Observation(**values)


def pending() -> FelesSimulationStatus:
    return initial_status("demo", "feles.io/simulation=demo,app.kubernetes.io/component=worker", 1, T0 - 100)


def conditions(status: FelesSimulationStatus) -> dict[str, tuple[str, str]]:
    return {item.type: (item.status, item.reason) for item in status.conditions}


def reasons(events: list) -> list[str]:
    return [event.reason for event in events]


def test_initial_status_is_pending() -> None:
    status = pending()
    assert status.phase == "Pending" and status.workers_ready == 0
    assert conditions(status) == {
        "Ready": ("False", "OrchestratorStarting"),
        "Progressing": ("True", "Starting"),
        "Completed": ("False", "Pending"),
        "Failed": ("False", "NoFailure"),
    }
    assert status.dump()["selector"] == "feles.io/simulation=demo,app.kubernetes.io/component=worker"


def test_running_copies_the_orchestrator_status() -> None:
    status, events = next_status(pending(), observe(document()))
    dumped = status.dump()
    assert dumped["phase"] == "Running"
    assert (dumped["round"], dumped["rounds"], dumped["roundProgress"]) == (3, 10, "3/10")
    assert (dumped["repetition"], dumped["repetitions"], dumped["repetitionProgress"]) == (1, 1, "1/1")
    assert (dumped["accuracy"], dumped["loss"], dumped["simulatedTime"]) == (0.7123, 0.8123, 123.5)
    assert (dumped["metric"], dumped["metricValue"]) == ("accuracy", 0.7123)
    assert (dumped["workersReady"], dumped["workersRegistered"]) == (4, 4)
    assert dumped["startTime"] == rfc3339(T0 - 60) and "completionTime" not in dumped
    assert conditions(status) == {
        "Ready": ("True", "OrchestratorReady"),
        "Progressing": ("True", "Training"),
        "Completed": ("False", "Running"),
        "Failed": ("False", "NoFailure"),
    }
    assert get_condition(status, "Progressing").message == "repetition 1/1, round 3/10"
    assert reasons(events) == ["RoundFinished"] * 3 + ["SimulationStarted", "OrchestratorReady"]
    assert events[-3].message.endswith("round 3/10 finished: test accuracy 0.7123, loss 0.8123, simulated time 123.5 s")
    assert events[0].message == "repetition 1/1 round 1/10 finished"


def test_nothing_new_means_no_patch_and_no_event() -> None:
    running, _ = next_status(pending(), observe(document()))
    again, events = next_status(running, observe(document(), now=T0 + 30))
    assert again.dump() == running.dump() and events == []


def test_one_event_per_finished_round() -> None:
    running, _ = next_status(pending(), observe(document(round=3)))
    later, events = next_status(running, observe(document(round=5, accuracy=0.8), now=T0 + 5))
    assert [event.message.split(":")[0] for event in events] == [
        "repetition 1/1 round 4/10 finished",
        "repetition 1/1 round 5/10 finished",
    ]
    # lastTransitionTime moves only when a condition's status does.
    assert get_condition(later, "Ready").last_transition_time == get_condition(running, "Ready").last_transition_time
    _, events = next_status(later, observe(document(repetition=1, repetitions=2, round=1), now=T0 + 9))
    assert reasons(events) == ["RoundFinished"] and events[0].message.startswith("repetition 2/2 round 1/10")
    _, events = next_status(later, observe(document(round=5 + 2 * MAX_ROUND_EVENTS, rounds=100), now=T0 + 9))
    assert len(events) == MAX_ROUND_EVENTS + 1 and "rounds 6-" in events[0].message


@pytest.mark.parametrize("reason", ["RoundsCompleted", "TargetAccuracyReached", "TargetLossReached"])
def test_succeeded(reason: str) -> None:
    running, _ = next_status(pending(), observe(document()))
    finished = document(phase=SimulationPhase.SUCCEEDED, stop_reason=reason, round=7, finished_at=T0 + 50)
    status, events = next_status(running, observe(finished, now=T0 + 60))
    assert status.phase == "Succeeded" and status.stop_reason == reason
    assert status.completion_time == rfc3339(T0 + 50)
    assert conditions(status) == {
        "Ready": ("True", "OrchestratorReady"),
        "Progressing": ("False", reason),
        "Completed": ("True", reason),
        "Failed": ("False", "NoFailure"),
    }
    assert status.message.startswith(f"{reason}: test accuracy 0.7123")
    assert reasons(events) == ["RoundFinished"] * 4 + ["SimulationSucceeded"]
    # Terminal: frozen, whatever the orchestrator says or does not say later.
    assert next_status(status, observe(None, now=T0 + 999)) == (status, [])


def test_a_regression_run_reports_its_error_by_name() -> None:
    mae = document(metric="mae", metric_value=48.71234, accuracy=None, loss=3456.789)
    status, events = next_status(pending(), observe(mae))
    dumped = status.dump()
    assert (dumped["metric"], dumped["metricValue"], dumped["loss"]) == ("mae", 48.7123, 3456.789)
    assert "accuracy" not in dumped
    assert events[2].message.endswith("round 3/10 finished: test mae 48.7123, loss 3456.7890, simulated time 123.5 s")
    finished = document(
        metric="mae", metric_value=41.5, accuracy=None, phase=SimulationPhase.SUCCEEDED, stop_reason="RoundsCompleted"
    )
    done, events = next_status(status, observe(finished, now=T0 + 60))
    assert done.message.startswith("RoundsCompleted: test mae 41.5000, loss")
    assert events[-1].reason == "SimulationSucceeded" and "test mae 41.5000" in events[-1].message
    assert "accuracy" not in " ".join(event.message for event in events)


def test_before_the_first_round_the_metric_is_named_and_not_available() -> None:
    first = document(metric="mse", metric_value=None, accuracy=None, round=0, phase=SimulationPhase.FAILED)
    status, _ = next_status(pending(), observe(first))
    assert status.dump()["metric"] == "mse" and "metricValue" not in status.dump()
    assert status.message.startswith("finished: test mse n/a, loss")


def test_failed() -> None:
    running, _ = next_status(pending(), observe(document()))
    crashed = document(phase=SimulationPhase.FAILED, message="RuntimeError: out of memory", finished_at=T0 + 1)
    status, events = next_status(running, observe(crashed))
    assert status.phase == "Failed" and status.message == "RuntimeError: out of memory"
    assert conditions(status)["Failed"] == ("True", "SimulationFailed")
    assert conditions(status)["Progressing"] == ("False", "SimulationFailed")
    assert get_condition(status, "Failed").message == "RuntimeError: out of memory"
    assert [(event.type, event.reason) for event in events] == [("Warning", "SimulationFailed")]


def test_invalid_spec() -> None:
    status = invalid_status([("spec.simulation.devices.num", "must be >= 1")], 3, T0)
    assert status.phase == "Failed" and status.observed_generation == 3
    assert status.message == "invalid spec: spec.simulation.devices.num: must be >= 1"
    assert conditions(status)["Failed"] == ("True", "InvalidSpec")
    assert status.completion_time == rfc3339(T0)


def test_a_short_silence_is_no_news_a_long_one_is() -> None:
    running, _ = next_status(pending(), observe(document()))
    silent, events = next_status(running, observe(None, now=T0 + 10))
    assert silent.phase == "Running" and silent.unreachable_since == rfc3339(T0 + 10)
    assert conditions(silent)["Ready"] == ("True", "OrchestratorReady") and events == []
    long_silent, events = next_status(silent, observe(None, now=T0 + 10 + 121))
    ready = get_condition(long_silent, "Ready")
    assert (ready.status, ready.reason) == ("False", "OrchestratorUnreachable")
    assert ready.message == "/v1/status has not answered for 121 s: ConnectError: connection refused"
    assert [(event.type, event.reason) for event in events] == [("Warning", "OrchestratorUnreachable")]
    back, events = next_status(long_silent, observe(document(), now=T0 + 200))
    assert back.unreachable_since is None and "unreachableSince" not in back.dump()
    assert reasons(events) == ["OrchestratorReady"]


def test_never_reached_stays_starting_until_the_grace_ends() -> None:
    status, events = next_status(pending(), observe(None, now=T0))
    assert conditions(status)["Ready"] == ("False", "OrchestratorStarting") and events == []
    status, events = next_status(status, observe(None, now=T0 + 500))
    assert conditions(status)["Ready"] == ("False", "OrchestratorUnreachable")
    assert status.phase == "Pending"


def crash_looping(name: str, component: str, reason: str = "CrashLoopBackOff", owner: str = "demo") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"feles.io/simulation": owner, "app.kubernetes.io/component": component}},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "restartCount": 5,
                    "state": {"waiting": {"reason": reason, "message": "back-off 5m0s"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                }
            ],
        },
    }


def test_pod_failures() -> None:
    pods = [
        crash_looping("demo-orchestrator-abc", "orchestrator"),
        crash_looping("demo-worker-1", "worker", "ImagePullBackOff"),
        {
            "metadata": {
                "name": "demo-worker-0",
                "labels": {"feles.io/simulation": "demo", "app.kubernetes.io/component": "worker"},
            },
            "status": {"phase": "Running", "containerStatuses": [{"restartCount": 1, "state": {"running": {}}}]},
        },
        {
            "metadata": {
                "name": "demo-worker-2",
                "labels": {"feles.io/simulation": "demo", "app.kubernetes.io/component": "worker"},
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
                ],
            },
        },
        crash_looping("other-worker-0", "worker", owner="other"),  # another simulation's pod (a list without selectors)
        {
            "metadata": {
                "name": "evicted",
                "labels": {"feles.io/simulation": "demo", "app.kubernetes.io/component": "worker"},
            },
            "status": {"phase": "Failed", "reason": "Evicted", "message": "low memory"},
        },
    ]
    summary = summarize_pods(pods, "demo")
    assert (summary.orchestrator_restarts, summary.worker_restarts) == (5, 6)
    assert [(item.pod, item.reason) for item in summary.failures] == [
        ("demo-orchestrator-abc", "CrashLoopBackOff"),
        ("demo-worker-1", "ImagePullBackOff"),
        ("demo-worker-2", "Unschedulable"),
        ("evicted", "Evicted"),
    ]
    assert summary.failures[0].message == (
        "CrashLoopBackOff (last exit: OOMKilled, code 137): back-off 5m0s; 5 restart(s)"
    )
    # A crash-looping orchestrator makes Ready false at once, with the pod's reason.
    status, events = next_status(pending(), observe(None, now=T0, pods=summary))
    assert conditions(status)["Ready"] == ("False", "CrashLoopBackOff")
    assert get_condition(status, "Ready").message.startswith("pod demo-orchestrator-abc: CrashLoopBackOff")
    assert status.dump()["restarts"] == {"orchestrator": 5, "workers": 6}
    assert [item["reason"] for item in status.dump()["podFailures"]] == [
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "Unschedulable",
        "Evicted",
    ]
    assert [(event.type, event.reason) for event in events] == [
        ("Warning", "CrashLoopBackOff"),
        ("Warning", "ImagePullBackOff"),
        ("Warning", "Unschedulable"),
        ("Warning", "Evicted"),
    ]
    again, events = next_status(status, observe(None, now=T0 + 5, pods=summary))
    assert events == []  # the same failures: no new events
    healed, _ = next_status(again, observe(document(), now=T0 + 9, pods=PodSummary()))
    assert "podFailures" not in healed.dump()


def test_finished_workers_are_no_failures() -> None:
    done = crash_looping("demo-worker-0", "worker")
    done["status"]["containerStatuses"][0]["lastState"] = {"terminated": {"reason": "Completed", "exitCode": 0}}
    assert summarize_pods([done], "demo").failures == ()
    failing = summarize_pods([crash_looping("demo-worker-1", "worker")], "demo")
    running, _ = next_status(pending(), observe(document()))
    finished = document(phase=SimulationPhase.SUCCEEDED, stop_reason="RoundsCompleted", finished_at=T0)
    status, events = next_status(running, observe(finished, pods=failing))
    assert "podFailures" not in status.dump() and "CrashLoopBackOff" not in reasons(events)


def test_scaled_to_zero_while_running() -> None:
    status, _ = next_status(pending(), observe(document(), desired_workers=0, workers_ready=0))
    assert conditions(status)["Progressing"] == ("False", "ScaledToZero")


def test_status_round_trips_through_the_api_form() -> None:
    status, _ = next_status(pending(), observe(document()))
    assert FelesSimulationStatus.parse(status.dump()) == status
    assert FelesSimulationStatus.parse({"phase": "Running", "kopf": {"x": 1}}).phase == "Running"
