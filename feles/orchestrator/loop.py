"""The simulation loop: repetitions x rounds of fit, aggregation, evaluation, records and stop checks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from feles.algorithms import DeviceUpdate, build_server
from feles.config import PhaseSection, SimulationSpec
from feles.data import DataRequest, load_dataset, resolve_data_dir
from feles.devices import DevicePopulation, JobCosts, RoundConditions, draw_failures, job_costs, local_iterations
from feles.evaluation import EVAL_BATCH_SIZE, Evaluation, combine, shard_ranges
from feles.logs import FIELDS
from feles.models import build_model, initialize_model
from feles.orchestrator.checkpoint import Checkpoint, save_checkpoint
from feles.orchestrator.results import RepetitionSummary, RoundRecord
from feles.orchestrator.status import OrchestratorStatus
from feles.protocol import ExampleRange, Job, JobResult, Phase, SimulationPhase, encode_tensors, split_extra
from feles.seeding import numpy_rng, torch_seed, torch_seeds
from feles.strategies import (
    SELECTORS,
    UPDATE_OPTIMIZERS,
    DeviceView,
    LocalWork,
    SelectionContext,
    UpdateContext,
)

log = logging.getLogger("feles.orchestrator")


class SimulationStopped(Exception):
    """The orchestrator is shutting down before the simulation finished."""


@dataclass
class DeviceHistory:
    """Memory across a repetition's rounds that strategies may read, checkpointed with the model.

    Per device (indexed by id): fit phases selected and failed, last round selected (-1 = never),
    last local training loss (NaN = never), and the sum and sum of squares of the simulated time of
    its completed fit jobs. Per round: the fit phase's simulated time, in round order.
    """

    times_selected: np.ndarray
    times_failed: np.ndarray
    last_selected_round: np.ndarray
    last_loss: np.ndarray
    time_sum: np.ndarray
    time_sq_sum: np.ndarray
    round_times: np.ndarray

    @classmethod
    def empty(cls, num_devices: int) -> DeviceHistory:
        return cls(
            times_selected=np.zeros(num_devices, dtype=np.int64),
            times_failed=np.zeros(num_devices, dtype=np.int64),
            last_selected_round=np.full(num_devices, -1, dtype=np.int64),
            last_loss=np.full(num_devices, np.nan),
            time_sum=np.zeros(num_devices),
            time_sq_sum=np.zeros(num_devices),
            round_times=np.zeros(0),
        )

    def record_fit(self, round_: int, costs: JobCosts, losses: Mapping[int, float]) -> None:
        """Account for a fit phase: `costs.failed` already includes devices whose result never came."""
        selected, failed = costs.devices, costs.failed
        self.times_selected[selected] += 1
        self.last_selected_round[selected] = round_
        self.times_failed[selected[failed]] += 1
        completed, times = selected[~failed], costs.time[~failed]
        self.time_sum[completed] += times
        self.time_sq_sum[completed] += times**2
        self.round_times = np.append(self.round_times, costs.round_time())
        for device, loss in losses.items():
            self.last_loss[device] = loss


@dataclass(frozen=True)
class PhaseOutcome:
    selected: np.ndarray
    costs: JobCosts
    results: dict[int, tuple[JobResult, Mapping[str, torch.Tensor]]]

    @property
    def failed(self) -> int:
        return len(self.selected) - len(self.results)

    def weighted(self, metric: str) -> float | None:
        """Mean of a result metric weighted by examples; None when no device completed."""
        pairs = [(getattr(r, metric), r.num_examples) for r, _ in self.results.values() if r.num_examples]
        total = sum(n for _, n in pairs)
        if not total:
            return None
        return sum(value * n for value, n in pairs) / total


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


class SimulationLoop:
    """Runs the whole simulation against an OrchestratorStatus; workers do the device jobs."""

    def __init__(
        self, status: OrchestratorStatus, data_dir: str | None = None, checkpoint: Checkpoint | None = None
    ) -> None:
        self.status = status
        self.spec: SimulationSpec = status.spec
        self.data_dir = data_dir
        self.checkpoint = checkpoint
        self.stop_event = threading.Event()
        self.server = build_server(self.spec.algorithms, num_devices=self.spec.devices.num)
        self.phases = {
            Phase.FIT: _PhaseStrategies(self.spec.algorithms.fit),
            Phase.EVAL: _PhaseStrategies(self.spec.algorithms.eval),
        }

    def run(self) -> None:
        """Run (or resume) every repetition; the outcome lands in the status and the results files."""
        progress = self.status.progress
        progress.phase, progress.started_at = SimulationPhase.RUNNING, time.time()
        try:
            first = self._restore_results()
            if not (self.checkpoint and self.checkpoint.finished):
                for repetition in range(first, self.spec.simulation.repetitions):
                    resume = self.checkpoint if repetition == first else None
                    self._run_repetition(repetition, resume)
            self._finish(SimulationPhase.SUCCEEDED, "")
        except SimulationStopped:
            log.info("simulation stopped before it finished")
        except Exception as error:  # the loop must report any failure, not die silently in its thread
            log.exception("simulation failed")
            self._finish(SimulationPhase.FAILED, f"{type(error).__name__}: {error}")
        finally:
            self.status.queue.close()

    def _restore_results(self) -> int:
        """Load the results of a checkpoint, if any; the repetition to continue with."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return 0
        self.status.results.restore(checkpoint.results)
        if self.status.results.rounds:
            self._report(self.status.results.rounds[-1])
        summaries = self.status.results.repetitions
        self.status.progress.stop_reason = summaries[-1].stop_reason if summaries else None
        log.info(
            "resuming run %s at repetition %d round %d",
            checkpoint.run_id[:8],
            checkpoint.repetition,
            checkpoint.next_round,
        )
        return checkpoint.repetition

    def _finish(self, phase: SimulationPhase, message: str) -> None:
        progress = self.status.progress
        results = self.status.results
        results.status = "succeeded" if phase is SimulationPhase.SUCCEEDED else "failed"
        results.message = message
        results.write()
        progress.message, progress.finished_at = message, time.time()
        progress.phase = phase

    def _start_repetition(self, index: int) -> Repetition:
        spec = self.spec
        population = DevicePopulation.draw(spec, index)
        data_dir = resolve_data_dir(self.data_dir, spec.simulation.data_dir)
        dataset = load_dataset(
            spec.simulation.dataset,
            DataRequest(spec.simulation.seed, index, population.data_sizes, data_dir, spec.simulation.dataset_params),
        )
        model = build_model(self.status.model_name, dataset.input_shape, dataset.num_classes)
        initialize_model(model, spec.simulation.initializer, torch_seed(spec.simulation.seed, "init", index))
        self.server = build_server(spec.algorithms, num_devices=spec.devices.num)
        self.status.models.publish(model.state_dict())
        return Repetition(index, population, DeviceHistory.empty(spec.devices.num), model, len(dataset.test.y))

    def _resume_repetition(self, rep: Repetition, checkpoint: Checkpoint) -> int:
        """Put the checkpoint's model, server state and history in place; the next round to run."""
        self.status.models.restore(checkpoint.weights, checkpoint.model_version)
        self.server.load_state_dict(checkpoint.server_state)
        rep.history = DeviceHistory(**{name: array.copy() for name, array in checkpoint.history.items()})
        rep.simulated_time, rep.energy = checkpoint.simulated_time, checkpoint.energy
        return checkpoint.next_round

    def _run_repetition(self, index: int, resume: Checkpoint | None) -> None:
        rep = self._start_repetition(index)
        first = self._resume_repetition(rep, resume) if resume is not None and resume.next_round > 0 else 0
        num_rounds = self.spec.simulation.num_rounds
        for round_ in range(first, num_rounds):
            record = self._run_round(rep, round_)
            reason = self._stop_reason(record) or ("RoundsCompleted" if round_ + 1 == num_rounds else None)
            self._record(rep, record, reason)
            if reason:
                return

    def _run_round(self, rep: Repetition, round_: int) -> RoundRecord:
        started = time.monotonic()
        conditions = RoundConditions.draw(self.spec, rep.index, round_)
        energy_left = conditions.energy.copy()
        fit = self._run_phase(rep, round_, Phase.FIT, conditions, energy_left)
        self._aggregate(rep, fit)
        evaluation = self._run_phase(rep, round_, Phase.EVAL, conditions, energy_left)
        test = self._test(rep, round_)
        round_time = fit.costs.round_time() + evaluation.costs.round_time()
        energy = fit.costs.energy_spent() + evaluation.costs.energy_spent()
        rep.simulated_time += round_time
        rep.energy += energy
        return self._round_record(rep, round_, conditions, fit, evaluation, test, round_time, energy, started)

    def _round_record(
        self,
        rep: Repetition,
        round_: int,
        conditions: RoundConditions,
        fit: PhaseOutcome,
        evaluation: PhaseOutcome,
        test: Evaluation,
        round_time: float,
        energy: float,
        started: float,
    ) -> RoundRecord:
        return RoundRecord(
            repetition=rep.index,
            round=round_,
            model_version=self.status.models.version,
            devices_available=int(conditions.available.sum()),
            fit_selected=len(fit.selected),
            fit_failed=fit.failed,
            eval_selected=len(evaluation.selected),
            eval_failed=evaluation.failed,
            train_loss=fit.weighted("loss"),
            eval_loss=evaluation.weighted("loss"),
            eval_accuracy=evaluation.weighted("accuracy"),
            test_loss=test.loss,
            test_accuracy=test.accuracy,
            round_time=round_time,
            simulated_time=rep.simulated_time,
            energy=energy,
            wall_time=time.monotonic() - started,
        )

    def _run_phase(
        self, rep: Repetition, round_: int, phase: Phase, conditions: RoundConditions, energy_left: np.ndarray
    ) -> PhaseOutcome:
        strategies = self.phases[phase]
        view = device_view(self.spec, rep.population, conditions, energy_left, rep.history, _parameter_count(rep.model))
        seed = self.spec.simulation.seed
        selected = strategies.select(
            SelectionContext(
                repetition=rep.index,
                round=round_,
                phase=phase.value,
                k=strategies.section.params.k,
                num_devices=self.spec.devices.num,
                params=strategies.section.params,
                available=conditions.available_ids,
                devices=view,
                rng=numpy_rng(seed, f"select-{phase}", rep.index, round_),
                round_times=rep.history.round_times,
            )
        )
        work = strategies.update.plan(
            UpdateContext(
                rep.index,
                round_,
                phase.value,
                selected,
                strategies.section.params,
                view,
                numpy_rng(seed, f"update-{phase}", rep.index, round_),
            )
        )
        iterations = local_iterations(work.epochs, work.batch_size, work.num_examples)
        costs = job_costs(
            self.spec,
            rep.population,
            conditions,
            selected,
            iterations,
            _parameter_count(rep.model),
            phase.value,
            energy_left,
            draw_failures(self.spec, rep.index, round_, phase.value, selected),
        )
        energy_left[selected[~costs.failed]] -= costs.energy[~costs.failed]
        seeds = torch_seeds(seed, f"job-{phase.value}", (rep.index, round_), selected)
        jobs = device_jobs(self._template(rep, round_, phase), selected, costs.failed, work, seeds)
        payloads = self._payloads(jobs) if phase is Phase.FIT else {}
        jobs = [job.model_copy(update={"has_tensors": True}) if job.id in payloads else job for job in jobs]
        results = self._execute(jobs, payloads)
        by_device = {job.device: results[job.id] for job in jobs if job.id in results}
        costs = _with_failures(costs, costs.failed | ~np.isin(selected, list(by_device)))
        if phase is Phase.FIT:
            losses = {device: result.loss for device, (result, _) in by_device.items()}
            rep.history.record_fit(round_, costs, losses)
        return PhaseOutcome(selected, costs, by_device)

    def _test(self, rep: Repetition, round_: int) -> Evaluation:
        """The new global model on the test split: workers evaluate it in shards, combined in shard order."""
        jobs = shard_jobs(self._template(rep, round_, Phase.TEST), rep.test_size, self.spec.simulation.test_shard_size)
        results = self._execute(jobs, {})
        refused = [job.id for job in jobs if job.id not in results]
        if refused:
            raise RuntimeError(f"the results of test jobs {refused} were refused as malformed")
        shards = [results[job.id][0] for job in jobs]
        return combine([Evaluation(shard.loss, shard.accuracy or 0.0, shard.num_examples) for shard in shards])

    def _template(self, rep: Repetition, round_: int, phase: Phase) -> Job:
        models, queue = self.status.models, self.status.queue
        return job_template(self.status.run_id, rep.index, round_, phase, models.version, queue.lease_seconds)

    def _payloads(self, jobs: list[Job]) -> dict[str, bytes]:
        """The algorithm's per-device tensors of each fit job, encoded once."""
        payloads = {}
        for job in jobs:
            tensors = self.server.job_tensors(job.device)
            if tensors:
                payloads[job.id] = encode_tensors(tensors)
        return payloads

    def _execute(
        self, jobs: list[Job], payloads: Mapping[str, bytes]
    ) -> dict[str, tuple[JobResult, Mapping[str, torch.Tensor]]]:
        """Queue the jobs and wait until each is done (re-issued on lease expiry as often as needed)."""
        queue = self.status.queue
        queue.submit(jobs, payloads)
        ids = [job.id for job in jobs]
        while not queue.wait_done(ids, timeout=1.0):
            if self.stop_event.is_set() or queue.closed:
                raise SimulationStopped
        return queue.take_results(ids)

    def _aggregate(self, rep: Repetition, fit: PhaseOutcome) -> None:
        if not fit.results:
            log.warning("repetition %d: no device completed the fit phase; the model is unchanged", rep.index)
            self.status.models.publish(self.status.models.current())
            return
        updates = [
            DeviceUpdate(device, result.num_examples, result.num_steps, result.loss, *split_extra(tensors))
            for device, (result, tensors) in sorted(fit.results.items())
        ]
        self.status.models.publish(self.server.aggregate(self.status.models.current(), updates))

    def _record(self, rep: Repetition, record: RoundRecord, stop_reason: str | None) -> None:
        """Append the round (and the repetition's summary when it ends), write results, then checkpoint."""
        results = self.status.results
        results.rounds.append(record)
        if stop_reason:
            results.repetitions.append(
                RepetitionSummary(
                    rep.index,
                    record.round + 1,
                    stop_reason,
                    record.test_accuracy,
                    record.test_loss,
                    rep.simulated_time,
                    rep.energy,
                )
            )
            self.status.progress.stop_reason = stop_reason
        results.write()
        self._save_checkpoint(rep, record.round, stop_reason is not None)
        self._report(record)

    def _save_checkpoint(self, rep: Repetition, round_: int, repetition_done: bool) -> None:
        last = rep.index + 1 == self.spec.simulation.repetitions
        next_point = (rep.index + 1, 0) if repetition_done else (rep.index, round_ + 1)
        save_checkpoint(
            self.spec.simulation.output_folder,
            Checkpoint(
                run_id=self.status.run_id,
                spec=self.spec.model_dump(mode="json"),
                repetition=next_point[0],
                next_round=next_point[1],
                finished=repetition_done and last,
                model_version=self.status.models.version,
                simulated_time=rep.simulated_time,
                energy=rep.energy,
                results=self.status.results.to_dict(),
                weights=self.status.models.current(),
                server_state=self.server.state_dict(),
                history=asdict(rep.history),
            ),
        )

    def _report(self, record: RoundRecord) -> None:
        progress = self.status.progress
        progress.repetition, progress.round = record.repetition, record.round + 1
        progress.accuracy, progress.loss = record.test_accuracy, record.test_loss
        progress.simulated_time = record.simulated_time
        fields = {
            "repetition": record.repetition,
            "round": record.round + 1,
            "rounds": self.spec.simulation.num_rounds,
            "accuracy": record.test_accuracy,
            "loss": record.test_loss,
            "simulated_time": record.simulated_time,
            "devices_failed": record.fit_failed,
            "devices_selected": record.fit_selected,
        }
        log.info(
            "repetition %(repetition)d round %(round)d/%(rounds)d: test accuracy %(accuracy).4f loss %(loss).4f, "
            "%(devices_failed)d/%(devices_selected)d devices failed, simulated %(simulated_time).1f s",
            fields,
            extra={FIELDS: fields},
        )

    def _stop_reason(self, record: RoundRecord) -> str | None:
        conditions = self.spec.simulation.stop_conds
        if conditions.metric is not None and record.test_accuracy >= conditions.metric:
            return "TargetAccuracyReached"
        if conditions.loss is not None and record.test_loss <= conditions.loss:
            return "TargetLossReached"
        return None


def device_view(
    spec: SimulationSpec,
    population: DevicePopulation,
    conditions: RoundConditions,
    energy_left: np.ndarray,
    history: DeviceHistory,
    model_parameters: int,
) -> DeviceView:
    """What selection and update strategies may read about the devices in this phase of a round."""
    return DeviceView(
        ips=population.ips,
        data_sizes=population.data_sizes,
        net_speed=conditions.net_speed,
        energy=energy_left,
        times_selected=history.times_selected,
        times_failed=history.times_failed,
        last_selected_round=history.last_selected_round,
        last_loss=history.last_loss,
        model_parameters=model_parameters,
        time_sum=history.time_sum,
        time_sq_sum=history.time_sq_sum,
        pow_comp_s=spec.energy.pow_comp_s,
        pow_net_s=spec.energy.pow_net_s,
    )


def job_template(
    run_id: str, repetition: int, round_: int, phase: Phase, model_version: int, lease_seconds: float
) -> Job:
    """A job holding the fields shared by every job of one phase of a round.

    device_jobs and shard_jobs copy it and set the per-job fields (id, device or test examples, work, seed).
    """
    # model_construct (and model_copy below): the values are the loop's own, and validating 10,000 jobs
    # a round costs ~0.2 s; copying one template halves the cost of constructing each job.
    return Job.model_construct(
        id="",
        run_id=run_id,
        repetition=repetition,
        round=round_,
        phase=phase,
        device=None,
        test_examples=None,
        model_version=model_version,
        epochs=1,
        batch_size=1,
        num_examples=1,
        seed=0,
        lease_seconds=lease_seconds,
    )


def _id_prefix(template: Job) -> str:
    # Job ids start with the run id: a result meant for another run is never taken for this one's.
    return f"{template.run_id[:8]}.{template.repetition}.{template.round}.{template.phase.value}"


def device_jobs(
    template: Job, selected: np.ndarray, failed: np.ndarray, work: LocalWork, seeds: np.ndarray
) -> list[Job]:
    """A fit or eval job for each selected device that did not fail, in device order."""
    epochs, batch_sizes, examples = work.epochs.tolist(), work.batch_size.tolist(), work.num_examples.tolist()
    seed_list, skip, prefix = seeds.tolist(), failed.tolist(), _id_prefix(template)
    return [
        template.model_copy(
            update={
                "id": f"{prefix}.{device}",
                "device": device,
                "epochs": epochs[i],
                "batch_size": batch_sizes[i],
                "num_examples": examples[i],
                "seed": seed_list[i],
            }
        )
        for i, device in enumerate(selected.tolist())
        if not skip[i]
    ]


def shard_jobs(template: Job, test_size: int, shard_size: int) -> list[Job]:
    """The test jobs of a round: one per shard of `shard_size` test examples, in shard order."""
    prefix = _id_prefix(template)
    return [
        template.model_copy(
            update={
                "id": f"{prefix}.{shard}",
                "test_examples": ExampleRange(start=start, stop=stop),
                "batch_size": EVAL_BATCH_SIZE,
                "num_examples": stop - start,
            }
        )
        for shard, (start, stop) in enumerate(shard_ranges(test_size, shard_size))
    ]


class _PhaseStrategies:
    """The selection and update strategies of one phase, built once from its section."""

    def __init__(self, section: PhaseSection) -> None:
        self.section = section
        self.selector = SELECTORS.get(section.selection)(section.selection_params)
        self.update = UPDATE_OPTIMIZERS.get(section.update)(section.update_params)

    def select(self, context: SelectionContext) -> np.ndarray:
        selected = np.asarray(self.selector.select_devices(context), dtype=np.int64)
        if not np.isin(selected, context.available).all() or len(np.unique(selected)) != len(selected):
            raise RuntimeError(
                f"selection strategy {self.section.selection!r} returned devices that are not distinct "
                "available devices"
            )
        return np.sort(selected)


def _parameter_count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _with_failures(costs: JobCosts, failed: np.ndarray) -> JobCosts:
    return JobCosts(costs.devices, costs.computation_time, costs.communication_time, costs.energy, failed)
