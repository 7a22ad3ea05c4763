"""Retrieval result tables (Markdown), e.g. the vanilla and the adapted text encoder side by side."""
from __future__ import annotations

from typing import Mapping

from adamotion.retrieval.metrics import retrieval_metric_names
from adamotion.utils.tables import ARROWS, best_rows, markdown_cell

__all__ = ["format_retrieval_table"]


def format_retrieval_table(results: Mapping[str, Mapping[str, float]], decimals: int = 2) -> str:
    """Markdown table of retrieval results side by side: one row per metric, one column per model.

    Rows follow :func:`retrieval_metric_names` (t2m R@1..10, MedR, m2t ..., Rsum), then any extra keys.
    The best value of each row is bolded (median rank: lowest; recalls and Rsum: highest). With exactly two
    models a ``Δ`` column gives second minus first (e.g. adapted − vanilla). A value may be a float or a
    ``(mean, ci95 half-width)`` pair, shown as ``mean ± ci``.
    """
    if not results:
        raise ValueError("results is empty: nothing to tabulate")
    names = list(results)
    rows = [key for key in retrieval_metric_names() if any(key in r for r in results.values())]
    for retrieval in results.values():
        rows += [key for key in retrieval if key not in rows]
    with_delta = len(names) == 2

    def mean_and_ci(value) -> tuple[float, float | None]:
        if isinstance(value, (tuple, list)):  # (mean, 95% CI half-width)
            return float(value[0]), float(value[1])
        return float(value), None

    headers = ["Metric"] + [markdown_cell(name) for name in names] + (["Δ"] if with_delta else [])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for key in rows:
        values = {name: mean_and_ci(results[name][key])[0] for name in names if key in results[name]}
        cis = {name: mean_and_ci(results[name][key])[1] for name in names if key in results[name]}
        better = "lower" if key.endswith("MedR") else "higher"
        arrow = ARROWS[better]
        best = best_rows(values, better, None)
        cells = [f"{key} {arrow}"]
        for name in names:
            if name not in values:
                cells.append("–")
                continue
            text = f"{values[name]:.{decimals}f}"
            text = f"**{text}**" if name in best else text
            cells.append(text if cis[name] is None else f"{text} ± {cis[name]:.{decimals}f}")
        if with_delta:
            first, second = names
            cells.append(f"{values[second] - values[first]:+.{decimals}f}" if len(values) == 2 else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
