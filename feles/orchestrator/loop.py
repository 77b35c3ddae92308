"""The simulation loop: repetitions x rounds of plan, dispatch, aggregate, evaluate, record, stop check.

A round, as in Flower's configure -> send -> aggregate: `plan_phase` decides the fit phase (pure), its jobs go
out through the JobRunner, the algorithm aggregates in device-id order, then the eval phase is planned and its
jobs go out with the test split's shards and the next round's fit jobs: all three need the new model and
nothing of each other's results, so a round waits for one phase end, not two, and the workers train the next
round while the loop records this one (results, checkpoint, progress). Nothing the next round's plan reads
comes from an evaluation (history holds fit phases only), so its plan is the one it would be made after it;
when the round meets a stop condition, the next round's fit is withdrawn unused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from feles.algorithms import DeviceUpdate, build_server, resolve_algorithm
from feles.config import SimulationSpec
from feles.data import DataRequest, load_dataset, partition_devices, resolve_data_dir, task_errors, task_of_dataset
from feles.devices import CostModel, DevicePopulation, RoundConditions, federation_repetition
from feles.evaluation import Evaluation, combine, metric_reached
from feles.logs import FIELDS
from feles.models import build_model, initialize_model
from feles.orchestrator.checkpoint import Checkpoint, encode_checkpoint, write_checkpoint
from feles.orchestrator.job_block import JobBlock
from feles.orchestrator.model_store import ModelStore
from feles.orchestrator.outcomes import PhaseOutcome, RoundOutcome
from feles.orchestrator.planning import DeviceState, PhasePlan, PhaseStrategies, plan_phase, spend_energy
from feles.orchestrator.records import RecordsWriter
from feles.orchestrator.results import RepetitionSummary, ResultsDocument, RoundRecord
from feles.orchestrator.round_jobs import device_jobs, job_template, shard_jobs
from feles.orchestrator.round_writer import RoundWriter
from feles.orchestrator.runner import JobRunner, Outcomes, SimulationStopped
from feles.orchestrator.state import Progress
from feles.protocol import Job, Phase, SimulationPhase, encode_tensors, split_extra
from feles.seeding import torch_seed
from feles.strategies.history import DeviceHistory

log = logging.getLogger("feles.orchestrator")

__all__ = ["RunParts", "SimulationLoop", "SimulationStopped"]


@dataclass
class Repetition:
    """The state of the repetition being simulated."""

    index: int
    population: DevicePopulation
    history: DeviceHistory
    model: torch.nn.Module
    test_size: int
    simulated_time: float = 0.0
    energy: float = 0.0

    @property
    def model_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.model.parameters())


@dataclass(frozen=True)
class HandedOutFit:
    """A round's fit phase, planned and handed out; `since` is when the round began on the wall clock (when
    the previous round ended, for a fit handed out during it)."""

    conditions: RoundConditions
    state: DeviceState
    costs: CostModel
    plan: PhasePlan
    jobs: JobBlock
    since: float


@dataclass(frozen=True)
class RunParts:
    """What the loop reads and writes of a run, and nothing else of the orchestrator."""

    spec: SimulationSpec
    run_id: str
    model_name: str
    runner: JobRunner
    models: ModelStore
    progress: Progress
    results: ResultsDocument


class SimulationLoop:
    """Runs the whole simulation: the runner's workers do the device jobs, the loop everything else."""

    def __init__(self, run: RunParts, data_dir: str | None = None, checkpoint: Checkpoint | None = None) -> None:
        self.run_parts = run
        self.spec = run.spec
        self.runner, self.models, self.results, self.progress = run.runner, run.models, run.results, run.progress
        self.data_dir = data_dir
        self.checkpoint = checkpoint
        self.server = build_server(self.spec.algorithms, num_devices=self.spec.devices.num)
        self.fit_model_copies = resolve_algorithm(self.spec.algorithms.federated_algorithm).fit_model_copies
        self.phases = {
            Phase.FIT: PhaseStrategies(self.spec.algorithms.fit),
            Phase.EVAL: PhaseStrategies(self.spec.algorithms.eval),
        }
        self.records = RecordsWriter(self.spec)
        self.round_writer = RoundWriter()

    def stop(self) -> None:
        """Stop from another thread: the round in progress ends with SimulationStopped."""
        self.runner.stop()

    def run(self) -> None:
        """Run (or resume) every repetition; the outcome lands in the progress and the results files."""
        self.progress.phase, self.progress.started_at = SimulationPhase.RUNNING, time.time()
        try:
            first = self._restore_results()
            if not (self.checkpoint and self.checkpoint.finished):
                for repetition in range(first, self.spec.simulation.repetitions):
                    resume = self.checkpoint if repetition == first else None
                    self._run_repetition(repetition, resume)
            self._finish(SimulationPhase.SUCCEEDED, "")
        except SimulationStopped:
            log.info("simulation stopped before it finished")
            self._note_interrupted()
        except Exception as error:  # the loop must report any failure, not die silently in its thread
            log.exception("simulation failed")
            self._finish(SimulationPhase.FAILED, f"{type(error).__name__}: {error}")
        finally:
            self.runner.stop()
            self.round_writer.close()
            self.records.close()

    def _restore_results(self) -> int:
        """Load the results of a checkpoint, if any; the repetition to continue with."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            self.records.discard_from(0, 0)
            # The previous run's results files go with its records and checkpoint: the folder never shows one
            # run's results beside another's records, even when this run ends before its first round.
            self.results.write()
            return 0
        if not checkpoint.finished:
            self.records.discard_from(checkpoint.repetition, checkpoint.next_round)
        self.results.restore(checkpoint.results)
        if self.results.rounds:
            self._report(self.results.rounds[-1])
        summaries = self.results.repetitions
        self.progress.stop_reason = summaries[-1].stop_reason if summaries else None
        log.info(
            "resuming run %s at repetition %d round %d",
            checkpoint.run_id[:8],
            checkpoint.repetition,
            checkpoint.next_round,
        )
        return checkpoint.repetition

    def _finish(self, phase: SimulationPhase, message: str) -> None:
        """Write the final results and end in `phase`; a failed write ends the run in Failed, never Running."""
        self.round_writer.wait()  # the last round's files first (a failure among them raises here)
        self.results.status = "succeeded" if phase is SimulationPhase.SUCCEEDED else "failed"
        self.results.message = message
        try:
            self.results.write()
        except Exception as error:  # a full disk or an unwritable folder: still report an end
            log.error("cannot write the results: %s", error)
            problem = f"cannot write the results: {type(error).__name__}: {error}"
            phase, message = SimulationPhase.FAILED, f"{message}; {problem}" if message else problem
        self.progress.message, self.progress.finished_at = message, time.time()
        self.progress.phase = phase

    def _note_interrupted(self) -> None:
        """Say in the results files that the run stopped before its end (its checkpoint resumes it), rather than
        leave them saying it runs."""
        try:
            self.round_writer.wait()
            self.results.status = "interrupted"
            self.results.message = "stopped before the end: resuming continues after the last recorded round"
            self.results.write()
        except Exception as error:  # stopping goes on: the checkpoint, not these files, is what resumes
            log.error("cannot note the interruption in the results: %s", error)

    def _start_repetition(self, index: int) -> Repetition:
        spec = self.spec
        mismatches = task_errors(spec.simulation.dataset, task_of_dataset(spec.simulation.dataset), spec)
        if mismatches:
            raise ValueError("; ".join(f"{path}: {message}" for path, message in mismatches))
        population = DevicePopulation.draw(spec, index)
        data_dir = resolve_data_dir(self.data_dir, spec.simulation.data_dir)
        # The federation (data, partitions, initial weights) is repetition 0's with identical_repetitions.
        federation = federation_repetition(spec, index)
        dataset = load_dataset(
            spec.simulation.dataset,
            DataRequest(
                spec.simulation.seed, federation, population.data_sizes, data_dir, spec.simulation.dataset_params
            ),
        )
        partitions = partition_devices(
            dataset, population.data_sizes, spec.data.non_iid_partitions, spec.data.mislabelling_percentage,
            spec.simulation.seed, federation,
        )  # fmt: skip
        self.records.write_population(index, population, partitions.label_counts(dataset.num_classes))
        model = build_model(self.run_parts.model_name, dataset.input_shape, dataset.num_classes)
        initialize_model(model, spec.simulation.initializer, torch_seed(spec.simulation.seed, "init", federation))
        self.server = build_server(spec.algorithms, num_devices=spec.devices.num)
        self.models.publish(model.state_dict())
        return Repetition(index, population, DeviceHistory.empty(spec.devices.num), model, len(dataset.test.y))

    def _resume_repetition(self, rep: Repetition, checkpoint: Checkpoint) -> int:
        """Put the checkpoint's model, server state and history in place; the next round to run."""
        self.models.restore(checkpoint.weights, checkpoint.model_version)
        self.server.load_state_dict(checkpoint.server_state)
        rep.history = DeviceHistory.restore(checkpoint.history)
        rep.simulated_time, rep.energy = checkpoint.simulated_time, checkpoint.energy
        return checkpoint.next_round

    def _run_repetition(self, index: int, resume: Checkpoint | None) -> None:
        if resume is not None and resume.next_round == 0:
            # Resumed at a repetition boundary: versions go on from the checkpoint's, as in an undisturbed run.
            self.models.continue_after(resume.model_version)
        rep = self._start_repetition(index)
        first = self._resume_repetition(rep, resume) if resume is not None and resume.next_round > 0 else 0
        num_rounds = self.spec.simulation.num_rounds
        fit: HandedOutFit | Exception | None = self._hand_out_fit(rep, first)
        for round_ in range(first, num_rounds):
            assert isinstance(fit, HandedOutFit)  # an exception was raised at the end of the previous round
            outcome, fit = self._run_round(rep, fit, round_ + 1 < num_rounds)
            record = round_record(rep, outcome, self.models.version)
            reason = self._stop_reason(record) or ("RoundsCompleted" if round_ + 1 == num_rounds else None)
            self._record(rep, outcome, record, reason)
            if reason:
                if isinstance(fit, HandedOutFit):
                    self.runner.take([fit.jobs])  # the next round's fit, handed out ahead: withdrawn unused
                return
            if isinstance(fit, Exception):
                raise fit  # planning the next round failed: this round is recorded first

    def _hand_out_fit(self, rep: Repetition, round_: int, after: Sequence[JobBlock] = ()) -> HandedOutFit:
        """Plan a round's fit phase and hand its jobs out, behind the blocks `after` in one hand-out (the loop takes
        their outcomes later)."""
        conditions = RoundConditions.draw(self.spec, rep.population, rep.index, round_)
        state = DeviceState(rep.population, conditions, conditions.energy.copy(), rep.history)
        costs = CostModel.of(self.spec, rep.model_parameters, self.fit_model_copies)
        plan = self._plan(rep, round_, Phase.FIT, state, costs)
        jobs = self._device_jobs(rep, plan)
        payloads = self._payloads(jobs)
        if payloads:
            jobs = jobs.with_tensors(i for i, job_id in enumerate(jobs.ids) if job_id in payloads)
        self.runner.submit([*after, jobs], payloads)
        return HandedOutFit(conditions, state, costs, plan, jobs, time.monotonic())

    def _run_round(
        self, rep: Repetition, fit: HandedOutFit, more: bool
    ) -> tuple[RoundOutcome, HandedOutFit | Exception | None]:
        """Finish the round whose fit is out: aggregate, evaluate; and hand out the next round's fit (when `more`)
        with the evaluation, as both need the new model and nothing of each other. The round waits for one phase
        end, and the workers train the next round while the loop records this one.

        Where planning the next round fails (a plug-in that raises), this round still ends, and its error comes
        back in place of the next round's fit, for the loop to raise once this round is recorded."""
        round_ = fit.plan.round
        self.runner.wait([fit.jobs])
        fit_outcome = _phase_outcome(fit.plan, fit.jobs, self.runner.take([fit.jobs]))
        rep.history.record_fit(
            round_, fit_outcome.costs, {device: result.loss for device, (result, _) in fit_outcome.results.items()}
        )
        self._aggregate(rep, fit_outcome)
        eval_plan = self._plan(rep, round_, Phase.EVAL, fit.state, fit.costs)
        # The test shards first: the longest jobs first end the phase soonest.
        eval_blocks = [self._test_jobs(rep, round_), self._device_jobs(rep, eval_plan)]
        # One hand-out with the next round's fit, so that the first lease sees the whole phase's work: the test
        # shards handed out alone while the fit was planned were split between the workers, and each came back
        # for a second batch, a lease and a post more a round.
        following = self._hand_out_next_fit(rep, round_ + 1, eval_blocks) if more else None
        if not isinstance(following, HandedOutFit):
            self.runner.submit(eval_blocks, {})
        self.runner.wait(eval_blocks)
        outcomes = self.runner.take(eval_blocks)
        evaluation = _phase_outcome(eval_plan, eval_blocks[1], outcomes)
        test = self._test(eval_blocks[0], outcomes)
        ended = time.monotonic()
        outcome = RoundOutcome(round_, fit.conditions, fit_outcome, evaluation, test, ended - fit.since)
        rep.simulated_time += outcome.round_time
        rep.energy += outcome.energy
        return outcome, replace(following, since=ended) if isinstance(following, HandedOutFit) else following

    def _hand_out_next_fit(self, rep: Repetition, round_: int, after: Sequence[JobBlock]) -> HandedOutFit | Exception:
        """The next round's fit handed out behind `after`, or why it could not be planned (nothing handed out)."""
        try:
            return self._hand_out_fit(rep, round_, after)
        except SimulationStopped:
            raise
        except Exception as error:  # the current round's evaluation is handed out and recorded all the same
            return error

    def _plan(self, rep: Repetition, round_: int, phase: Phase, state: DeviceState, costs: CostModel) -> PhasePlan:
        """The phase's plan, its energy already taken off the devices' budgets (the next phase sees what is left)."""
        plan = plan_phase(self.spec, self.phases[phase], (rep.index, round_, phase), state, costs)
        spend_energy(plan, state.energy_left)
        return plan

    def _device_jobs(self, rep: Repetition, plan: PhasePlan) -> JobBlock:
        template = self._template(rep, plan.round, plan.phase)
        return device_jobs(template, plan.selected, plan.costs.failed, plan.work, plan.seeds)

    def _test_jobs(self, rep: Repetition, round_: int) -> JobBlock:
        template = self._template(rep, round_, Phase.TEST)
        return shard_jobs(template, rep.test_size, self.spec.simulation.test_shard_size)

    def _test(self, jobs: JobBlock, outcomes: Outcomes) -> Evaluation:
        """The new global model on the test split: workers evaluate it in shards, combined in shard order."""
        results = outcomes.results
        refused = [job_id for job_id in jobs.ids if job_id not in results]
        if refused:
            reasons = "; ".join(
                f"{job_id}: {outcomes.reasons[job_id]}" for job_id in refused if job_id in outcomes.reasons
            )
            raise RuntimeError(
                f"the results of test jobs {refused} were refused as malformed" + (f" ({reasons})" if reasons else "")
            )
        shards = [results[job_id][0] for job_id in jobs.ids]
        evaluations = [Evaluation(shard.loss, shard.metric or 0.0, shard.num_examples) for shard in shards]
        return combine(evaluations, self.spec.simulation.metric)

    def _template(self, rep: Repetition, round_: int, phase: Phase) -> Job:
        run = self.run_parts
        return job_template(run.run_id, rep.index, round_, phase, self.models.version, self.runner.lease_seconds)

    def _payloads(self, jobs: JobBlock) -> dict[str, bytes]:
        """The algorithm's per-device tensors of each fit job, encoded once."""
        payloads = {}
        for job_id, device in zip(jobs.ids, jobs.devices, strict=True):
            tensors = self.server.job_tensors(device)
            if tensors:
                payloads[job_id] = encode_tensors(tensors)
        return payloads

    def _aggregate(self, rep: Repetition, fit: PhaseOutcome) -> None:
        if not fit.results:
            log.warning("repetition %d: no device completed the fit phase; the model is unchanged", rep.index)
            self.models.publish(self.models.current())
            return
        updates = [
            DeviceUpdate(device, result.num_examples, result.num_steps, result.loss, *split_extra(tensors))
            for device, (result, tensors) in sorted(fit.results.items())
        ]
        self.models.publish(self.server.aggregate(self.models.current(), updates))

    def _record(self, rep: Repetition, outcome: RoundOutcome, record: RoundRecord, stop_reason: str | None) -> None:
        """The results row (and summary); then the device records, the results files, the checkpoint and the
        progress on the round writer's thread, while the next round runs.

        A round is done once its checkpoint is written; its records are written before that. The loop waits for
        a round's files before it records the next round or ends.
        """
        self.round_writer.wait()
        self.results.rounds.append(record)
        if stop_reason:
            self.results.repetitions.append(
                RepetitionSummary(
                    rep.index,
                    record.round + 1,
                    stop_reason,
                    record.test_metric,
                    record.test_loss,
                    rep.simulated_time,
                    rep.energy,
                )
            )
            self.progress.stop_reason = stop_reason
        # Snapshots taken here, by value: the next round changes the model, the history and the document.
        texts = self.results.texts()
        checkpoint = encode_checkpoint(self._checkpoint(rep, record.round, stop_reason is not None), texts[0])
        when, sizes = (rep.index, outcome.round), rep.population.data_sizes
        self.round_writer.submit(lambda: self._write_round(when, outcome, sizes, texts, checkpoint, record))

    def _write_round(
        self,
        when: tuple[int, int],
        outcome: RoundOutcome,
        data_sizes: np.ndarray,
        texts: tuple[str, str],
        checkpoint: bytes,
        record: RoundRecord,
    ) -> None:
        """On the round writer's thread: the device records (their rows built here too: ~3 ms that kept the loop
        from the next round's aggregation when a round's evaluation ended its phase), the results files, the
        checkpoint, the progress."""
        self.records.write_round(when, outcome.conditions, [outcome.fit, outcome.evaluation], data_sizes)
        self.results.write(texts)
        self.records.flush()
        write_checkpoint(self.spec.simulation.output_folder, checkpoint)
        self._report(record)

    def _checkpoint(self, rep: Repetition, round_: int, repetition_done: bool) -> Checkpoint:
        last = rep.index + 1 == self.spec.simulation.repetitions
        next_point = (rep.index + 1, 0) if repetition_done else (rep.index, round_ + 1)
        return Checkpoint(
            run_id=self.run_parts.run_id,
            spec=self.spec.model_dump(mode="json"),
            repetition=next_point[0],
            next_round=next_point[1],
            finished=repetition_done and last,
            model_version=self.models.version,
            simulated_time=rep.simulated_time,
            energy=rep.energy,
            results=self.results.to_dict(),
            weights=self.models.current(),
            server_state=self.server.state_dict(),
            history=rep.history.arrays(),
        )

    def _report(self, record: RoundRecord) -> None:
        progress = self.progress
        progress.repetition, progress.round = record.repetition, record.round + 1
        progress.metric_value, progress.loss = record.test_metric, record.test_loss
        progress.simulated_time = record.simulated_time
        metric = self.spec.simulation.metric  # the field's name says what the value is: accuracy, mae or mse
        fields = {
            "repetition": record.repetition,
            "round": record.round + 1,
            "rounds": self.spec.simulation.num_rounds,
            metric: record.test_metric,
            "loss": record.test_loss,
            "simulated_time": record.simulated_time,
            "devices_failed": record.fit_failed,
            "devices_selected": record.fit_selected,
        }
        log.info(
            f"repetition %(repetition)d round %(round)d/%(rounds)d: test {metric} %({metric}).4f loss %(loss).4f, "
            "%(devices_failed)d/%(devices_selected)d devices failed, simulated %(simulated_time).1f s",
            fields,
            extra={FIELDS: fields},
        )

    def _stop_reason(self, record: RoundRecord) -> str | None:
        return stop_reason(self.spec, record)


def _phase_outcome(plan: PhasePlan, jobs: JobBlock, outcomes: Outcomes) -> PhaseOutcome:
    """The outcomes of a phase's device jobs by device (`outcomes` may hold other jobs' too)."""
    devices = dict(zip(jobs.ids, jobs.devices, strict=True))
    results = {devices[job_id]: result for job_id, result in outcomes.results.items() if job_id in devices}
    rejected = frozenset(devices[job_id] for job_id in outcomes.rejected if job_id in devices)
    return PhaseOutcome(plan, dict(sorted(results.items())), rejected)


def stop_reason(spec: SimulationSpec, record: RoundRecord) -> str | None:
    """Why the repetition stops after `record`'s round, if a stop condition is met.

    stop_conds.target picks what is watched: the test split (test) or the round's federated evaluation (eval,
    which has no value in a round where no eval device completed). An accuracy is reached at or above the
    target, an error (mae, mse) and the loss at or below it.
    """
    conditions, metric = spec.simulation.stop_conds, spec.simulation.metric
    watched = (
        (record.test_metric, record.test_loss)
        if conditions.target == "test"
        else (record.eval_metric, record.eval_loss)
    )
    value, loss = watched
    if conditions.metric is not None and value is not None and metric_reached(metric, value, conditions.metric):
        return f"Target{metric.capitalize()}Reached"
    if conditions.loss is not None and loss is not None and loss <= conditions.loss:
        return "TargetLossReached"
    return None


def round_record(rep: Repetition, outcome: RoundOutcome, model_version: int) -> RoundRecord:
    """The results document's row of a round (after `rep` has taken the round's time and energy)."""
    fit, evaluation = outcome.fit, outcome.evaluation
    return RoundRecord(
        repetition=rep.index,
        round=outcome.round,
        model_version=model_version,
        devices_available=int(outcome.conditions.available.sum()),
        fit_selected=len(fit.selected),
        fit_failed=fit.failed,
        eval_selected=len(evaluation.selected),
        eval_failed=evaluation.failed,
        train_loss=fit.weighted("loss"),
        eval_loss=evaluation.weighted("loss"),
        eval_metric=evaluation.weighted("metric"),
        test_loss=outcome.test.loss,
        test_metric=outcome.test.metric,
        round_time=outcome.round_time,
        simulated_time=rep.simulated_time,
        energy=outcome.energy,
        wall_time=outcome.wall_time,
    )
