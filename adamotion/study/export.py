"""``adamotion study export``: responses to CSV/JSON, mean rank per method with 95% CI, and a plot."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from adamotion.study.store import CRITERIA, StudyStore
from adamotion.utils.serialization import atomic_write_json, atomic_write_text


def summarize(store: StudyStore) -> dict:
    """criterion -> method name -> {mean_rank, ci95, n} (rank 1 = best)."""
    from adamotion.eval.metrics import mean_ci95

    names = {m["key"]: m["name"] for m in store.methods}
    ranks: dict[str, dict[str, list[int]]] = {c: {k: [] for k in names} for c in CRITERIA}
    for response in store.all_responses():
        for position, key in enumerate(response["ranking"], start=1):
            ranks[response["criterion"]][key].append(position)
    summary = {}
    for criterion, per_method in ranks.items():
        summary[criterion] = {}
        for key, values in per_method.items():
            if values:
                mean, ci = mean_ci95(np.asarray(values, dtype=float))
                summary[criterion][names[key]] = {"mean_rank": float(mean), "ci95": float(ci), "n": len(values)}
            else:
                summary[criterion][names[key]] = {"mean_rank": None, "ci95": None, "n": 0}
    return summary


def export_results(store: StudyStore, out_dir: str | Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {m["key"]: m["name"] for m in store.methods}
    responses = store.all_responses()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["participant_id", "trial_id", "prompt", "criterion", "rank", "method", "created"])
    prompts = {t.trial_id: t.prompt for t in store.trials}
    for r in responses:
        for position, key in enumerate(r["ranking"], start=1):
            writer.writerow([r["participant_id"], r["trial_id"], prompts[r["trial_id"]], r["criterion"], position,
                             names[key], f"{r['created']:.3f}"])
    summary = summarize(store)
    paths = {"csv": out_dir / "responses.csv", "json": out_dir / "responses.json",
             "summary": out_dir / "summary.json", "plot": out_dir / "mean_rank.png"}
    atomic_write_text(paths["csv"], buffer.getvalue())
    atomic_write_json(paths["json"], [{**r, "ranking": [names[k] for k in r["ranking"]]} for r in responses])
    atomic_write_json(paths["summary"], {"study_id": store.study_id, "responses": len(responses), "summary": summary})
    plot_summary(summary, paths["plot"])
    return paths


def summary_figure(summary: dict):
    """A matplotlib figure: mean rank ± 95% CI per method, one panel per criterion (caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summary), figsize=(4.5 * len(summary), 3.5), squeeze=False)
    for ax, (criterion, per_method) in zip(axes[0], summary.items()):
        names = list(per_method)
        means = [per_method[n]["mean_rank"] or 0.0 for n in names]
        errors = [per_method[n]["ci95"] or 0.0 for n in names]
        ax.bar(names, means, yerr=errors, capsize=4, color="#6b7fd7")
        ax.set_title(f"{criterion} (mean rank, lower is better)")
        ax.set_ylabel("mean rank ± 95% CI")
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def plot_summary(summary: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = summary_figure(summary)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def summary_markdown(summary: dict) -> str:
    lines = ["| criterion | method | mean rank ↓ | 95% CI | n |", "|---|---|---|---|---|"]
    for criterion, per_method in summary.items():
        for name, s in per_method.items():
            mean = "–" if s["mean_rank"] is None else f"{s['mean_rank']:.2f}"
            ci = "–" if s["ci95"] is None else f"± {s['ci95']:.2f}"
            lines.append(f"| {criterion} | {name} | {mean} | {ci} | {s['n']} |")
    return "\n".join(lines)
