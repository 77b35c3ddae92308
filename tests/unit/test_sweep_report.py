"""A sweep's comparison: cells grouped by their non-seed values, mean ± std over the seeds, CSV and Markdown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from feles.sweep import MANIFEST, Best, expand, manifest, parse_sweep
from feles.sweep_report import best_line, comparison, comparison_csv, comparison_markdown, write_comparison

SWEEP = parse_sweep(
    {
        "base": {"simulation": {"dataset": "digits", "num_rounds": 2}, "devices": {"num": 20}},
        "axes": [
            {"path": "algorithms.fit.selection", "values": ["random", "best_round_time"], "name": "sel"},
            {"path": "data.non_iid_partitions", "values": [0.5], "name": "alpha"},
        ],
        "seeds": [1, 2],
    }
)


def results(accuracies: list[float], status: str = "succeeded") -> dict[str, Any]:
    """A results document with one repetition whose rounds reach these test accuracies."""
    rounds = [
        {
            "repetition": 0,
            "round": index + 1,
            "test_accuracy": accuracy,
            "test_loss": 1.0 - accuracy,
            "simulated_time": 10.0 * (index + 1),
            "energy": 1.0,
            "fit_failed": 0,
            "eval_failed": 0,
        }
        for index, accuracy in enumerate(accuracies)
    ]
    return {"feles_version": "0", "spec": {}, "rounds": rounds, "status": status}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    cells = expand(SWEEP)
    (tmp_path / MANIFEST).write_text(json.dumps(manifest(SWEEP, cells)))
    documents = {
        "sel-random-alpha-0p5-seed-1": results([0.5, 0.7]),
        "sel-random-alpha-0p5-seed-2": results([0.6, 0.5]),
        "sel-best-round-time-alpha-0p5-seed-1": results([0.8, 0.9]),
        "sel-best-round-time-alpha-0p5-seed-2": results([0.4], status="running"),  # not finished: not counted
    }
    for name, document in documents.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(document))
    return tmp_path


def test_rows_group_the_seeds_of_each_combination(folder: Path) -> None:
    table = comparison(folder)
    assert table.labels == {"algorithms.fit.selection": "sel", "data.non_iid_partitions": "alpha"}
    random, best = table.rows
    assert random.values == {"algorithms.fit.selection": "random", "data.non_iid_partitions": 0.5}
    assert (random.done, len(random.cells)) == (2, 2)
    assert random.final_metric.mean == pytest.approx(0.6) and random.final_metric.std == pytest.approx(0.1414, 1e-3)
    assert random.best_metric.mean == pytest.approx(0.65) and random.simulated_time.mean == pytest.approx(20.0)
    assert (best.done, best.final_metric.n, best.final_metric.mean) == (1, 1, pytest.approx(0.9))
    assert [outcome.status for outcome in best.cells] == ["succeeded", "running"]
    assert table.best_row is best


def test_a_cell_without_results_is_not_started(folder: Path) -> None:
    (folder / "sel-random-alpha-0p5-seed-2" / "results.json").unlink()
    random = comparison(folder).rows[0]
    assert [outcome.status for outcome in random.cells] == ["succeeded", "not started"]
    assert random.final_metric.n == 1


def test_markdown_and_csv(folder: Path) -> None:
    table = comparison(folder)
    lines = comparison_markdown(table).splitlines()
    assert lines[0] == "| sel | alpha | seeds done | final test acc | best test acc | rounds | simulated time (s) |"
    assert lines[2] == "| random | 0.5 | 2/2 | 0.6000 ± 0.1414 | 0.6500 ± 0.0707 | 2 ± 0 | 20.0 ± 0.0 |"
    assert lines[3].startswith("| best_round_time | 0.5 | 1/2 | 0.9000 | 0.9000 |")
    rows = list(csv.DictReader(io.StringIO(comparison_csv(table))))
    assert rows[0]["algorithms.fit.selection"] == "random" and rows[0]["done"] == "2"
    assert float(rows[0]["final_accuracy_mean"]) == pytest.approx(0.6)
    assert rows[1]["final_accuracy_std"] == "0.0"
    written = write_comparison(table, folder)
    assert [path.name for path in written] == ["summary.csv", "summary.md"] and all(p.is_file() for p in written)


REGRESSION = parse_sweep(
    {
        "base": {"simulation": {"dataset": "diabetes", "metric": "mae", "num_rounds": 2}, "devices": {"num": 20}},
        "axes": SWEEP.model_dump(mode="json")["axes"],
        "seeds": [1, 2],
    }
)
#: Each regression cell's test mae per round: random ends at 60 and 70 (mean 65, loss 3600 and 5000), best_round_time
#: at 80 and 84 (mean 82) but with the lower loss (2000 and 2200).
ERRORS = {
    "sel-random-alpha-0p5-seed-1": ([90.0, 60.0], 3600.0),
    "sel-random-alpha-0p5-seed-2": ([80.0, 70.0], 5000.0),
    "sel-best-round-time-alpha-0p5-seed-1": ([95.0, 80.0], 2000.0),
    "sel-best-round-time-alpha-0p5-seed-2": ([85.0, 84.0], 2200.0),
}


def regression_folder(folder: Path, best: dict[str, Any] | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    sweep = REGRESSION if best is None else REGRESSION.model_copy(update={"best": Best(**best)})
    (folder / MANIFEST).write_text(json.dumps(manifest(sweep, expand(sweep))))
    for name, (values, loss) in ERRORS.items():
        document = results([0.0] * len(values))
        for row, value in zip(document["rounds"], values, strict=True):
            row["test_mae"] = row.pop("test_accuracy") + value
            row["test_loss"] = loss
        (folder / name).mkdir()
        (folder / name / "results.json").write_text(json.dumps({**document, "metric": "mae"}))
    return folder


def test_a_regression_sweep_names_its_error_and_prefers_the_lowest(tmp_path: Path) -> None:
    table = comparison(regression_folder(tmp_path))
    random, other = table.rows
    assert table.metric == "mae" and table.best_row is random  # mean final mae 65 < 82
    assert other.final_metric.mean == pytest.approx(82.0)
    assert random.best_metric.mean == pytest.approx(65.0)  # the lowest error of each cell: 60 and 70
    header = comparison_markdown(table).splitlines()[0]
    assert "final test mae" in header and "acc" not in header
    columns = next(csv.reader(io.StringIO(comparison_csv(table))))
    assert "final_mae_mean" in columns and not any("accuracy" in column for column in columns)
    assert best_line(table) == "best (final test mae, min): sel=random, alpha=0.5: 65.0000 ± 7.0711"
    write_comparison(table, tmp_path)
    assert (tmp_path / "summary.md").read_text().rstrip().endswith(best_line(table))


def test_the_summary_ranks_by_the_sweeps_best(tmp_path: Path) -> None:
    by_loss = comparison(regression_folder(tmp_path / "loss", {"metric": "loss"}))
    assert by_loss.best_row is by_loss.rows[1]  # mean final loss 2100 < 4300
    assert best_line(by_loss).startswith("best (final test loss, min): sel=best_round_time, alpha=0.5: 2100.0000")
    by_max = comparison(regression_folder(tmp_path / "max", {"metric": "mae", "mode": "max"}))
    assert by_max.best_row is by_max.rows[1]


def test_a_sweep_folder_without_best_ranks_by_the_cells_metric(folder: Path) -> None:
    document = json.loads((folder / MANIFEST).read_text())
    del document["best"]
    (folder / MANIFEST).write_text(json.dumps(document))
    table = comparison(folder)
    assert table.objective is None and table.best_row is table.rows[1]
    assert best_line(table) == "best (final test acc, max): sel=best_round_time, alpha=0.5: 0.9000"
