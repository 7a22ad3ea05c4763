"""Statistics and a contact sheet of an imported motion-capture dataset (``adamotion data import-bandai-namco``).

Usage::

    python scripts/dataset_report.py /work/data/bandai_namco --markdown docs/bandai_namco_stats.md \
        --contact-sheet docs/bandai_namco_contact_sheet.png

Per split: takes, clips, hours, captions; the action x style table; how short and long takes were handled;
the physical statistics of the real motion (metrics of :mod:`adamotion.eval.metrics`, on the canonical joints
``new_joints``, mirrors excluded); the caption vocabulary. The contact sheet holds one keyframe strip per action
(the project's stick-figure renderer, left side red), kept under 1 MB.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


def _load_index(root: Path) -> dict:
    path = root / "corpus.json"
    if not path.is_file():
        raise SystemExit(f"{path}: missing; is {root} a folder written by `adamotion data import-bandai-namco`?")
    return json.loads(path.read_text(encoding="utf-8"))


PHYSICAL_LABELS = {"jitter": "jitter (mean joint acceleration, m/s²)", "jerk": "jerk (m/s³)",
                   "bone_variation": "bone-length variation (fraction)", "penetration": "foot penetration (m)",
                   "penetration_ratio": "frames with a foot below the floor", "floating_ratio": "floating frames",
                   "skating_ratio": "skating ratio (share of frame steps)"}


def physical_statistics(root: Path, clip_ids: list[str]) -> dict[str, tuple[float, float]]:
    """Mean and 95 % interval half-width over clips of every metric of ``adamotion.eval.metrics.physical_metrics``
    (canonical joints ``new_joints``, metres)."""
    from adamotion.eval import metrics
    from adamotion.motion.skeleton import HUMANML3D
    from adamotion.utils.numeric import mean_ci95

    per_metric: dict[str, list[float]] = defaultdict(list)
    for clip_id in clip_ids:
        joints = np.load(root / "new_joints" / f"{clip_id}.npy").astype(np.float64)  # (T, 22, 3)
        for key, value in metrics.physical_metrics(joints, HUMANML3D).items():
            per_metric[PHYSICAL_LABELS.get(key, key)].append(float(value))
    return {name: tuple(float(v) for v in mean_ci95(np.asarray(values))) for name, values in per_metric.items()}


def build_report(root: Path) -> tuple[str, dict]:
    index = _load_index(root)
    takes = index["takes"]
    fps = float(index.get("fps", 20.0))
    lines = [f"# {index.get('dataset', root.name)}: imported statistics", "",
             f"Imported by `adamotion data import-bandai-namco` (seed {index.get('seed')}) from `{index.get('source')}`; "
             f"licence **{index['license']['name']}** — {index['license']['attribution']}. Clips are 20 fps, metres, "
             "feet on the floor, facing +z at their first frame; every clip also has a mirrored copy `M<id>` "
             "(counted separately below).", ""]

    # --------------------------------------------------------------------- per split
    lines += ["## Per split", "", "| split | takes | dropped | clips | clips with mirrors | hours (clips) | "
              "hours with mirrors | captions (with mirrors) |", "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for split in SPLITS:
        kept = [t for t in takes.values() if t["split"] == split and t["clips"]]
        dropped = [t for t in takes.values() if t["split"] == split and not t["clips"]]
        clips = [c for t in kept for c in t["clips"]]
        frames = sum(c["frames"] for c in clips)
        hours = frames / fps / 3600
        summary[split] = {"takes": len(kept), "dropped": len(dropped), "clips": len(clips), "hours": hours}
        lines.append(f"| {split} | {len(kept)} | {len(dropped)} | {len(clips)} | {2 * len(clips)} | {hours:.3f} | "
                     f"{2 * hours:.3f} | {6 * len(clips)} |")
    total = {k: sum(s[k] for s in summary.values()) for k in ("takes", "dropped", "clips", "hours")}
    lines.append(f"| **all** | {total['takes']} | {total['dropped']} | {total['clips']} | {2 * total['clips']} | "
                 f"{total['hours']:.3f} | {2 * total['hours']:.3f} | {6 * total['clips']} |")
    if index.get("borrowed_splits"):
        lines.append(f"\n_Empty splits borrowed a training take: {index['borrowed_splits']}._")

    # --------------------------------------------------------------------- lengths
    policy = index.get("length_policy", {})
    length_counts = Counter("padded" if t.get("length", "").startswith("padded") else
                            ("dropped" if not t["clips"] else "kept") for t in takes.values())
    multi = [t for t in takes.values() if len(t["clips"]) > 1]
    reasons = Counter(re.sub(r"\(\d+\)|^\d+ frames", "N frames", t.get("dropped", "")) for t in takes.values()
                      if not t["clips"])
    lines += ["", "## Short and long takes", "",
              f"- Rule: clips need {policy.get('min_frames')}..{policy.get('max_frames')} feature frames. Takes shorter "
              f"than {policy.get('min_frames')} frames are padded by holding the first/last pose where the actor is at "
              f"rest there (mean joint speed < {policy.get('rest_speed_m_s')} m/s over the 3 boundary frames), or "
              f"dropped when moving at both ends or shorter than {policy.get('min_keep_frames')} frames. Takes up to "
              f"{policy.get('crop_tolerance')} x {policy.get('max_frames')} frames keep their most active "
              f"{policy.get('max_frames')}-frame window; longer takes are cut into equal windows, dropping windows "
              f"where the actor stands still (mean joint speed < {policy.get('idle_window_speed_m_s')} m/s).",
              f"- Takes kept whole: {length_counts['kept'] - len(multi)}; padded: {length_counts['padded']}; "
              f"cut into windows: {len(multi)} (into {sum(len(t['clips']) for t in multi)} clips); "
              f"dropped: {length_counts['dropped']}" + (f" ({dict(reasons)})" if reasons else "") + ".",
              f"- Hand side of one-handed dataset-2 labels checked against the motion (which wrist travels more): "
              f"{index['side_label_agreement']['agree']} of {index['side_label_agreement']['checked']} clips agree."]

    # --------------------------------------------------------------------- action x style
    for subset in sorted({t["subset"] for t in takes.values()}):
        members = [t for t in takes.values() if t["subset"] == subset]
        actions = sorted({t["action"] for t in members})
        styles = sorted({t["style"] for t in members})
        lines += ["", f"## Dataset-{subset}: takes per action x style (clips train / val / test)", "",
                  "| action | " + " | ".join(styles) + " | clips train / val / test |",
                  "|---|" + "---|" * (len(styles) + 1)]
        for action in actions:
            cells = [str(sum(1 for t in members if t["action"] == action and t["style"] == s and t["clips"]) or "·")
                     for s in styles]
            per_split = [sum(len(t["clips"]) for t in members if t["action"] == action and t["split"] == sp)
                         for sp in SPLITS]
            lines.append(f"| {action} | " + " | ".join(cells) + f" | {' / '.join(map(str, per_split))} |")

    # --------------------------------------------------------------------- physical statistics
    lines += ["", "## Physical statistics of the real motion (mirrors excluded)", "",
              "`adamotion.eval.metrics.physical_metrics` on the canonical joints (`new_joints`); mean ± 95 % interval "
              "over clips.", "", "| split | " + " | ".join(["metric", "value"]) + " |", "|---|---|---|"]
    physical = {}
    for split in SPLITS:
        clip_ids = [c["id"] for t in takes.values() if t["split"] == split for c in t["clips"]]
        if not clip_ids:
            continue
        physical[split] = physical_statistics(root, clip_ids)
        for name, (mean, ci) in physical[split].items():
            lines.append(f"| {split} | {name} | {mean:.4f} ± {ci:.4f} |")

    # --------------------------------------------------------------------- vocabulary
    vocab = {group: Counter() for group in ("train/val", "test")}
    for t in takes.values():
        for c in t["clips"]:
            for caption in c["captions"]:
                vocab["test" if t["split"] == "test" else "train/val"].update(re.findall(r"[a-z]+", caption.lower()))
    lines += ["", "## Caption vocabulary", ""]
    for group, counter in vocab.items():
        lines.append(f"- {group}: {len(counter)} words; most frequent: "
                     + ", ".join(f"{w} ({n})" for w, n in counter.most_common(25)))
    only_test = sorted(set(vocab["test"]) - set(vocab["train/val"]))
    lines.append(f"- words only in test captions (held-out phrasing): {len(only_test)}: {', '.join(only_test)}")
    return "\n".join(lines) + "\n", {"splits": summary, "physical": physical}


def contact_sheet(root: Path, out: Path, frames_per_strip: int = 6, panel: tuple[int, int] = (120, 170)) -> Path:
    """One keyframe strip per action (a normal-style training take when there is one) stacked into one PNG."""
    import tempfile

    from PIL import Image

    from renderers import render_keyframe_strip

    index = _load_index(root)
    chosen: dict[str, tuple[str, str]] = {}
    for stem, take in sorted(index["takes"].items()):
        if not take["clips"]:
            continue
        score = (take["style"] != "normal", take["split"] != "train")
        if take["action"] not in chosen or score < chosen[take["action"]][2]:
            clip = take["clips"][len(take["clips"]) // 2]
            chosen[take["action"]] = (clip["id"], clip["captions"][0], score)
    from adamotion.data.meta import dataset_skeleton, read_dataset_index

    skeleton = dataset_skeleton(read_dataset_index(root)[1])
    strips = []
    with tempfile.TemporaryDirectory() as tmp:
        for action, (clip_id, caption, _score) in sorted(chosen.items()):
            joints = np.load(root / "new_joints" / f"{clip_id}.npy")
            path = render_keyframe_strip(joints, Path(tmp) / f"{clip_id}.png", n=frames_per_strip, panel_size=panel,
                                         title=f"{action}: {caption}", skeleton=skeleton)
            strips.append(Image.open(path).convert("RGB"))
    width = max(s.width for s in strips)
    sheet = Image.new("RGB", (width, sum(s.height for s in strips)), (255, 255, 255))
    y = 0
    for strip in strips:
        sheet.paste(strip, (0, y))
        y += strip.height
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=64).save(out, optimize=True)  # flat stick figures: a palette keeps it well under 1 MB
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="imported dataset folder")
    parser.add_argument("--markdown", type=Path, default=None, help="write the statistics here")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--contact-sheet", type=Path, default=None, help="write the contact sheet PNG here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    text, numbers = build_report(args.root)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1) + "\n", encoding="utf-8")
    if args.contact_sheet:
        path = contact_sheet(args.root, args.contact_sheet)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
