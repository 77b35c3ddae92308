"""One self-contained HTML report of runs: tables, figures as base64 PNG data: URIs, each run's spec.

Plain HTML with inline CSS: no script, no network, so it opens anywhere and can be mailed or archived.
Every string a run provides (labels, paths, specs, notes) is escaped.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from feles.analysis.comparison import FAILURE_COLUMNS, DeviceSummary, comparison_columns, comparison_rows
from feles.analysis.device_plots import DEVICE_PLOTS
from feles.analysis.loading import Run
from feles.analysis.plots import PLOTS
from feles.analysis.summary import RunSummary
from feles.analysis.tables import columns_for

#: Most never-selected ids listed per repetition; the rest are counted.
MAX_IDS = 200

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta, figcaption, .note { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f3f3f3; font-weight: 600; }
.wide { overflow-x: auto; } td { text-align: right; white-space: nowrap; } td:first-child { text-align: left; }
figure { margin: 1.2em 0; } img { max-width: 100%; border: 1px solid #eee; }
details { margin: 0.4em 0; } summary { cursor: pointer; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.notes { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 1em; }
"""


@dataclass(frozen=True)
class ReportInput:
    """What the report shows; `figures` maps a plot kind (PLOTS, DEVICE_PLOTS) to its PNG, in display order."""

    runs: Sequence[Run]
    summaries: Sequence[RunSummary]
    devices: Sequence[DeviceSummary | None]
    figures: Mapping[str, bytes]
    notes: Sequence[str] = ()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class='wide'>{table}</div><p class='note'>{escape(caption)}</p>"


def _caption(kind: str) -> str:
    draw = PLOTS[kind][0] if kind in PLOTS else DEVICE_PLOTS[kind][0]
    return (draw.__doc__ or kind).strip().splitlines()[0]


def _figure(kind: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption = escape(_caption(kind))
    return (
        f'<figure id="{escape(kind)}"><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption} <code>{escape(kind)}.png</code></figcaption></figure>"
    )


def _never_selected(summary: DeviceSummary) -> str:
    parts = []
    for repetition, ids in enumerate(summary.never_selected_ids):
        shown = ", ".join(str(device) for device in ids[:MAX_IDS])
        more = f" … and {len(ids) - MAX_IDS:,} more" if len(ids) > MAX_IDS else ""
        parts.append(f"<li>repetition {repetition}: {len(ids):,} devices{': ' if ids else ''}{shown}{more}</li>")
    return (
        f"<details><summary>{escape(summary.label)}: never selected for fit</summary><ul>{''.join(parts)}</ul>"
        "</details>"
    )


def _spec(run: Run) -> str:
    spec = json.dumps(run.spec, indent=2, sort_keys=False, default=str)
    summary = f"{escape(run.label)} <span class='meta'>({escape(str(run.path))})</span>"
    return f"<details><summary>{summary}</summary><pre>{escape(spec)}</pre></details>"


#: The report's heading of each figure kind (consecutive kinds of one heading share it).
SECTIONS = {
    "accuracy_loss_by_round": "Metric and loss",
    "accuracy_loss_by_time": "Metric and loss",
    "devices": "Devices and energy per round",
    "energy": "Devices and energy per round",
    "participation": "Fairness",
    "failures": "Fairness",
    "device_activity": "Per device",
    "device_traits": "Per device",
    "label_distribution": "Per device",
    "selection_matrix": "Selections per device and round",
    "round_time": "Time and consumption",
    "device_time": "Time and consumption",
    "consumption": "Time and consumption",
    "work": "Configured vs executed work",
}

COMPARISON_CAPTION = (
    "Mean ± sample standard deviation over each run's repetitions. Jain, Gini and never selected: fit selections over "
    "every device of the population (never-selected devices count 0). Failed jobs: fit and eval, per repetition. "
    "Round time: fit phase + eval phase, each as long as its slowest completed job; communication share: download + "
    "upload of those slowest jobs over the rounds' total time. Energy: spent by completed jobs. n/a: the run has no "
    "device records."
)
FAILURES_CAPTION = (
    "Failed jobs per repetition by reason and phase (mean ± sample std over repetitions): random = the Bernoulli "
    "failure draw, energy = the job needed more energy than the device had left, lost = no result came, rejected = "
    "a malformed result."
)
RESULTS_CAPTION = "From results.json: mean ± sample std over repetitions; failures = failed fit + eval jobs."


def render_report(report: ReportInput, title: str = "FELES analysis") -> str:
    """The report as one HTML document."""
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    labels = ", ".join(run.label for run in report.runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='meta'>{len(report.runs)} runs: {escape(labels)}. Generated {generated} by feles analyze.</p>",
    ]
    if report.notes:
        items = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
        parts.append(f"<div class='notes'><ul>{items}</ul></div>")
    columns = comparison_columns(list(report.summaries))
    parts += [
        "<h2>Comparison</h2>",
        _table(
            [header for header, _ in columns],
            comparison_rows(list(report.summaries), list(report.devices), columns),
            COMPARISON_CAPTION,
        ),
        "<h3>Failures by reason</h3>",
        _table(
            [header for header, _ in FAILURE_COLUMNS],
            comparison_rows(list(report.summaries), list(report.devices), FAILURE_COLUMNS),
            FAILURES_CAPTION,
        ),
        "<h2>Results</h2>",
        _table(
            [header.replace("\n", " ") for header, _ in columns_for(report.summaries)],
            _result_rows(report.summaries),
            RESULTS_CAPTION,
        ),
    ]
    section = None
    for kind, png in report.figures.items():
        if SECTIONS.get(kind, "Figures") != section:
            section = SECTIONS.get(kind, "Figures")
            parts.append(f"<h2>{escape(section)}</h2>")
        parts.append(_figure(kind, png))
    never = [summary for summary in report.devices if summary is not None]
    if never:
        parts.append("<h2>Never-selected devices</h2>")
        parts += [_never_selected(summary) for summary in never]
    parts.append("<h2>Specs</h2>")
    parts += [_spec(run) for run in report.runs]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _result_rows(summaries: Sequence[RunSummary]) -> list[list[str]]:
    return [[cell(summary) for _, cell in columns_for(summaries)] for summary in summaries]


def write_report(path: Path, report: ReportInput) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(report), encoding="utf-8")
    return path
