"""One HumanML3D-layout folder mixing the procedural corpus with imported motion capture (``adamotion data mix``).

Training, evaluation and the gallery read one folder, so the mix is a folder: the motions of both sources
are hard-linked (copied where links are impossible) into ``out``, and the split files list both::

    train.txt val.txt test.txt                  both sources (train: mocap ids repeated ``mocap_repeat`` times)
    test_procedural.txt test_mocap.txt          each source's test split alone (separate evaluation tables)
    val_procedural.txt val_mocap.txt
    Mean.npy Std.npy                            over the mixed training list (repeats included)
    corpus.json                                 sources, licences, mix settings, which ids are motion capture

``procedural_fraction`` keeps that share of the procedural train/val motions (a motion and its mirror stay
together); the test splits are always whole. The licence of the mix is the most restrictive of its sources:
with Bandai Namco data it is CC BY-NC 4.0 with that dataset's attribution, and models trained on it inherit it
through their saved dataset metadata (:meth:`adamotion.data.meta.DatasetMeta.from_dataset_root`).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from adamotion.data.humanml3d import load_split_ids
from adamotion.data.meta import PROJECT_LICENSE, write_mean_std
from adamotion.motion.skeleton import HUMANML3D, Skeleton
from adamotion.utils.files import atomic_folder, atomic_write_json

PROCEDURAL_KIND = "procedural"
SPLITS = ("train", "val", "test")
_SUBFOLDERS = ("new_joint_vecs", "new_joints", "texts")


def _corpus_info(root: Path) -> dict:
    path = root / "corpus.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt JSON ({exc}); rebuild that dataset") from exc


def dataset_license(info: dict) -> dict:
    """The licence a dataset's ``corpus.json`` records (the project's Apache-2.0 when it records none)."""
    return dict(info.get("license") or PROJECT_LICENSE)


def motion_source_kinds(root: str | os.PathLike) -> dict[str, str]:
    """``{id: "motion capture"}`` for the motion-capture ids of a dataset (every other id is procedural)."""
    info = _corpus_info(Path(root))
    if "id_sources" in info:
        return dict(info["id_sources"])
    kind = info.get("source_kind")
    if kind and kind != PROCEDURAL_KIND:
        return {i: kind for split in SPLITS for i in _split_ids(Path(root), split)}
    return {}


def _split_ids(root: Path, split: str) -> list[str]:
    return load_split_ids(root, split) if (root / f"{split}.txt").is_file() else []


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _subsample(ids: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """Keep ``fraction`` of the base motions (a mirror follows its motion)."""
    if fraction >= 1.0:
        return ids
    present = set(ids)
    bases = sorted({i[1:] if i.startswith("M") and i[1:] in present else i for i in ids})
    keep = set(rng.choice(bases, size=max(1, int(round(fraction * len(bases)))), replace=False).tolist())
    return [i for i in ids if i in keep or (i.startswith("M") and i[1:] in keep)]


def mix_datasets(procedural: str | os.PathLike, mocap: str | os.PathLike, out: str | os.PathLike, *,
                 procedural_fraction: float = 1.0, mocap_repeat: int = 1, seed: int = 0,
                 skeleton: Skeleton = HUMANML3D) -> Path:
    """Write the mixed dataset folder ``out`` (atomically); see the module docstring."""
    from tqdm.auto import tqdm


    if not 0.0 < procedural_fraction <= 1.0:
        raise ValueError(f"procedural_fraction must be in (0, 1], got {procedural_fraction}")
    if mocap_repeat < 1:
        raise ValueError(f"mocap_repeat must be >= 1, got {mocap_repeat}")
    roots = {PROCEDURAL_KIND: Path(procedural).expanduser(), "mocap": Path(mocap).expanduser()}
    infos = {}
    for name, root in roots.items():
        for sub in _SUBFOLDERS[::2]:
            if not (root / sub).is_dir():
                raise FileNotFoundError(f"{root / sub}: missing; --{name} must be a HumanML3D-layout dataset folder "
                                        f"(adamotion data synth / import-bandai-namco)")
        infos[name] = _corpus_info(root)
    rng = np.random.default_rng(seed)
    ids = {name: {split: _split_ids(root, split) for split in SPLITS} for name, root in roots.items()}
    for split in ("train", "val"):
        ids[PROCEDURAL_KIND][split] = _subsample(ids[PROCEDURAL_KIND][split], procedural_fraction, rng)
    all_ids = {name: {i for split_ids in by_split.values() for i in split_ids} for name, by_split in ids.items()}
    clash = sorted(all_ids[PROCEDURAL_KIND] & all_ids["mocap"])
    if clash:
        raise ValueError(f"{roots['mocap']}: ids {clash[:5]} also exist in {roots[PROCEDURAL_KIND]}; the sources "
                         f"must have distinct motion ids")
    if not ids["mocap"]["train"]:
        raise ValueError(f"{roots['mocap']}: empty train split; import the motion capture first")

    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()) and _corpus_info(out).get("generator") != __name__:
        raise FileExistsError(f"{out}: exists and is not a mixed dataset; choose another --out or remove it")
    with atomic_folder(out) as tmp:
        os.chmod(tmp, 0o755)
        for sub in _SUBFOLDERS:
            (tmp / sub).mkdir()
        todo = [(name, i) for name in roots for i in sorted(all_ids[name])]
        for name, motion_id in tqdm(todo, desc="mix: link motions", unit="motion", disable=None):
            for sub, suffix in zip(_SUBFOLDERS, (".npy", ".npy", ".txt")):
                source = roots[name] / sub / f"{motion_id}{suffix}"
                if source.is_file():
                    _link(source, tmp / sub / f"{motion_id}{suffix}")
                elif sub != "new_joints":
                    raise FileNotFoundError(f"{source}: missing for id {motion_id!r} listed in a split of "
                                            f"{roots[name]}; rebuild that dataset")
        train = ids[PROCEDURAL_KIND]["train"] + ids["mocap"]["train"] * mocap_repeat
        lists = {"train": train,
                 "val": ids[PROCEDURAL_KIND]["val"] + ids["mocap"]["val"],
                 "test": ids[PROCEDURAL_KIND]["test"] + ids["mocap"]["test"]}
        for split in ("val", "test"):
            lists[f"{split}_procedural"] = ids[PROCEDURAL_KIND][split]
            lists[f"{split}_mocap"] = ids["mocap"][split]
        for split, split_ids in lists.items():
            (tmp / f"{split}.txt").write_text("".join(f"{i}\n" for i in split_ids), encoding="utf-8")

        counts: dict[str, int] = {}
        for motion_id in train:
            counts[motion_id] = counts.get(motion_id, 0) + 1
        sums = []
        for motion_id, weight in tqdm(counts.items(), desc="mix: statistics", unit="motion", disable=None):
            features = np.load(tmp / "new_joint_vecs" / f"{motion_id}.npy").astype(np.float64)  # (T, F)
            sums.append((weight * features.sum(0), weight * (features ** 2).sum(0), weight * len(features)))
        write_mean_std(tmp, sums, skeleton)

        licences = {name: dataset_license(info) for name, info in infos.items()}
        restricted = [lic for lic in licences.values() if lic["name"] != PROJECT_LICENSE["name"]]
        mocap_kind = infos["mocap"].get("source_kind", "motion capture")
        index = {
            "format": "humanml3d",
            "generator": __name__,
            "skeleton": skeleton.name,
            "fps": skeleton.fps,
            "feature_dim": skeleton.feature_dim,
            "mirror_prefix": "M",
            "mix": {"procedural_fraction": procedural_fraction, "mocap_repeat": mocap_repeat, "seed": seed},
            "split_sizes": {split: len(v) for split, v in lists.items()},
            "license": restricted[0] if restricted else PROJECT_LICENSE,
            "sources": [{"name": infos[name].get("dataset", roots[name].name), "kind": kind, "root": str(roots[name]),
                         "license": licences[name],
                         "ids": {split: len(ids[name][split]) for split in SPLITS}}
                        for name, kind in ((PROCEDURAL_KIND, PROCEDURAL_KIND), ("mocap", mocap_kind))],
            "caption_lexicons": infos[PROCEDURAL_KIND].get("caption_lexicons", {"train_val": "seen", "test": "held_out"}),
            "normalization": {"statistics_split": "train",
                              "note": "Mean: per dimension over the mixed training list (mirrors and mocap repeats "
                                      "included). Std: per-dimension std averaged within each feature group; no "
                                      "further group scaling."},
            "id_sources": {i: mocap_kind for i in sorted(all_ids["mocap"])},
        }
        atomic_write_json(tmp / "corpus.json", index)
        os.chmod(tmp / "corpus.json", 0o644)
    return out
