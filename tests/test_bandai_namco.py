"""Bandai Namco Research Motion dataset import, captions, mixed corpus and licence propagation.

Real takes come from ``shared/data/bandai-namco/bandai_namco_bvh.tar.xz`` (a handful of takes are extracted once
per module); those tests skip with a loud reason only when the shared folder is absent. Caption-lexicon,
length-policy and mixing logic are also tested on their own.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from adamotion.cli import main as cli_main
from adamotion.data import bandai_captions as bcap
from adamotion.data import captions as cap
from adamotion.data.bandai_namco import assign_splits, discover_takes, import_bandai_namco
from adamotion.data.clips import MAX_FRAMES, MIN_FRAMES, pad_or_drop, windows
from adamotion.data.humanml3d import MotionTextDataset, read_captions
from adamotion.data.meta import DatasetMeta
from adamotion.data.mixed import mix_datasets, motion_source_kinds
from adamotion.io.bvh import load_bvh_motion
from adamotion.motion.features import mirror_joints
from adamotion.motion.skeleton import HUMANML3D

SHARED = Path(__file__).parents[1] / ".." / "shared"
ARCHIVE = SHARED / "data" / "bandai-namco" / "bandai_namco_bvh.tar.xz"
S = HUMANML3D
TAKES = (
    "dataset-2_raise-up-left-hand_normal_001",  # short: padded to 40 frames
    "dataset-2_walk_normal_001",
    "dataset-1_bye_normal_001",  # one-handed wave: the side is read from the motion
    "dataset-2_wave-right-hand_elderly_001",
    "dataset-1_slash_normal_001",  # 13 s: cut into windows
    "dataset-1_walk_old_001",
)
TINY_TRAIN = {"loop": {"steps": 1, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0, "checkpoint_every": 1,
                       "val_every": 1, "log_every": 1, "progress": False, "seed": 0, "crop_frames": 40},
              "model": {"embed_dim": 8, "hidden": 8, "word_vectors": "minilm"}, "val_max_items": 8,
              "val_batch_size": 8}


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def bandai_src(tmp_path_factory) -> Path:
    """The dataset/ folder (both sub-datasets' cfg/ and a few takes), as a user's clone has it."""
    if not ARCHIVE.is_file():
        pytest.skip(f"REAL BANDAI NAMCO DATA MISSING: {ARCHIVE.resolve()} not found; the shared folder "
                    f"(../shared next to the repo) is needed for the Bandai Namco import tests")
    out = tmp_path_factory.mktemp("bandai")
    patterns = ["*/cfg/*.txt"] + [f"*/data/{stem}.{ext}" for stem in TAKES for ext in ("bvh", "json")]
    if shutil.which("tar"):  # GNU tar decompresses about twice as fast as tarfile
        subprocess.run(["tar", "-xJf", str(ARCHIVE), "-C", str(out), "--wildcards", *patterns], check=True)
    else:
        wanted = re.compile(r"(/cfg/[^/]+\.txt|/data/(" + "|".join(map(re.escape, TAKES)) + r")\.(bvh|json))$")
        with tarfile.open(ARCHIVE, mode="r:xz") as archive:
            members = [m for m in archive if m.isfile() and wanted.search(m.name)]
            archive.extractall(out, members=members, filter="data")
    found = sorted(p.stem for p in out.rglob("*.bvh"))
    assert found == sorted(TAKES), f"archive lacks takes {sorted(set(TAKES) - set(found))}"
    return out / "dataset"


@pytest.fixture(scope="module")
def imported(bandai_src, tmp_path_factory) -> Path:
    return import_bandai_namco(bandai_src, tmp_path_factory.mktemp("bn") / "bandai_namco", workers=1)


def _frames(path: Path) -> int:
    return int(re.search(r"Frames:\s*(\d+)", path.read_text()).group(1))


def _facing(joints: np.ndarray) -> np.ndarray:
    """Unit forward direction of one frame (22, 3) from hips and shoulders (the figure's left is +x)."""
    across = (joints[S.index("right_hip")] - joints[S.index("left_hip")]
              + joints[S.index("right_shoulder")] - joints[S.index("left_shoulder")])
    forward = np.cross([0.0, 1.0, 0.0], across)
    return forward / np.linalg.norm(forward)


def _train_one_step(root: Path, out: Path) -> None:
    from adamotion.models.extractors import ExtractorPair
    from adamotion.train.extractors import train_extractors

    train_extractors(root, out, TINY_TRAIN)
    assert ExtractorPair.from_pretrained(out) is not None


# ------------------------------------------------------------------------------------------------ real takes
def test_rig_map_reads_metres_at_20_fps_with_the_left_hand_on_the_left(bandai_src):
    path = next(bandai_src.rglob("dataset-2_raise-up-left-hand_normal_001.bvh"))
    loaded = load_bvh_motion(path, name_map="bandai-namco", skeleton=HUMANML3D)
    assert loaded.name_map == "bandai-namco" and loaded.scale == 0.01 and loaded.fps == 20.0
    assert loaded.joints.shape[0] == (_frames(path) - 1) * 2 // 3 + 1  # 30 -> 20 fps
    head = loaded.joints[:, S.index("head"), 1] - loaded.joints[:, list(S.foot_joints), 1].min()
    assert 1.3 < float(np.median(head)) < 1.8  # a standing adult in metres
    # The figure faces +z (right-handed, y up) at the start, so its left side is +x: the raised hand is on +x.
    first = loaded.joints[0]
    assert _facing(first)[2] > 0.9
    left, right = S.index("left_wrist"), S.index("right_wrist")
    assert first[left, 0] > first[right, 0]
    assert loaded.joints[:, left, 1].max() > loaded.joints[:, right, 1].max() + 0.3


def test_import_writes_floor_facing_lengths_and_captions(bandai_src, imported):
    info = json.loads((imported / "corpus.json").read_text())
    assert info["license"]["name"] == "CC BY-NC 4.0" and "Bandai Namco" in info["license"]["attribution"]
    assert set(info["takes"]) == set(TAKES)
    splits = {split: set((imported / f"{split}.txt").read_text().split()) for split in ("train", "val", "test")}
    assert all(splits.values()), "every split must be non-empty"
    for stem, take in info["takes"].items():
        assert "dropped" not in take, f"{stem}: {take.get('dropped')}"
        source_frames = _frames(next(bandai_src.rglob(f"{stem}.bvh")))
        joints_20fps = (source_frames - 1) * 2 // 3 + 1
        clips = take["clips"]
        if joints_20fps - 1 < MIN_FRAMES:
            assert take["length"].startswith("padded") and clips[0]["frames"] == MIN_FRAMES
        elif joints_20fps - 1 <= MAX_FRAMES:
            assert [c["frames"] for c in clips] == [joints_20fps - 1]
        else:
            assert len(clips) >= 2 and all(MIN_FRAMES <= c["frames"] <= MAX_FRAMES for c in clips)
            assert sum(c["frames"] for c in clips) <= joints_20fps - 1
        for clip in clips:
            for motion_id in (clip["id"], "M" + clip["id"]):
                joints = np.load(imported / "new_joints" / f"{motion_id}.npy")  # (T, 22, 3)
                features = np.load(imported / "new_joint_vecs" / f"{motion_id}.npy")
                assert features.shape == (clip["frames"], S.feature_dim) and joints.shape == (clip["frames"], 22, 3)
                assert abs(float(joints[..., 1].min())) < 1e-3  # feet on the floor
                assert _facing(joints[0])[2] > 0.98  # facing +z at the first frame
                assert np.allclose(joints[0, 0, [0, 2]], 0.0, atol=1e-4)
                lines = read_captions(imported / "texts" / f"{motion_id}.txt")
                assert len(lines) == 3 and len({line["caption"] for line in lines}) >= 2
                # Splits by take: every clip of a take (and its mirror) sits in the take's split only.
                owners = {split for split, ids in splits.items() if motion_id in ids}
                assert take["split"] in owners and owners <= {take["split"], *info["borrowed_splits"]}


def test_raised_left_hand_is_left_and_the_mirror_swaps_motion_and_caption(imported):
    stem = "dataset-2_raise-up-left-hand_normal_001"
    joints = np.load(imported / "new_joints" / f"{stem}.npy")
    mirrored = np.load(imported / "new_joints" / f"M{stem}.npy")
    left, right, head = S.index("left_wrist"), S.index("right_wrist"), S.index("head")
    assert joints[:, left, 1].max() > joints[:, head, 1].max() - 0.1  # the left hand goes up to the head
    assert joints[:, left, 1].max() > joints[:, right, 1].max() + 0.3
    assert mirrored[:, right, 1].max() > mirrored[:, left, 1].max() + 0.3
    # Mirroring the canonical motion gives the mirrored copy (up to the target skeleton's small asymmetry).
    np.testing.assert_allclose(mirror_joints(joints, skeleton=HUMANML3D), mirrored, atol=0.03)
    texts = [line["caption"] for line in read_captions(imported / "texts" / f"{stem}.txt")]
    mirror_texts = [line["caption"] for line in read_captions(imported / "texts" / f"M{stem}.txt")]
    assert all("left" in t and "right" not in t for t in texts)
    assert mirror_texts == [cap.mirror_caption(t) for t in texts]
    # bye: one hand waves; the caption names the hand that moves most (read from the motion).
    bye = np.load(imported / "new_joints" / "dataset-1_bye_normal_001.npy")
    travel = {side: np.abs(np.diff(bye[:, S.index(f"{side}_wrist")], axis=0)).sum() for side in ("left", "right")}
    waving = max(travel, key=travel.get)
    assert all(f"{waving} hand" in line["caption"]
               for line in read_captions(imported / "texts" / "dataset-1_bye_normal_001.txt"))


def test_test_split_captions_use_held_out_phrasing(imported):
    info = json.loads((imported / "corpus.json").read_text())
    held_out = bcap.lexicon_words(cap.HELD_OUT) - cap.SHARED_WORDS
    for stem, take in info["takes"].items():
        for clip in take["clips"]:
            words = {w for c in clip["captions"] for w in re.findall(r"[a-z]+", c)}
            seen_words = set(bcap.lexicon_words(cap.SEEN)) - cap.SHARED_WORDS
            if take["split"] == "test":
                assert words & held_out and not (words - set(bcap.lexicon_words(cap.HELD_OUT)))
            else:
                assert not (words - seen_words - cap.SHARED_WORDS), f"{stem}: {words - seen_words}"


def test_imported_and_mixed_datasets_load_and_train_one_step(imported, tiny_corpus, tmp_path):
    dataset = MotionTextDataset(imported, "train", skeleton=HUMANML3D)
    assert len(dataset) > 0 and dataset[0]["features"].shape[-1] == S.feature_dim
    _train_one_step(imported, tmp_path / "ext_bn")
    assert DatasetMeta.from_dataset_root(imported).license["name"] == "CC BY-NC 4.0"

    mixed = mix_datasets(tiny_corpus, imported, tmp_path / "mixed", mocap_repeat=2)
    info = json.loads((mixed / "corpus.json").read_text())
    mocap_train = (imported / "train.txt").read_text().split()
    train = (mixed / "train.txt").read_text().split()
    assert len(train) == len((tiny_corpus / "train.txt").read_text().split()) + 2 * len(mocap_train)
    assert (mixed / "test_mocap.txt").read_text() == (imported / "test.txt").read_text()
    assert (mixed / "test_procedural.txt").read_text() == (tiny_corpus / "test.txt").read_text()
    assert info["license"]["name"] == "CC BY-NC 4.0"
    assert set(motion_source_kinds(mixed)) == {i for s in ("train", "val", "test")
                                               for i in (imported / f"{s}.txt").read_text().split()}
    meta = DatasetMeta.from_dataset_root(mixed)
    assert meta.license["name"] == "CC BY-NC 4.0" and len(meta.extra["sources"]) == 2
    assert DatasetMeta.from_dataset_root(tiny_corpus).license["name"] == "Apache-2.0"
    items = MotionTextDataset(mixed, "test_mocap", skeleton=HUMANML3D)  # the real test split alone, as evaluation reads it
    assert {item.motion_id.split(":")[0] for item in items.items} == set((imported / "test.txt").read_text().split())

    from adamotion.retrieval.gallery import GalleryData, write_gallery

    gallery = GalleryData(write_gallery(mixed, tmp_path / "gallery", splits=("test",), max_per_split=10))
    sources = {gallery.source(i) for i in gallery.ids}
    assert sources == {"procedural", "motion capture"}


def test_import_bvh_with_the_bandai_rig_writes_all_splits_and_trains(bandai_src, tmp_path):
    files = sorted(bandai_src.rglob("*.bvh"))
    assert cli_main(["data", "import-bvh", *map(str, files), "--rig", "bandai-namco", "--out", str(tmp_path / "ds")]) == 0
    out = tmp_path / "ds"
    splits = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert all(splits.values()) and not (set(splits["train"]) & (set(splits["val"]) | set(splits["test"])))
    for ids in splits.values():
        for motion_id in ids:
            assert MIN_FRAMES <= len(np.load(out / "new_joint_vecs" / f"{motion_id}.npy")) <= MAX_FRAMES
    assert json.loads((out / "import_meta.json").read_text())["motions"][0]["name_map"] == "bandai-namco"
    _train_one_step(out, tmp_path / "ext")


def test_discover_reads_json_labels_and_splits_by_take(bandai_src):
    takes = discover_takes(bandai_src)
    by_stem = {t.stem: t for t in takes}
    assert by_stem["dataset-2_wave-right-hand_elderly_001"].action == "wave-right-hand"
    assert by_stem["dataset-2_wave-right-hand_elderly_001"].style == "elderly"
    assert len(discover_takes(next(bandai_src.glob("*-2")))) == sum(t.subset == 2 for t in takes)  # one sub-dataset
    assert assign_splits(takes, seed=0) == assign_splits(list(reversed(takes)), seed=0)


# ------------------------------------------------------------------------------------------------ logic only
def test_held_out_words_never_appear_in_training_captions():
    assert bcap.held_out_overlap() == frozenset()
    rng = np.random.default_rng(0)
    for action in bcap.ACTION_PHRASES:
        for style in bcap.STYLE_PHRASES:
            texts = bcap.describe_take(action, style, cap.SEEN, rng, side="left", turn="left")
            assert len(set(texts)) == 3, (action, style, texts)
            assert all(set(re.findall(r"[a-z]+", t)) <= set(bcap.lexicon_words(cap.SEEN)) for t in texts)


def test_splits_are_stratified_by_action_and_style(tmp_path):
    from adamotion.data.bandai_namco import Take

    takes = [Take(tmp_path / f"dataset-2_walk_{style}_{n:03d}.bvh", 2, "walk", style, n)
             for style in ("normal", "elderly") for n in range(40)]
    splits = assign_splits(takes, seed=3)
    for style in ("normal", "elderly"):
        counts = {s: sum(1 for t in takes if t.style == style and splits[t.stem] == s) for s in ("train", "val", "test")}
        assert counts == {"train": 32, "val": 2, "test": 6}
    rare = [Take(tmp_path / f"dataset-1_call_{style}_001.bvh", 1, "call", style, 1) for style in ("normal", "sad")]
    assert set(assign_splits(takes + rare, seed=3)[t.stem] for t in rare) == {"train"}  # too few to hold out


def test_length_policy_pads_resting_ends_and_cuts_long_takes():
    still = np.zeros((30, 22, 3), np.float32)
    moving = np.cumsum(np.full((30, 22, 3), 0.05, np.float32), axis=0)  # 1 m/s per axis: never at rest
    padded, reason = pad_or_drop(np.concatenate([still, moving]), 20.0)  # 59 rows: kept as is
    assert reason == "kept" and len(padded) == 60
    gesture = np.concatenate([still[:10], moving[:10] - moving[0], still[:10] + moving[9] - moving[0]])  # rests at both ends
    padded, reason = pad_or_drop(gesture, 20.0)
    assert len(padded) - 1 == MIN_FRAMES and reason == "padded (+5 held frames before, +6 after)"
    np.testing.assert_array_equal(padded[:6], np.repeat(gesture[:1], 6, 0))
    assert pad_or_drop(moving, 20.0)[0] is None and pad_or_drop(still[:20], 20.0)[0] is None
    long_walk = np.cumsum(np.full((500, 22, 3), 0.05, np.float32), axis=0)
    clips = windows(long_walk, 20.0)
    assert len(clips) == 3 and all(MIN_FRAMES <= len(c) - 1 <= MAX_FRAMES for c in clips)
    slightly_long = np.concatenate([np.zeros((40, 22, 3), np.float32), long_walk[:190]])  # 229 rows, idle start
    (clip,) = windows(slightly_long, 20.0)
    assert len(clip) - 1 == MAX_FRAMES and np.array_equal(clip[-1], slightly_long[-1])  # the active part kept


def test_cli_reports_a_bad_source_in_one_line(tmp_path, capsys):
    assert cli_main(["data", "import-bandai-namco", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope: not a folder" in err
    (tmp_path / "empty").mkdir()
    assert cli_main(["data", "import-bandai-namco", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no dataset-N_*.bvh takes found" in capsys.readouterr().err


def test_model_card_and_about_tab_take_the_licence_from_the_saved_dataset_meta(tmp_path):
    import importlib.util

    from adamotion.data.bandai_namco import LICENSE
    from app.service import _data_line, _license_line

    spec = importlib.util.spec_from_file_location("model_card", Path(__file__).parents[1] / "scripts" / "model_card.py")
    card = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(card)
    mean, std = np.zeros(S.feature_dim, np.float32), np.ones(S.feature_dim, np.float32)
    procedural = DatasetMeta("procedural", S, S.fps, S.feature_dim, mean, std)
    procedural.save(tmp_path / "adaqf" / "meta")
    assert card.license_section(tmp_path)[-1].startswith("Code, models and the procedural training data: Apache-2.0")
    assert _license_line(procedural) == "- models and training data: Apache-2.0"
    assert "procedural motion-language corpus" in _data_line(procedural)
    sources = [{"name": "procedural", "kind": "procedural", "license": {"name": "Apache-2.0"}},
               {"name": "Bandai Namco Research Motion dataset", "kind": "motion capture", "license": LICENSE}]
    mixed = DatasetMeta("mixed", S, S.fps, S.feature_dim, mean, std, extra={"license": LICENSE, "sources": sources})
    mixed.save(tmp_path / "baseline" / "meta")
    reloaded = DatasetMeta.load(tmp_path / "baseline" / "meta")
    section = "\n".join(card.license_section(tmp_path))
    assert "licensed CC BY-NC 4.0 too" in section and LICENSE["attribution"] in section
    data_line = _data_line(reloaded)  # the About tab names both sources from the saved meta, not a fixed text
    assert "Bandai Namco Research Motion dataset (motion capture, CC BY-NC 4.0)" in data_line
    assert "procedural (procedural, Apache-2.0)" in data_line
    line = _license_line(reloaded)
    assert "CC BY-NC 4.0" in line and "non-commercial" in line and LICENSE["attribution"] in line


def test_default_data_script_mixes_when_given_the_dataset_and_stays_procedural_without(bandai_src, tiny_corpus,
                                                                                        tmp_path):
    import os
    import sys

    script = Path(__file__).parents[1] / "scripts" / "default_data.sh"
    env = {**os.environ, "ADAMOTION": f"{sys.executable} -m adamotion",
           "BANDAI_NAMCO_ARCHIVE": str(tmp_path / "no-archive.tar.xz")}
    env.pop("BANDAI_NAMCO", None)
    outs = [str(tmp_path / name) for name in ("bn", "mixed")]
    alone = subprocess.run([str(script), str(tiny_corpus), *outs], env=env, capture_output=True, text=True, check=True)
    assert alone.stdout.strip() == str(tiny_corpus) and "procedural corpus only" in alone.stderr
    env["BANDAI_NAMCO"] = str(bandai_src)
    mixed = subprocess.run([str(script), str(tiny_corpus), *outs], env=env, capture_output=True, text=True, check=True)
    assert mixed.stdout.strip() == outs[1]
    assert json.loads((Path(outs[1]) / "corpus.json").read_text())["license"]["name"] == "CC BY-NC 4.0"
    env["BANDAI_NAMCO"] = str(tmp_path / "missing")
    bad = subprocess.run([str(script), str(tiny_corpus), *outs], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "is not a folder" in bad.stderr


def test_dataset_report_counts_the_import_and_draws_one_strip_per_action(imported, tmp_path):
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("dataset_report",
                                                  Path(__file__).parents[1] / "scripts" / "dataset_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    text, numbers = report.build_report(imported)
    info = json.loads((imported / "corpus.json").read_text())
    assert sum(s["takes"] for s in numbers["splits"].values()) == len(TAKES)
    assert sum(s["clips"] for s in numbers["splits"].values()) == sum(len(t["clips"]) for t in info["takes"].values())
    frames = sum(c["frames"] for t in info["takes"].values() for c in t["clips"])
    assert sum(s["hours"] for s in numbers["splits"].values()) == pytest.approx(frames / 20 / 3600)
    assert "| raise-up-left-hand |" in text and "skating ratio" in text
    sheet = report.contact_sheet(imported, tmp_path / "sheet.png", panel=(60, 90))
    actions = {t["action"] for t in info["takes"].values() if t["clips"]}
    with Image.open(sheet) as image:
        assert image.height % len(actions) == 0 and image.height // len(actions) >= 90
    assert sheet.stat().st_size < 1_000_000


def test_a_take_with_an_unknown_label_is_left_out_with_its_reason(tmp_path):
    from adamotion.data import bandai_namco as bn

    folder = tmp_path / "dataset" / "Bandai-Namco-Research-Motiondataset-3" / "data"
    folder.mkdir(parents=True)
    (folder / "dataset-3_juggle_normal_001.bvh").write_text("not read: the label is checked first")
    (take,) = discover_takes(tmp_path / "dataset")
    assert (take.action, take.style, take.subset) == ("juggle", "normal", 3)
    bn._init_worker(str(tmp_path), 0, S.name)
    record = bn._import_take((take, "train"))
    assert record["clips"] == [] and record["dropped"].startswith("unknown action 'juggle'")
