"""Markdown result tables shared by the evaluation and retrieval reports: direction arrows, best-cell choice."""
from __future__ import annotations

import math
from typing import Mapping

ARROWS = {"lower": "↓", "higher": "↑", "closer": "→"}  # which way is better, as printed in headers


def markdown_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (pipes escaped, line breaks as spaces)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def best_rows(means: Mapping[str, float], better: str, reference_mean: float | None) -> set[str]:
    """Methods whose mean is best (all of them on a tie); empty when nothing can be ranked.

    ``better`` is "lower", "higher" or "closer" (to ``reference_mean``, e.g. the real motions' value).
    """
    candidates = {name: value for name, value in means.items() if math.isfinite(value)}
    if len(candidates) < 2:
        return set()
    if better == "closer":
        if reference_mean is None:
            return set()
        distance = {name: abs(value - reference_mean) for name, value in candidates.items()}
        best = min(distance.values())
        return {name for name, value in distance.items() if math.isclose(value, best, rel_tol=1e-12, abs_tol=1e-15)}
    best = min(candidates.values()) if better == "lower" else max(candidates.values())
    return {name for name, value in candidates.items() if math.isclose(value, best, rel_tol=1e-12, abs_tol=1e-15)}
