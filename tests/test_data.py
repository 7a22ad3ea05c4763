"""Procedural corpus, captions, HumanML3D loader and dataset metadata."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from adamotion.data import captions as cap
from adamotion.data.humanml3d import MotionTextDataset, collate_motion_text, load_split_ids, read_captions
from adamotion.data.meta import DatasetMeta
from adamotion.data.synthetic import (
    FAMILIES, build_corpus, corpus_statistics, generate_motion, skating_counts,
)
from adamotion.motion.features import canonicalize_joints, features_from_joints, mirror_joints
from adamotion.motion.physics import min_foot_height, skating_ratio
from adamotion.motion.skeleton import HUMANML3D as SK
from adamotion.utils.serialization import CheckpointError

SPLITS = ("train", "val", "test")


def _all_ids(root: Path) -> list[str]:
    return [i for s in SPLITS for i in load_split_ids(root, s)]


def _limb_flexion(joints: np.ndarray, a: int, b: int, c: int) -> np.ndarray:
    """(T,) degrees between bone a->b and bone b->c (0 = straight limb)."""
    u, w = joints[:, b] - joints[:, a], joints[:, c] - joints[:, b]
    cos = (u * w).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(w, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# ============================================================================ corpus layout and determinism
def test_corpus_layout_and_mirrors(tiny_corpus):
    for name in ("train.txt", "val.txt", "test.txt", "Mean.npy", "Std.npy", "corpus.json"):
        assert (tiny_corpus / name).is_file(), name
    splits = {s: load_split_ids(tiny_corpus, s) for s in SPLITS}
    base = {s: [i for i in ids if not i.startswith("M")] for s, ids in splits.items()}
    assert sum(len(v) for v in base.values()) == 60
    assert len(base["train"]) == 48 and len(base["val"]) == 3 and len(base["test"]) == 9  # 80/5/15 by motion
    for split, ids in splits.items():
        for motion_id in base[split]:
            assert "M" + motion_id in ids  # the mirror lives in the same split as its motion
        for motion_id in ids:
            joints = np.load(tiny_corpus / "new_joints" / f"{motion_id}.npy")
            feats = np.load(tiny_corpus / "new_joint_vecs" / f"{motion_id}.npy")
            assert joints.dtype == np.float32 and joints.shape[1:] == (SK.num_joints, 3)
            assert feats.dtype == np.float32 and feats.shape == (len(joints) - 1, SK.feature_dim)
            assert SK.min_frames <= len(feats) <= SK.max_frames
            assert (tiny_corpus / "texts" / f"{motion_id}.txt").is_file()
    assert not set(splits["train"]) & set(splits["test"])
    mean, std = np.load(tiny_corpus / "Mean.npy"), np.load(tiny_corpus / "Std.npy")
    assert mean.shape == std.shape == (SK.feature_dim,) and np.all(std > 0)
    for sl in SK.feature_slices.values():  # one std per feature group
        assert np.all(std[sl] == std[sl][0])
    train_feats = np.concatenate([np.load(tiny_corpus / "new_joint_vecs" / f"{i}.npy") for i in splits["train"]])
    np.testing.assert_allclose(mean, train_feats.mean(0), atol=1e-4)


def test_mirrored_copies(tiny_corpus):
    ids = [i for i in _all_ids(tiny_corpus) if not i.startswith("M")][:10]
    swapped = 0
    for motion_id in ids:
        joints = np.load(tiny_corpus / "new_joints" / f"{motion_id}.npy")
        mirrored = np.load(tiny_corpus / "new_joints" / f"M{motion_id}.npy")
        # Mirrored (x negated, sides swapped), then re-posed on the asymmetric target skeleton.
        np.testing.assert_array_equal(mirrored, canonicalize_joints(mirror_joints(joints, SK), SK))
        flipped = mirror_joints(joints, SK)
        assert np.abs(mirrored - flipped).max() < 0.05 * max(1.0, np.abs(flipped[:, 0]).max())
        texts = [c["caption"] for c in read_captions(tiny_corpus / "texts" / f"{motion_id}.txt")]
        mirrored_texts = [c["caption"] for c in read_captions(tiny_corpus / "texts" / f"M{motion_id}.txt")]
        assert mirrored_texts == [cap.mirror_caption(t) for t in texts]
        swapped += sum(a != b for a, b in zip(texts, mirrored_texts))
    assert swapped > 0  # some captions mention a side, and it flips
    assert cap.mirror_caption("waves the left hand, turns right clockwise") == "waves the right hand, turns left counterclockwise"


def test_features_match_joint_files(tiny_corpus):
    for motion_id in _all_ids(tiny_corpus)[::9]:
        joints = np.load(tiny_corpus / "new_joints" / f"{motion_id}.npy")
        feats = np.load(tiny_corpus / "new_joint_vecs" / f"{motion_id}.npy")
        np.testing.assert_array_equal(feats, features_from_joints(joints, SK))


def test_build_is_deterministic_and_seeded(tiny_corpus, tmp_path):
    again = build_corpus(tmp_path / "again", size="tiny", seed=0, skeleton=SK).root
    for sub in ("new_joint_vecs", "new_joints", "texts"):
        for path in sorted((tiny_corpus / sub).iterdir()):
            assert path.read_bytes() == (again / sub / path.name).read_bytes(), path.name
    for name in ("train.txt", "test.txt", "Mean.npy", "Std.npy"):
        assert (tiny_corpus / name).read_bytes() == (again / name).read_bytes()
    # A few motions with two worker processes give the same bytes as one process; another seed differs.
    one = build_corpus(tmp_path / "one", num_motions=6, seed=3, workers=1, skeleton=SK).root
    two = build_corpus(tmp_path / "two", num_motions=6, seed=3, workers=2, skeleton=SK).root
    other = build_corpus(tmp_path / "other", num_motions=6, seed=4, workers=1, skeleton=SK).root
    for path in sorted((one / "new_joint_vecs").iterdir()):
        assert path.read_bytes() == (two / "new_joint_vecs" / path.name).read_bytes()
        assert path.read_bytes() != (other / "new_joint_vecs" / path.name).read_bytes()


def test_build_replaces_a_corpus_but_refuses_other_folders(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="mine"):
        build_corpus(foreign, num_motions=3, skeleton=SK)
    assert (foreign / "notes.txt").read_text() == "keep me"
    root = build_corpus(tmp_path / "c", num_motions=3, seed=1, skeleton=SK).root
    build_corpus(root, num_motions=4, seed=1, skeleton=SK)
    assert json.loads((root / "corpus.json").read_text())["num_motions"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left behind
    with pytest.raises(ValueError, match="size"):
        build_corpus(tmp_path / "x", size="huge", skeleton=SK)


# ============================================================================ motion content
def test_families_present(tiny_corpus):
    assert len(FAMILIES) >= 24
    index = json.loads((tiny_corpus / "corpus.json").read_text())
    counts = index["statistics"]["family_counts"]
    assert set(counts) == set(FAMILIES)  # every family occurs in the tiny corpus
    actions = [len(m["actions"]) for m in index["motions"].values()]
    assert min(actions) == 1 and max(actions) >= 2  # single actions and compositions


def test_kinematics_are_valid(tiny_corpus):
    target = np.linalg.norm(SK.target_offsets, axis=-1)[1:]
    parents = list(SK.parents[1:])
    skating = steps = 0
    grounded = frames = 0
    for motion_id in _all_ids(tiny_corpus):
        joints = np.load(tiny_corpus / "new_joints" / f"{motion_id}.npy").astype(np.float64)
        bones = np.linalg.norm(joints[:, 1:] - joints[:, parents], axis=-1)  # (T, J-1)
        np.testing.assert_allclose(bones, np.broadcast_to(target, bones.shape), atol=1e-4)
        assert min_foot_height(joints, SK) >= -0.01
        assert joints[:, :, 1].min() >= -0.01  # nothing else goes through the floor either
        for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
            assert _limb_flexion(joints, hip, knee, ankle).max() <= 152.0
        for shoulder, elbow, wrist in ((16, 18, 20), (17, 19, 21)):
            assert _limb_flexion(joints, shoulder, elbow, wrist).max() <= 152.0
        s, n = skating_counts(joints, SK)
        skating, steps = skating + s, steps + n
        lowest = joints[:, list(SK.foot_joints), 1].min(axis=1)  # (T,)
        grounded += int((lowest < 0.02).sum())
        frames += len(joints)
    assert skating / steps < 0.03
    assert grounded / frames > 0.85  # a foot is on the floor except in flight phases


def test_locomotion_moves_and_stance_feet_stay_planted():
    rng = np.random.default_rng(7)
    walk = generate_motion(rng, plan=["walk"], skeleton=SK).joints
    assert np.linalg.norm(walk[-1, 0, [0, 2]] - walk[0, 0, [0, 2]]) > 1.0  # it really walks forward
    assert walk[-1, 0, 2] > 1.0  # along +z, the direction it faces at frame 0
    feet = walk[:, [7, 8]]  # ankles
    on_floor = feet[:, :, 1] < 1e-3
    steps = np.linalg.norm(np.diff(feet[:, :, [0, 2]], axis=0), axis=-1)  # (T-1, 2)
    assert steps[on_floor[1:] & on_floor[:-1]].max() < 1e-4  # a planted ankle does not slide at all
    assert skating_ratio(walk, SK) == 0.0
    left = generate_motion(np.random.default_rng(1), plan=["turn_in_place"], skeleton=SK).joints
    facing = np.cross([0, 1, 0], (left[:, 2] - left[:, 1]) + (left[:, 17] - left[:, 16]))
    start, end = math.atan2(facing[0, 0], facing[0, 2]), math.atan2(facing[-1, 0], facing[-1, 2])
    assert abs(end - start) > math.radians(60)  # it turns


def test_sit_down_bends_knees_and_lowers_hips():
    joints = generate_motion(np.random.default_rng(0), plan=["sit_down"], skeleton=SK).joints
    assert joints[-1, 0, 1] < joints[0, 0, 1] - 0.25  # pelvis drops onto the invisible chair
    assert _limb_flexion(joints, 1, 4, 7)[-1] > 70  # knees bent
    assert min_foot_height(joints, SK) > -1e-4


def test_group_std_shares_one_value_per_feature_group():
    from adamotion.data.meta import group_std

    per_dim = np.arange(1, SK.feature_dim + 1, dtype=np.float64)
    per_dim[SK.feature_slices["root_y"]] = 0.0  # a constant group gets std 1, not 0
    out = group_std(per_dim, SK)
    for name, columns in SK.feature_slices.items():
        expected = 1.0 if name == "root_y" else per_dim[columns].mean()
        np.testing.assert_allclose(out[columns], expected)
    with pytest.raises(ValueError, match="shape"):
        group_std(per_dim[:-1], SK)


def test_skating_ratio_detects_sliding():
    joints = generate_motion(np.random.default_rng(2), plan=["squat"], skeleton=SK).joints.copy()
    assert skating_ratio(joints, SK) == 0.0
    slide = joints.copy()
    slide[:, :, 0] += np.arange(len(slide))[:, None] * 0.04  # whole body glides 4 cm per frame, feet on floor
    assert skating_ratio(slide, SK) == 1.0
    assert skating_ratio(slide, SK, fps=10.0) == 0.0  # 4 cm per frame at 10 fps is below 5 cm
    with pytest.raises(ValueError, match="5 joints but skeleton 'humanml3d' has 22"):
        skating_ratio(joints[:, :5], SK)


# ============================================================================ captions
def test_held_out_lexicon_is_disjoint_from_train_captions(tiny_corpus):
    assert cap.lexicon_overlap() == frozenset()
    held_out = cap.held_out_lexicon()
    assert {"strolls", "leaps", "stroll", "leap"} <= held_out and not {"walks", "jumps", "walk"} & held_out
    seen_words = set()
    for split in ("train", "val"):
        for motion_id in load_split_ids(tiny_corpus, split):
            for c in read_captions(tiny_corpus / "texts" / f"{motion_id}.txt"):
                seen_words |= set(cap.tokenize(c["caption"])) | {t.rpartition("/")[0] for t in c["tokens"]}
    assert not seen_words & held_out
    for motion_id in load_split_ids(tiny_corpus, "test"):
        for c in read_captions(tiny_corpus / "texts" / f"{motion_id}.txt"):
            assert set(cap.tokenize(c["caption"])) & held_out, c["caption"]  # held-out phrasing only
    stats = corpus_statistics(tiny_corpus)
    assert stats.held_out_overlap == [] and stats.test_verb_overlap == 0.0 and stats.held_out_words_in_test > 10


def test_caption_files_parse_with_known_tags(tiny_corpus):
    for motion_id in _all_ids(tiny_corpus):
        lines = read_captions(tiny_corpus / "texts" / f"{motion_id}.txt")
        assert len([c for c in lines if c["start"] == 0 and c["end"] == 0]) == 3  # three whole-clip captions
        for c in lines:
            assert c["tokens"] == cap.tag_caption(c["caption"])
            for seconds in (c["start"], c["end"]):  # the published loader's int(t * fps) finds our frame
                assert int(seconds * SK.fps) == math.floor(seconds * SK.fps + 1e-6)
            for token in c["tokens"]:
                word, _, pos = token.rpartition("/")
                assert word and pos in cap.POS_TAGS and pos != "PUNCT"
    assert cap.tag_caption("A person walks forward, then waves the left hand.") == [
        "a/DET", "person/NOUN", "walk/VERB", "forward/ADV", "then/ADV", "wave/VERB", "the/DET", "left/ADJ", "hand/NOUN"]
    assert cap.pos_tag("jumps.")[-1] == (".", "PUNCT")


def test_describe_varies_phrasing():
    actions = [cap.ActionInfo("walk", {"speed": "slow", "count": 4}), cap.ActionInfo("wave", {"side": "left", "count": 3})]
    rng = np.random.default_rng(0)
    texts = cap.describe(actions, cap.SEEN, rng)
    assert len(set(texts)) == 3 and all("left" in t for t in texts)
    held = cap.describe(actions, cap.HELD_OUT, rng)
    assert all(set(cap.tokenize(t)) & cap.held_out_lexicon() for t in held)
    with pytest.raises(ValueError, match="split"):
        cap.describe(actions, "train", rng)


# ============================================================================ loader
def _write_dataset(root: Path, clips: dict[str, tuple[int, list[str]]], width: int = SK.feature_dim) -> Path:
    """Hand-made HumanML3D-layout dataset: id -> (frames, caption lines); every id in train.txt."""
    rng = np.random.default_rng(0)
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for motion_id, (frames, lines) in clips.items():
        feats = np.repeat(np.arange(frames, dtype=np.float32)[:, None], width, axis=1)  # row t holds t
        feats += rng.normal(0, 1e-3, feats.shape).astype(np.float32)
        np.save(root / "new_joint_vecs" / f"{motion_id}.npy", feats)
        (root / "texts" / f"{motion_id}.txt").write_text("".join(line + "\n" for line in lines))
    (root / "train.txt").write_text("".join(f"{i}\n" for i in clips))
    np.save(root / "Mean.npy", np.zeros(width, np.float32))
    np.save(root / "Std.npy", np.full(width, 2.0, np.float32))
    return root


def test_loader_subclips_filters_and_crops(tmp_path):
    whole = cap.format_caption_line("a person walks")
    root = _write_dataset(tmp_path / "d", {
        "short": (30, [whole]),  # < 40 frames: dropped
        "long": (250, [whole, cap.format_caption_line("a person waves", 1.0, 3.5)]),  # whole dropped (>= 200), sub-clip kept
        "edge": (199, [whole, "someone jumps#someone/PRON jump/VERB#nan#nan"]),  # kept, cropped to 196
        "Medge": (45, [whole]),  # a mirrored id is just another id
    })
    ds = MotionTextDataset(root, "train", seed=0, skeleton=SK)
    ids = sorted(it.motion_id for it in ds.items)
    assert ids == ["Medge", "edge", "edge", "long:20-70"]
    sub = next(i for i, it in enumerate(ds.items) if it.motion_id == "long:20-70")
    item = ds[sub]
    assert item["caption"] == "a person waves" and item["length"] == 48  # 50 frames floored to unit_length 4
    rows = item["features"][:, 0] * 2.0  # undo Std = 2
    assert 20 - 0.1 <= float(rows[0]) and float(rows[-1]) <= 69 + 0.1  # taken from frames 20..69
    edge = [ds[i] for i, it in enumerate(ds.items) if it.motion_id == "edge"]
    assert all(e["length"] == SK.max_frames and e["features"].shape == (SK.max_frames, SK.feature_dim) for e in edge)
    assert edge[0]["features"].dtype == torch.float32 and edge[0]["tokens"] == ["a/DET", "person/NOUN", "walk/VERB"]
    assert edge[1]["caption"] == "someone jumps"  # NaN times = the whole clip
    # Deterministic random crops: same seed and epoch -> same offsets; a new epoch moves some.
    starts = lambda d: [float(d[i]["features"][0, 0]) for i in range(len(d))]  # noqa: E731
    first = starts(ds)
    assert first == starts(MotionTextDataset(root, "train", seed=0, skeleton=SK))
    ds.set_epoch(1)
    assert starts(ds) != first
    fixed = MotionTextDataset(root, "train", seed=0, random_crop=False, normalize=False, skeleton=SK)
    # No crop: every item starts at its clip's first frame (row t of these features holds the value t).
    assert all(abs(v - it.start) < 0.1 for v, it in zip(starts(fixed), fixed.items))


def test_loader_on_corpus_and_collate(tiny_corpus):
    meta = DatasetMeta.from_dataset_root(tiny_corpus)
    ds = MotionTextDataset(tiny_corpus, "train", meta=meta, skeleton=SK)
    assert len(ds) >= 3 * 96  # one item per (motion, caption), mirrors included
    assert any(":" in it.motion_id for it in ds.items)  # the corpus has sub-clip captions
    batch = collate_motion_text([ds[i] for i in range(0, 40, 7)])
    b, t_max, width = batch["features"].shape
    assert width == SK.feature_dim and batch["lengths"].dtype == torch.long and t_max == int(batch["lengths"].max())
    assert torch.equal(batch["frame_mask"].sum(1), batch["lengths"])
    assert batch["frame_mask"].dtype == torch.bool
    for i in range(b):
        n = int(batch["lengths"][i])
        assert n % SK.unit_length == 0 and SK.min_frames <= n <= SK.max_frames
        assert torch.all(batch["features"][i, n:] == 0)
    assert len(batch["captions"]) == len(batch["tokens"]) == len(batch["motion_ids"]) == b
    raw = MotionTextDataset(tiny_corpus, "train", normalize=False, random_crop=False, skeleton=SK)
    uncropped = MotionTextDataset(tiny_corpus, "train", meta=meta, random_crop=False, skeleton=SK)
    np.testing.assert_allclose(meta.denormalize(uncropped[5]["features"]).numpy(), raw[5]["features"].numpy(), atol=1e-4)
    all_feats = torch.cat([ds[i]["features"] for i in range(len(ds))])
    assert abs(float(all_feats.mean())) < 0.2  # normalised with the training statistics


def test_loader_errors_name_the_file(tiny_corpus, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_corpus, root)
    motion_id = load_split_ids(root, "val")[0]
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        MotionTextDataset(root, "nope", skeleton=SK)
    with pytest.raises(FileNotFoundError, match="missing"):
        MotionTextDataset(tmp_path / "missing", "train", skeleton=SK)

    feat_path = root / "new_joint_vecs" / f"{motion_id}.npy"
    good = np.load(feat_path)
    np.save(feat_path, good[:, :100])
    with pytest.raises(ValueError, match=rf"{motion_id}\.npy.*\(T, 263\)"):
        MotionTextDataset(root, "val", skeleton=SK)
    bad = good.copy()
    bad[3, 5] = np.nan
    np.save(feat_path, bad)
    with pytest.raises(ValueError, match=rf"{motion_id}\.npy.*NaN"):
        MotionTextDataset(root, "val", skeleton=SK)
    np.save(feat_path, good)

    text_path = root / "texts" / f"{motion_id}.txt"
    text_path.write_text("\n\n")
    with pytest.raises(ValueError, match=rf"{motion_id}\.txt.*empty"):
        MotionTextDataset(root, "val", skeleton=SK)
    text_path.write_text("a man walks#a/DET man/NOUN walk/VERB#soon#later\n")
    with pytest.raises(ValueError, match=rf"{motion_id}\.txt:1"):
        MotionTextDataset(root, "val", skeleton=SK)

    shutil.rmtree(root / "texts")
    with pytest.raises(FileNotFoundError, match="texts"):
        MotionTextDataset(root, "val", skeleton=SK)
    shutil.rmtree(root / "new_joint_vecs")
    with pytest.raises(FileNotFoundError, match="new_joint_vecs"):
        MotionTextDataset(root, "val", skeleton=SK)


# ============================================================================ metadata
def test_dataset_meta_round_trip_and_normalisation(tiny_corpus, tmp_path):
    meta = DatasetMeta.from_dataset_root(tiny_corpus)
    assert meta.skeleton is SK and meta.feature_dim == SK.feature_dim and meta.fps == SK.fps
    assert "group" in meta.normalization
    np.testing.assert_array_equal(meta.mean, np.load(tiny_corpus / "Mean.npy"))
    meta.save(tmp_path / "meta")
    assert (tmp_path / "meta" / "config.json").is_file()
    loaded = DatasetMeta.load(tmp_path / "meta")
    assert (loaded.name, loaded.skeleton, loaded.fps, loaded.normalization) == (meta.name, SK, meta.fps, meta.normalization)
    np.testing.assert_array_equal(loaded.mean, meta.mean)
    np.testing.assert_array_equal(loaded.std, meta.std)

    x = np.load(tiny_corpus / "new_joint_vecs" / "000000.npy")  # (T, F) numpy
    z = meta.normalize(x)
    assert isinstance(z, np.ndarray) and z.dtype == np.float32
    np.testing.assert_allclose(z, (x - meta.mean) / meta.std, rtol=1e-6)
    np.testing.assert_allclose(meta.denormalize(z), x, atol=1e-4)
    xt = torch.from_numpy(x)[None]  # (1, T, F) torch
    zt = meta.normalize(xt)
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
    torch.testing.assert_close(meta.denormalize(zt), xt, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="263"):
        meta.normalize(np.zeros((4, 10)))

    assert DatasetMeta(name="n", skeleton="humanml3d", fps=20, feature_dim=263, mean=np.zeros(263),
                       std=np.ones(263)).skeleton is SK
    with pytest.raises(ValueError, match="std"):
        DatasetMeta(name="n", skeleton=SK, fps=20, feature_dim=263, mean=np.zeros(263), std=np.zeros(263))
    with pytest.raises(CheckpointError):
        DatasetMeta.load(tmp_path / "nothing")


def test_corpus_statistics_table(tiny_corpus):
    stats = corpus_statistics(tiny_corpus)
    assert stats.split_sizes == {"train": 96, "val": 6, "test": 18}
    assert stats.num_base_motions == stats.num_mirrored == 60
    assert stats.skating_ratio < 0.03 and stats.min_foot_height >= -0.01
    assert SK.min_frames <= stats.min_length and stats.max_length <= SK.max_frames
    assert stats.subclip_captions > 0 and stats.vocab_test > 0
    table = stats.format()
    for needle in ("skating ratio", "walk_circle", "held-out"):
        assert needle in table
