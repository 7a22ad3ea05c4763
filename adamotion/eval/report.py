"""Evaluation reports: JSON + Markdown table + bar chart, training curves.

* :func:`write_report` turns ``{method: {metric: [value per repeat]}}`` into ``report.json`` (mean, 95 % CI,
  raw values), ``report.md`` (mean ± CI table, methods as rows in the given order, best bolded) and
  ``metrics.png`` (one bar chart per metric, error bars = CI).
* :func:`plot_training_curves` draws CSV training logs (``step`` + one column per loss).

Retrieval tables are :func:`adamotion.retrieval.report.format_retrieval_table`.

Plots use matplotlib's Agg canvas directly (no pyplot, no global backend switch), so this module is safe
in servers and worker threads. Every file is written atomically (temporary file, then rename).
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from adamotion.eval.metrics import mean_ci95, to_numpy
from adamotion.utils.files import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from adamotion.utils.tables import ARROWS, best_rows, markdown_cell

__all__ = ["MetricSpec", "GENERATION_METRICS", "write_report", "merge_reports", "plot_training_curves"]

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "metrics.png"
MAX_SHOWN_RATIO = 100.0  # larger ratios to the reference row are shown as ">100× real"


@dataclass(frozen=True)
class MetricSpec:
    key: str  # key in the results dict
    label: str  # column header
    better: str  # "lower", "higher", or "closer" (to the reference row, e.g. real motions)
    decimals: int = 3  # digits shown in the table
    physical: bool = False  # measured on joints (no network): own table, with the ratio to the reference row

    @property
    def header(self) -> str:
        return f"{self.label} {ARROWS[self.better]}"


# The generation metrics of the evaluation protocol, in table order (shared/docs/method.md).
GENERATION_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("fid", "FID", "lower"),
    MetricSpec("r_precision_top1", "R-prec top-1", "higher"),
    MetricSpec("r_precision_top2", "R-prec top-2", "higher"),
    MetricSpec("r_precision_top3", "R-prec top-3", "higher"),
    MetricSpec("mm_dist", "MM-Dist", "lower"),
    MetricSpec("diversity", "Diversity", "closer"),  # the field's "→": closest to real motions is best
    MetricSpec("multimodality", "MultiModality", "higher"),
    MetricSpec("jitter", "Jitter (m/s²)", "closer", 2, True),
    MetricSpec("jerk", "Jerk (m/s³)", "closer", 1, True),
    MetricSpec("bone_variation", "Bone-length CV", "lower", 4, True),
    MetricSpec("penetration", "Penetration (m)", "lower", 4, True),
    MetricSpec("penetration_ratio", "Penetrating frames", "lower", 3, True),
    MetricSpec("floating_ratio", "Floating frames", "closer", 3, True),
    MetricSpec("skating_ratio", "Skating ratio", "lower", 3, True),
)


# ----------------------------------------------------------------------------- small helpers
def _new_figure(width: float, height: float):
    """A matplotlib Figure on its own Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_figure_png(figure, out_png: str | os.PathLike) -> Path:
    return atomic_write_bytes(out_png, lambda f: figure.savefig(f, format="png"))


def _per_repeat_values(method: str, metric: str, values: Any) -> dict[str, np.ndarray]:
    """Values of one metric as ``{key: (R,) array}``; vector-valued repeats (R, k) become ``key_top1..k``."""
    array = to_numpy(values)
    if array.ndim == 0:
        array = array[None]
    if array.size == 0:
        return {}  # not measured for this method (e.g. MultiModality of real motions): shown as "–"
    if array.ndim == 1:
        return {metric: array}
    if array.ndim == 2 and array.shape[0] > 0:
        return {f"{metric}_top{i + 1}": array[:, i] for i in range(array.shape[1])}
    raise ValueError(
        f"results[{method!r}][{metric!r}] must be a list of per-repeat numbers (or of per-repeat vectors such as "
        f"R-precision top-1..3), got shape {array.shape}"
    )


# ----------------------------------------------------------------------------- generation report
def write_report(
    results: Mapping[str, Mapping[str, Sequence]],
    out_dir: str | os.PathLike,
    title: str,
    reference: str | None = None,
    metrics: Sequence[MetricSpec] = GENERATION_METRICS,
    evaluator: str | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``metrics.png`` into ``out_dir``; returns their paths.

    Args:
        results: ``{method: {metric key: [value per repeat]}}``, methods in table order. Keys of ``metrics``
            (``fid``, ``r_precision_top1``..``3``, ``mm_dist``, ``diversity``, ``multimodality``,
            ``skating_ratio``) get their header and direction; a metric given as per-repeat vectors
            (e.g. ``r_precision: [[top1, top2, top3], ...]``) is split into ``<key>_top1..k``; other keys are
            reported after them without a direction. An empty list means "not measured" (a "–" cell).
        out_dir: folder to write into (created).
        title: Markdown heading and figure title.
        reference: name of a row that is not a competitor (e.g. ``"real motions"``); never bolded, and the
            target of "closer is better" metrics (Diversity). Without it Diversity is not bolded.
        metrics: column specs, in column order.
        evaluator: which network embedded the motions and captions (named under the alignment table and in
            ``report.json``: every table says who judged it). Physical metrics (``MetricSpec.physical``) get
            their own table with the ratio of each mean to the reference row's (also ``ratio_to_reference``
            in ``report.json``).

    Each cell is ``mean ± half-width`` of :func:`adamotion.eval.metrics.mean_ci95` (1.96 · std / sqrt(n)).
    """
    if not results:
        raise ValueError("results is empty: nothing to report")
    if reference is not None and reference not in results:
        raise ValueError(f"reference {reference!r} is not one of the methods {list(results)}")

    # ---- statistics per method and metric
    statistics: dict[str, dict[str, dict]] = {}
    seen_keys: list[str] = []
    for method, per_metric in results.items():
        statistics[method] = {}
        for metric, values in per_metric.items():
            for key, column in _per_repeat_values(method, metric, values).items():
                mean, half_width = mean_ci95(column)
                statistics[method][key] = {
                    "mean": mean, "ci95": half_width, "n": int(column.size), "values": column.tolist(),
                }
                if key not in seen_keys:
                    seen_keys.append(key)
    if reference is not None:  # read every metric against real motion too: ratio of the means
        for method, per_key in statistics.items():
            for key, stat in per_key.items():
                reference_mean = statistics[reference].get(key, {}).get("mean")
                if reference_mean is not None and reference_mean > 0:
                    stat["ratio_to_reference"] = stat["mean"] / reference_mean
    known = {spec.key: spec for spec in metrics}
    columns = [spec for spec in metrics if spec.key in seen_keys]
    columns += [MetricSpec(key, key, "none") for key in seen_keys if key not in known]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / REPORT_JSON, "md": out_dir / REPORT_MD, "png": out_dir / REPORT_PNG}

    atomic_write_json(paths["json"], {
        "title": title,
        "methods": list(results),
        "reference": reference,
        "evaluator": evaluator,
        "metrics": [spec.key for spec in columns],
        "interval": "mean ± 1.96 * std(ddof=0) / sqrt(n) over repeats",
        "results": statistics,
    })
    atomic_write_text(paths["md"], _report_markdown(statistics, columns, title, reference, evaluator))
    _save_figure_png(_report_figure(statistics, columns, title, reference), paths["png"])
    return paths


def merge_reports(report_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, title: str,
                  rename: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, Path]:
    """One table from several ``adamotion evaluate`` reports of the same protocol (e.g. an ablation trained later).

    Valid only when every report scored the same caption–motion pairs: their reference rows (real motions) must
    agree value for value, which holds for the same data, split, repeats, pairs and seed. Methods keep their
    per-repeat values, so the merged intervals are the ones each run measured. ``drop`` leaves methods out and
    ``rename`` ({old: new}) relabels rows; ``merge.json`` beside the report records the sources and both.
    """
    rename, drop = dict(rename or {}), set(drop)
    if len(report_dirs) < 2:
        raise ValueError("give at least two report folders to merge")
    reports = []
    for folder in report_dirs:
        path = Path(folder) / REPORT_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report here; run `adamotion evaluate ... --out {folder}` first")
        reports.append((path, read_json(path, what="evaluation report", fix=f"re-run `adamotion evaluate ... --out {folder}`")))
    first_path, first = reports[0]
    reference = first.get("reference")
    evaluator = first.get("evaluator")
    results: dict[str, dict[str, list]] = {}
    for path, report in reports:
        if report.get("evaluator") != evaluator:
            raise ValueError(f"{path}: judged by evaluator {report.get('evaluator')!r}, {first_path} by {evaluator!r}; "
                             "merge reports of the same evaluator only")
        if report.get("reference") != reference:
            raise ValueError(f"{path}: reference row {report.get('reference')!r} differs from {first_path}'s "
                             f"{reference!r}; merge reports of the same evaluation protocol only")
        if reference is not None:
            mine, theirs = report["results"][reference], first["results"][reference]
            for key in set(mine) | set(theirs):
                a, b = (np.asarray(r[key]["values"], float) if key in r else None for r in (mine, theirs))
                if a is None or b is None or a.shape != b.shape or not np.allclose(a, b):
                    raise ValueError(f"{path}: its {reference!r} row differs from {first_path}'s in {key!r}, so the "
                                     "runs scored different caption-motion pairs; evaluate with the same --data, "
                                     "--split, --repeats and --num-pairs to compare them")
        for method, stats in report["results"].items():
            if method == reference or method in drop:
                continue
            method = rename.get(method, method)
            if method in results:
                raise ValueError(f"{path}: method {method!r} is already in another report; rename one of them")
            results[method] = {key: stat["values"] for key, stat in stats.items()}
    if reference is not None:
        results[reference] = {key: stat["values"] for key, stat in first["results"][reference].items()}
    known = {m for _, report in reports for m in report["results"]}
    unknown = sorted((set(rename) | drop) - known)
    if unknown:
        raise ValueError(f"--rename/--drop name methods that no report has: {unknown}; the reports have {sorted(known)}")
    paths = write_report(results, out_dir, title, reference=reference, evaluator=evaluator)
    paths["merge"] = Path(out_dir) / "merge.json"
    atomic_write_json(paths["merge"], {"sources": [str(Path(d).resolve()) for d in report_dirs],
                                       "renamed": rename, "dropped": sorted(drop)})
    return paths


def _report_markdown(statistics: dict, columns: list[MetricSpec], title: str, reference: str | None,
                     evaluator: str | None = None) -> str:
    bold: dict[str, set[str]] = {}
    for spec in columns:
        if spec.better not in ARROWS:
            bold[spec.key] = set()
            continue
        competitors = {m: s[spec.key]["mean"] for m, s in statistics.items() if m != reference and spec.key in s}
        reference_mean = statistics.get(reference, {}).get(spec.key, {}).get("mean") if reference else None
        bold[spec.key] = best_rows(competitors, spec.better, reference_mean)

    def table(specs: list[MetricSpec], with_ratio: bool) -> list[str]:
        headers = ["Method"] + [spec.header if spec.better in ARROWS else spec.label for spec in specs]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for method, per_method in statistics.items():
            cells = [markdown_cell(method)]
            for spec in specs:
                if spec.key not in per_method:
                    cells.append("–")
                    continue
                stat = per_method[spec.key]
                text = f"{stat['mean']:.{spec.decimals}f} ± {stat['ci95']:.{spec.decimals}f}"
                text = f"**{text}**" if method in bold[spec.key] else text
                if with_ratio and method != reference and "ratio_to_reference" in stat:
                    ratio = stat["ratio_to_reference"]
                    # real motion near 0 (a rigid skeleton's bone CV) makes the ratio a large number of no use
                    text += f" (×{ratio:.2f})" if ratio <= MAX_SHOWN_RATIO else f" (>{MAX_SHOWN_RATIO:.0f}× real)"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    alignment = [spec for spec in columns if not spec.physical]
    physical = [spec for spec in columns if spec.physical]
    repeats = sorted({s["n"] for per_method in statistics.values() for s in per_method.values()})
    lines = [f"# {title}", ""]
    if alignment:
        lines += table(alignment, with_ratio=False)
        lines += ["", f"Evaluator (embeds the captions and motions of this table): {evaluator or 'not recorded'}.", ""]
    if physical:
        lines += ["Physical quality, measured on the joints by no network"
                  + (f"; (×r) = ratio to {markdown_cell(reference)}" if reference else "") + ":", ""]
        lines += table(physical, with_ratio=True)
        lines += [""]
    lines += [
        f"Mean ± 95% confidence interval (1.96·σ/√n, σ over repeats) over n = {', '.join(map(str, repeats))} "
        "repeated evaluations. ↓ lower is better, ↑ higher is better, → closest to "
        f"{markdown_cell(reference) if reference else 'real motions'} is better; best in bold"
        + (f" ({markdown_cell(reference)} excluded)." if reference else "."),
        "",
    ]
    return "\n".join(lines)


def _report_figure(statistics: dict, columns: list[MetricSpec], title: str, reference: str | None):
    methods = list(statistics)
    num_columns = min(4, len(columns))
    num_rows = math.ceil(len(columns) / num_columns)
    figure = _new_figure(3.4 * num_columns, 3.0 * num_rows + 0.6)
    colours = [f"C{i % 10}" for i in range(len(methods))]
    for position, spec in enumerate(columns):
        axes = figure.add_subplot(num_rows, num_columns, position + 1)
        present = [m for m in methods if spec.key in statistics[m]]
        means = [statistics[m][spec.key]["mean"] for m in present]
        errors = [statistics[m][spec.key]["ci95"] for m in present]
        axes.bar(range(len(present)), means, yerr=errors, capsize=4,
                 color=[colours[methods.index(m)] for m in present],
                 edgecolor=["black" if m == reference else "none" for m in present])
        axes.set_xticks(range(len(present)))
        axes.set_xticklabels(present, rotation=30, ha="right", fontsize=8)
        axes.set_title(spec.header if spec.better in ARROWS else spec.label, fontsize=10)
        axes.grid(axis="y", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


# ----------------------------------------------------------------------------- training curves
def _read_training_log(name: str, path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{column: (steps, values)}`` for every non-step column of a CSV log; blank cells are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training log {name!r}: {path} not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "step" not in reader.fieldnames:
            raise ValueError(f"training log {path} needs a header with a 'step' column, got {reader.fieldnames}")
        series: dict[str, tuple[list, list]] = {c: ([], []) for c in reader.fieldnames if c != "step"}
        for line_number, row in enumerate(reader, start=2):
            try:
                step = float(row["step"])
                for column, (steps, values) in series.items():
                    cell = (row.get(column) or "").strip()
                    if cell:
                        steps.append(step)
                        values.append(float(cell))
            except ValueError as exc:
                raise ValueError(f"{path}:{line_number}: non-numeric value ({exc})") from exc
    return {column: (np.asarray(s), np.asarray(v)) for column, (s, v) in series.items() if s}


def plot_training_curves(csv_paths: Mapping[str, str | os.PathLike], out_png: str | os.PathLike,
                         title: str = "Training curves", columns: Sequence[str] | None = None) -> Path:
    """One subplot per logged column, one line per run: ``csv_paths`` is ``{run name: CSV with step + losses}``.

    Every non-``step`` column is drawn (losses, grad norm, lr ...) unless ``columns`` names the ones to draw.
    """
    if not csv_paths:
        raise ValueError("csv_paths is empty: nothing to plot")
    runs = {name: _read_training_log(name, path) for name, path in csv_paths.items()}
    logged_columns: list[str] = []
    for logged in runs.values():
        logged_columns += [column for column in logged if column not in logged_columns]
    if columns is not None:
        missing = [column for column in columns if column not in logged_columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the logs; logged columns: {logged_columns}")
        logged_columns = list(columns)
    columns = logged_columns
    if not columns:
        raise ValueError(f"no loss values in {list(csv_paths.values())}")

    num_columns = min(3, len(columns))
    num_rows = math.ceil(len(columns) / num_columns)
    figure = _new_figure(4.2 * num_columns, 3.2 * num_rows + 0.6)
    for position, column in enumerate(columns):
        axes = figure.add_subplot(num_rows, num_columns, position + 1)
        for run_number, (name, logged) in enumerate(runs.items()):
            if column in logged:
                steps, values = logged[column]
                axes.plot(steps, values, label=name, color=f"C{run_number % 10}", linewidth=1.2)
        axes.set_title(column, fontsize=10)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return _save_figure_png(figure, out_png)
