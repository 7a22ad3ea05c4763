"""BVH import/export, dataset import and result bundles (adamotion.io).

Real data: the three CMU trials in ``shared/data/cmu/cmu_bvh.tar.xz`` (subject 131, cgspeed 3dsMax release,
120 fps, 31 joints). Tests needing them skip with a loud reason only when the shared folder is absent.
"""
from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from adamotion.io.bvh import (
    CMU_UNITS_TO_METRES,
    BvhFormatError,
    bvh_to_global_positions,
    format_bvh,
    load_bvh_joints,
    load_bvh_motion,
    parse_bvh,
    write_bvh,
)
from adamotion.data.bvh_import import import_bvh_dataset, read_captions_tsv
from adamotion.data.captions import format_caption_line
from adamotion.io.export import load_bundle, save_bundle, save_features_npy, save_joints_npy
from adamotion.motion.features import features_from_joints, joints_from_features
from adamotion.motion.skeleton import HUMANML3D

SHARED = Path(__file__).parents[1] / ".." / "shared"
CMU_ARCHIVE = SHARED / "data" / "cmu" / "cmu_bvh.tar.xz"
CMU_DESCRIPTIONS = SHARED / "data" / "cmu" / "cmu_descriptions.tsv"
CMU_TRIALS = {"131_01": 994, "131_02": 1247, "131_03": 1102}  # frames, from PROVENANCE.md
SKELETON = HUMANML3D
FOOT_JOINTS = list(SKELETON.foot_joints)
MM = 1e-3


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def cmu_dir(tmp_path_factory) -> Path:
    if not CMU_ARCHIVE.is_file():
        pytest.skip(f"REAL CMU DATA MISSING: {CMU_ARCHIVE.resolve()} not found; the shared folder "
                    f"(../shared next to the repo) is needed for the CMU BVH tests")
    out = tmp_path_factory.mktemp("cmu")
    with tarfile.open(CMU_ARCHIVE, "r:xz") as archive:
        archive.extractall(out, filter="data")
    return out / "bvh"


@pytest.fixture(scope="module")
def cmu_loaded(cmu_dir):
    """``{stem: BvhJoints}`` for the three trials, loaded once."""
    return {stem: load_bvh_motion(cmu_dir / f"{stem}.bvh", skeleton=SKELETON) for stem in CMU_TRIALS}


def procedural_motion(num_frames: int = 48, fps: float = 20.0, seed: int = 0) -> np.ndarray:
    """Joints ``(T, 22, 3)`` by FK of smooth random local rotations on the target skeleton (rigid bones).

    One elbow passes exactly through a 90-degree Y rotation (Euler gimbal lock for ZYX channels).
    """
    rng = np.random.default_rng(seed)
    num_joints = SKELETON.num_joints
    time = np.arange(num_frames) / fps  # (T,)
    amplitude = rng.uniform(0.1, 0.7, (num_joints, 3))
    frequency = rng.uniform(0.3, 1.5, (num_joints, 3))
    phase = rng.uniform(0, 2 * np.pi, (num_joints, 3))
    rotvec = amplitude * np.sin(2 * np.pi * frequency * time[:, None, None] + phase)  # (T, J, 3)
    rotvec[:, 0] = np.stack([0.1 * np.sin(time), 0.9 * time, 0.05 * np.cos(time)], -1)  # root turns about y
    local = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(num_frames, num_joints, 3, 3)
    local[num_frames // 2, SKELETON.index("left_elbow")] = Rotation.from_euler("y", 90, degrees=True).as_matrix()
    offsets = SKELETON.target_offsets.astype(np.float64)  # (J, 3)
    rotations = np.zeros_like(local)
    positions = np.zeros((num_frames, num_joints, 3))
    positions[:, 0] = np.stack([0.6 * time, 0.95 + 0.03 * np.sin(3 * time), 0.2 * time], -1)
    for joint, parent in enumerate(SKELETON.parents):
        if parent < 0:
            rotations[:, joint] = local[:, joint]
            continue
        rotations[:, joint] = rotations[:, parent] @ local[:, joint]
        positions[:, joint] = positions[:, parent] + rotations[:, parent] @ offsets[joint]
    return positions


def max_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1).max())


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(T, J-1) lengths of every bone."""
    return np.stack([np.linalg.norm(joints[:, c] - joints[:, p], axis=-1) for p, c in SKELETON.bones], -1)


# ------------------------------------------------------------------------------------------- real CMU data
def test_parse_real_cmu_trials(cmu_dir):
    for stem, frames in CMU_TRIALS.items():
        bvh = parse_bvh(cmu_dir / f"{stem}.bvh")
        assert bvh.num_joints == 31 and bvh.joint_names[0] == "Hips"
        assert bvh.num_frames == frames
        assert bvh.frame_time == pytest.approx(0.0083333)
        assert bvh.fps == 120.0  # snapped from 1 / .0083333
        assert bvh.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")
        # mixed Euler orders: legs ZYX, arms ZXY
        assert bvh.channels[bvh.joint_index("LeftKnee")] == ("Zrotation", "Yrotation", "Xrotation")
        assert bvh.channels[bvh.joint_index("LeftElbow")] == ("Zrotation", "Xrotation", "Yrotation")
        assert bvh.motion.shape == (frames, 6 + 30 * 3)
        assert len(bvh.end_site_parents) == 7  # toes, head, fingers and thumbs
        assert bvh.parents[bvh.joint_index("LeftKnee")] == bvh.joint_index("LeftHip")
        np.testing.assert_allclose(bvh.offsets[bvh.joint_index("LeftKnee")], [2.49329, -6.85026, 0.0])
        # the root position channels are the Hips' world position
        positions = bvh_to_global_positions(bvh)
        np.testing.assert_allclose(positions[:, 0], bvh.motion[:, :3])


def test_cmu_joints_are_metres_y_up_on_the_floor(cmu_dir, cmu_loaded):
    for stem, frames in CMU_TRIALS.items():
        loaded = cmu_loaded[stem]
        joints = loaded.joints
        assert joints.dtype == np.float32
        assert joints.shape == ((frames - 1) // 6 + 1, SKELETON.num_joints, 3)  # 120 -> 20 fps
        assert loaded.fps == 20.0 and loaded.source_fps == 120.0
        assert loaded.name_map == "cmu_cgspeed_3dsmax" and loaded.scale == pytest.approx(CMU_UNITS_TO_METRES)
        assert loaded.up_axis == "+y"

        bvh = parse_bvh(cmu_dir / f"{stem}.bvh")
        everything = bvh_to_global_positions(bvh, include_end_sites=True) * loaded.scale  # metres
        stature = everything[..., 1].max() - everything[..., 1].min()
        assert 1.4 < stature < 2.0, f"{stem}: implausible height {stature:.3f} m"
        # 20 fps frame k is 120 fps frame 6k: resampling picks the exact source poses
        hips = bvh_to_global_positions(bvh)[::6, 0] * loaded.scale
        np.testing.assert_allclose(joints[:, 0], hips, atol=1e-5)

        feet_height = joints[:, FOOT_JOINTS, 1]
        assert -0.05 < feet_height.min() < 0.10, "feet should touch the floor (y = 0) at some point"
        hip, knee, ankle = (SKELETON.index(name) for name in ("left_hip", "left_knee", "left_ankle"))
        legs = (np.linalg.norm(joints[:, knee] - joints[:, hip], axis=-1)
                + np.linalg.norm(joints[:, ankle] - joints[:, knee], axis=-1))
        assert 0.65 < np.median(legs) < 1.0
        head_above_pelvis = joints[:, SKELETON.index("head"), 1] - joints[:, 0, 1]
        assert np.median(head_above_pelvis) > 0.3, "y must be up"
        # mocap limbs are rigid and the mapped joints keep that through resampling
        assert bone_lengths(joints).std(axis=0).max() < 1e-4


def test_features_from_cmu_joints(cmu_loaded):
    for loaded in cmu_loaded.values():
        features = features_from_joints(loaded.joints, skeleton=SKELETON)
        assert features.shape == (loaded.joints.shape[0] - 1, SKELETON.feature_dim)
        assert np.isfinite(features).all()
        root_height = features[:, SKELETON.feature_slices["root_y"]]
        assert 0.3 < np.median(root_height) < 1.3


# ---------------------------------------------------------------------------------------------- export
@pytest.mark.parametrize("translation_channels", ["root", "branches", "all"])
def test_round_trip_procedural_motion(tmp_path, translation_channels):
    joints = procedural_motion()
    path = write_bvh(tmp_path / "motion.bvh", joints=joints, translation_channels=translation_channels, skeleton=SKELETON)
    assert path == tmp_path / "motion.bvh" and not list(tmp_path.glob(".*.tmp"))
    back = load_bvh_joints(path, skeleton=SKELETON)
    assert back.shape == joints.shape and back.dtype == np.float32
    assert max_error(back, joints) < 1 * MM

    bvh = parse_bvh(path)
    assert bvh.joint_names[0] == "pelvis" and set(bvh.joint_names) == set(SKELETON.joint_names)
    assert bvh.fps == SKELETON.fps
    assert len(bvh.channels[0]) == 6
    with_positions = {name for name, channels in zip(bvh.joint_names, bvh.channels) if len(channels) == 6}
    expected = {"root": {"pelvis"},
                "branches": {"pelvis", "left_hip", "right_hip", "spine1", "neck", "left_collar", "right_collar"},
                "all": set(SKELETON.joint_names)}[translation_channels]
    assert with_positions == expected


def test_round_trip_target_offsets_and_other_euler_order(tmp_path):
    joints = procedural_motion(seed=3)
    path = write_bvh(tmp_path / "m.bvh", joints=joints, bone_lengths="target", translation_channels="root",
                     euler_order="XZY", fps=30, skeleton=SKELETON)
    bvh = parse_bvh(path)
    assert bvh.channels[1] == ("Xrotation", "Zrotation", "Yrotation") and bvh.fps == 30
    offsets = dict(zip(bvh.joint_names, bvh.offsets))
    np.testing.assert_allclose(offsets["left_knee"], SKELETON.target_offsets[SKELETON.index("left_knee")], atol=1e-6)
    assert max_error(load_bvh_joints(path, target_fps=30, skeleton=SKELETON), joints) < 1 * MM


def test_round_trip_real_cmu_trial(tmp_path, cmu_loaded):
    joints = cmu_loaded["131_02"].joints
    path = write_bvh(tmp_path / "cmu.bvh", joints=joints, skeleton=SKELETON)
    assert max_error(load_bvh_joints(path, skeleton=SKELETON), joints) < 1 * MM


def test_write_bvh_from_features(tmp_path, cmu_loaded):
    features = features_from_joints(cmu_loaded["131_03"].joints, skeleton=SKELETON)
    path = write_bvh(tmp_path / "f.bvh", features=features, skeleton=SKELETON)
    assert max_error(load_bvh_joints(path, skeleton=SKELETON), joints_from_features(features, skeleton=SKELETON)) < 1 * MM
    with pytest.raises(ValueError, match="exactly one"):
        write_bvh(tmp_path / "bad.bvh", joints=cmu_loaded["131_03"].joints, features=features, skeleton=SKELETON)
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        write_bvh(tmp_path / "bad.bvh", joints=np.zeros((5, 21, 3)), skeleton=SKELETON)
    assert not (tmp_path / "bad.bvh").exists()


def test_resampling_slerps_rotations_and_keeps_bones_rigid(tmp_path):
    joints_30 = procedural_motion(num_frames=61, fps=30.0, seed=1)  # 2 s at 30 fps
    path = write_bvh(tmp_path / "m30.bvh", joints=joints_30, fps=30, skeleton=SKELETON)
    joints_20 = load_bvh_joints(path, skeleton=SKELETON)  # default target: the skeleton's 20 fps
    assert joints_20.shape[0] == 41
    assert max_error(joints_20[::2], joints_30[::3]) < 1 * MM  # common instants are the source poses
    # 20 fps frame 1 is 30 fps frame 1.5: the root moves linearly, the limbs in between both neighbours
    np.testing.assert_allclose(joints_20[1, 0], (joints_30[1, 0] + joints_30[2, 0]) / 2, atol=1e-6)
    midpoint = (joints_30[1] + joints_30[2]) / 2
    assert max_error(joints_20[1], midpoint) < min(max_error(joints_20[1], joints_30[1]),
                                                   max_error(joints_20[1], joints_30[2])) / 2
    rest = bone_lengths(joints_30[:1])
    assert np.abs(bone_lengths(joints_20) - rest).max() < 1e-5  # in-between frames stay rigid


def test_z_up_file_is_rotated_to_y_up(tmp_path):
    joints = procedural_motion(seed=2)
    z_up = joints @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]).T  # (x, y, z) -> (x, -z, y)
    path = write_bvh(tmp_path / "zup.bvh", joints=z_up, skeleton=SKELETON)
    loaded = load_bvh_motion(path, skeleton=SKELETON)
    assert loaded.up_axis == "+z"
    assert max_error(loaded.joints, joints) < 1 * MM
    assert max_error(load_bvh_joints(path, up_axis="z", skeleton=SKELETON), joints) < 1 * MM


def test_format_bvh_round_trips_a_real_file(cmu_dir):
    original = parse_bvh(cmu_dir / "131_01.bvh")
    again = parse_bvh(format_bvh(original))
    assert again.joint_names == original.joint_names and again.channels == original.channels
    np.testing.assert_allclose(again.motion, original.motion, atol=1e-6)
    np.testing.assert_allclose(bvh_to_global_positions(again), bvh_to_global_positions(original), atol=1e-4)


# ---------------------------------------------------------------------------------------- malformed files
VALID = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Knee
  {
    OFFSET 0 -1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -1 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
0 2 0 0 0 0 0 90 0
1 2 0 0 0 0 0 0 0
"""


def test_small_valid_file_forward_kinematics():
    bvh = parse_bvh(VALID)
    positions = bvh_to_global_positions(bvh, include_end_sites=True)  # (F, 2 + 1, 3)
    np.testing.assert_allclose(positions[0], [[0, 2, 0], [0, 1, 0], [0, 1, -1]], atol=1e-12)  # knee bent 90 deg about x
    np.testing.assert_allclose(positions[1], [[1, 2, 0], [1, 1, 0], [1, 0, 0]], atol=1e-12)


def _replace_line(text: str, line_number: int, new: str) -> str:
    lines = text.splitlines()
    lines[line_number - 1] = new
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("line_number, new_line, message", [
    (9, "    CHANNELS 3 Zrotation Wrotation Yrotation", "unknown channel 'Wrotation'"),
    (8, "    OFFSET 0 -1 abc", "expected a number"),
    (6, "  JOINT Knee Extra", "expected '{' after joint 'Knee', found 'Extra'"),
    (18, "Frame Time: fast", "Frame Time"),
    (19, "0 2 0 0 0 0 0 90", "has 8 values but the HIERARCHY declares 9"),
    (20, "1 2 0 0 0 0 0 0 x", "non-numeric value 'x'"),
])
def test_malformed_bvh_reports_the_line(line_number, new_line, message):
    with pytest.raises(BvhFormatError, match=re.escape(message)) as caught:
        parse_bvh(_replace_line(VALID, line_number, new_line))
    assert caught.value.line == line_number
    assert str(caught.value).startswith(f"<text>:{line_number}:")


def test_truncated_files_name_the_problem(tmp_path):
    truncated = tmp_path / "cut.bvh"
    truncated.write_text(VALID.rsplit("\n", 2)[0] + "\n")  # last frame line missing
    with pytest.raises(BvhFormatError, match=r"cut\.bvh:\d+: 'Frames: 2' is declared but only 1 frame"):
        parse_bvh(truncated)
    no_brace = VALID.replace("    }\n  }\n}\n", "    }\n  }\n")  # ROOT never closed
    with pytest.raises(BvhFormatError, match="missing|truncated"):
        parse_bvh(no_brace)
    with pytest.raises(FileNotFoundError, match="nope.bvh"):
        parse_bvh(tmp_path / "nope.bvh")


# ------------------------------------------------------------------------------------------------ name maps
_3DSMAX_TO_MOTIONBUILDER = {
    "LeftHip": "LeftUpLeg", "LeftKnee": "LeftLeg", "LeftAnkle": "LeftFoot", "LeftToe": "LeftToeBase",
    "lowerback": "LowerBack", "Chest": "Spine", "Chest2": "Spine1", "lowerneck": "Neck", "Neck": "Neck1",
    "LeftCollar": "LeftShoulder", "LeftShoulder": "LeftArm", "LeftElbow": "LeftForeArm", "LeftWrist": "LeftHand",
    "lhand": "LeftFingerBase", "LFingers": "LeftHandIndex1",
}
_3DSMAX_TO_MOTIONBUILDER.update({k.replace("Left", "Right"): v.replace("Left", "Right")
                                 for k, v in list(_3DSMAX_TO_MOTIONBUILDER.items()) if "Left" in k})
_3DSMAX_TO_MOTIONBUILDER.update({"rhand": "RightFingerBase", "RFingers": "RightHandIndex1"})


def _rename_joints(text: str, renames: dict[str, str]) -> str:
    return re.sub(r"^(\s*(?:ROOT|JOINT)\s+)(\S+)", lambda m: m.group(1) + renames.get(m.group(2), m.group(2)),
                  text, flags=re.MULTILINE)


def test_motionbuilder_release_names_give_the_same_joints(tmp_path, cmu_dir, cmu_loaded):
    renamed = tmp_path / "131_01_mb.bvh"
    renamed.write_text(_rename_joints((cmu_dir / "131_01.bvh").read_text(), _3DSMAX_TO_MOTIONBUILDER))
    loaded = load_bvh_motion(renamed, skeleton=SKELETON)
    assert loaded.name_map == "cmu_cgspeed_motionbuilder"
    np.testing.assert_array_equal(loaded.joints, cmu_loaded["131_01"].joints)


def test_custom_json_name_map(tmp_path, cmu_dir, cmu_loaded):
    original = parse_bvh(cmu_dir / "131_01.bvh")
    anonymous = {name: f"bone{i:02d}" for i, name in enumerate(original.joint_names)}
    renamed = tmp_path / "rig.bvh"
    renamed.write_text(_rename_joints((cmu_dir / "131_01.bvh").read_text(), anonymous))

    with pytest.raises(ValueError, match=r"match no built-in rig.*--name-map"):
        load_bvh_joints(renamed, skeleton=SKELETON)

    a = anonymous
    name_map = {"_comment": "cgspeed 3dsMax CMU rig with anonymous joint names",
                a["Hips"]: "pelvis", a["Chest"]: "spine2", a["Chest2"]: "spine3", a["Neck"]: "neck",
                a["Head"]: "head", "spine1": {a["Hips"]: 0.5, a["Chest"]: 0.5}}
    for side in ("Left", "Right"):
        smpl = side.lower()
        name_map.update({a[f"{side}Hip"]: f"{smpl}_hip", a[f"{side}Knee"]: f"{smpl}_knee",
                         a[f"{side}Ankle"]: f"{smpl}_ankle", a[f"{side}Toe"]: f"{smpl}_foot",
                         a[f"{side}Shoulder"]: f"{smpl}_shoulder", a[f"{side}Elbow"]: f"{smpl}_elbow",
                         a[f"{side}Wrist"]: f"{smpl}_wrist",
                         f"{smpl}_collar": {a["Chest2"]: 0.5, a[f"{side}Shoulder"]: 0.5}})
    map_path = tmp_path / "map.json"
    map_path.write_text(json.dumps(name_map))

    loaded = load_bvh_motion(renamed, name_map=map_path, skeleton=SKELETON)  # units unknown: guessed from the root height
    assert loaded.scale_source == "guessed (CMU units)" and loaded.scale == pytest.approx(CMU_UNITS_TO_METRES)
    np.testing.assert_allclose(loaded.joints, cmu_loaded["131_01"].joints, atol=1e-6)
    doubled = load_bvh_joints(renamed, name_map=name_map, scale=2 * CMU_UNITS_TO_METRES, skeleton=SKELETON)  # dict form, explicit
    np.testing.assert_allclose(doubled, 2 * cmu_loaded["131_01"].joints, atol=1e-5)

    broken = dict(name_map)
    broken[a["Head"]] = "skull"
    with pytest.raises(ValueError, match="'skull'.*not a joint"):
        load_bvh_joints(renamed, name_map=broken, skeleton=SKELETON)
    incomplete = {k: v for k, v in name_map.items() if v != "head"}
    with pytest.raises(ValueError, match=r"no BVH joint is mapped to \['head'\]"):
        load_bvh_joints(renamed, name_map=incomplete, skeleton=SKELETON)
    collapsed = dict(name_map, **{"spine1": {a["Hips"]: 1.0}})  # spine1 on the pelvis: zero-length bone
    with pytest.raises(ValueError, match="zero-length bone"):
        load_bvh_joints(renamed, name_map=collapsed, skeleton=SKELETON)


# ------------------------------------------------------------------------------------------ dataset import
def test_import_bvh_dataset_writes_a_loadable_layout(tmp_path, cmu_dir):
    files = [cmu_dir / f"{stem}.bvh" for stem in CMU_TRIALS]
    captions = CMU_DESCRIPTIONS if CMU_DESCRIPTIONS.is_file() else None
    out = import_bvh_dataset(files, tmp_path / "dataset", captions_tsv=captions, skeleton=SKELETON)
    assert out == tmp_path / "dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no temp folder left behind

    # Split by file, every split non-empty (training refuses empty val/test), each file in exactly one split.
    splits = {split: (out / f"{split}.txt").read_text().split() for split in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == sorted(CMU_TRIALS) and all(len(v) == 1 for v in splits.values())
    ids = splits["train"]
    all_features = []
    for motion_id, frames in CMU_TRIALS.items():
        features = np.load(out / "new_joint_vecs" / f"{motion_id}.npy")
        joints = np.load(out / "new_joints" / f"{motion_id}.npy")
        # 20 fps frames minus one; 131_02 (206) is within 25 % of the 196-frame maximum: its most active
        # 196-frame window is kept (adamotion.data.clips).
        expected_frames = min((frames - 1) // 6, SKELETON.max_frames)
        assert features.shape == (expected_frames, SKELETON.feature_dim) and features.dtype == np.float32
        assert joints.shape == (expected_frames, SKELETON.num_joints, 3)
        np.testing.assert_allclose(joints, joints_from_features(features, skeleton=SKELETON), atol=1e-5)
        if motion_id in ids:
            all_features.append(features)
        caption_lines = (out / "texts" / f"{motion_id}.txt").read_text().splitlines()
        assert len(caption_lines) == 1 and caption_lines[0].endswith("#0.0#0.0")
    if captions is not None:
        assert (out / "texts" / "131_03.txt").read_text() == format_caption_line("Start Hop Stop") + "\n"

    stacked = np.concatenate(all_features).astype(np.float64)
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    np.testing.assert_allclose(mean, stacked.mean(axis=0), rtol=1e-5, atol=1e-6)
    for group, columns in SKELETON.feature_slices.items():
        group_std = std[columns]
        assert np.all(group_std == group_std[0]), f"std of group {group} must be shared"
        assert group_std[0] == pytest.approx(stacked[:, columns].std(axis=0).mean(), rel=1e-4)
    meta = json.loads((out / "import_meta.json").read_text())
    assert [m["id"] for m in meta["motions"]] == list(CMU_TRIALS) and meta["motions"][0]["name_map"] == "cmu_cgspeed_3dsmax"
    assert meta["splits"] == {"train": 1, "val": 1, "test": 1}

    # ... and the training code reads it back: the same motions, captions and normalised features
    from adamotion.data.humanml3d import MotionTextDataset
    from adamotion.data.meta import DatasetMeta

    dataset_meta = DatasetMeta.from_dataset_root(out)
    assert dataset_meta.skeleton is SKELETON and dataset_meta.feature_dim == SKELETON.feature_dim
    np.testing.assert_array_equal(dataset_meta.std, std)
    loaded_ids = set()
    for split in ("train", "val", "test"):
        dataset = MotionTextDataset(out, split, skeleton=SKELETON, meta=dataset_meta, normalize=True,
                                    random_crop=False)
        for i in range(len(dataset)):
            item = dataset[i]
            loaded_ids.add(item["motion_id"])
            raw = np.load(out / "new_joint_vecs" / f"{item['motion_id']}.npy")[: item["length"]]
            np.testing.assert_allclose(item["features"].numpy(), (raw - mean) / std, rtol=1e-5, atol=1e-5)
            if captions is not None and item["motion_id"] == "131_03":
                assert item["caption"] == "Start Hop Stop"
    # Every trial fits HumanML3D's length rule now: 131_02 (206 frames at 20 fps) was cropped to 196.
    assert loaded_ids == set(CMU_TRIALS)

    with pytest.raises(FileExistsError, match="not empty"):
        import_bvh_dataset(files[:1], out, skeleton=SKELETON)


def test_import_captions_from_two_column_tsv_and_failure_leaves_nothing(tmp_path, cmu_dir):
    tsv = tmp_path / "captions.tsv"
    tsv.write_text("# stem<TAB>caption\n131_01\ta person walks forward # then stops\n131_01\tsomeone walks\n")
    assert read_captions_tsv(tsv) == {"131_01": ["a person walks forward # then stops", "someone walks"]}
    out = import_bvh_dataset([cmu_dir / "131_01.bvh", cmu_dir / "131_03.bvh"], tmp_path / "ds", captions_tsv=tsv, skeleton=SKELETON)
    assert (out / "texts" / "131_01.txt").read_text().splitlines() == [  # '#' is the format's separator
        format_caption_line("a person walks forward then stops"), format_caption_line("someone walks")]
    assert (out / "texts" / "131_03.txt").read_text() == format_caption_line("131 03") + "\n"  # stem fallback

    broken = tmp_path / "broken.bvh"
    broken.write_text(_replace_line(VALID, 19, "0 2 0"))
    with pytest.raises(BvhFormatError, match=r"broken\.bvh:19:"):
        import_bvh_dataset([cmu_dir / "131_01.bvh", broken], tmp_path / "failed", skeleton=SKELETON)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.bvh", "captions.tsv", "ds"]


# ------------------------------------------------------------------------------------------------ bundles
def test_bundle_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 30, SKELETON.feature_dim)).astype(np.float32)
    joints = rng.standard_normal((2, 30, SKELETON.num_joints, 3)).astype(np.float32)
    extra = {"sampler": "ddim", "eta": 0.1, "requested_seconds": [1.5, 1.0], "notes": "héllo ✓"}
    path = save_bundle(tmp_path / "result.npz", prompt=["a person waves", "a person jumps"], seed=1234,
                       encoder="adaqf", checkpoint_id="gen-2026-11-23", lengths=[30, 20], features=features,
                       joints=joints, guidance_scale=2.5, steps=50, extra=extra, skeleton=SKELETON)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.npz"]
    bundle = load_bundle(path)
    np.testing.assert_array_equal(bundle["features"], features)
    np.testing.assert_array_equal(bundle["joints"], joints)
    np.testing.assert_array_equal(bundle["lengths"], [30, 20])
    assert bundle["features"].dtype == np.float32 and bundle["lengths"].dtype == np.int64
    assert bundle["prompt"] == ["a person waves", "a person jumps"] and bundle["seed"] == 1234
    assert bundle["encoder"] == "adaqf" and bundle["checkpoint_id"] == "gen-2026-11-23"
    assert bundle["guidance_scale"] == 2.5 and bundle["steps"] == 50 and bundle["extra"] == extra
    assert bundle["skeleton"] == SKELETON.name and bundle["format_version"] == 1

    # a list of clips of different lengths (what the demo produces) is zero-padded, lengths say where
    clips = [features[0, :30], features[1, :20]]
    single = load_bundle(save_bundle(tmp_path / "clips.npz", prompt="p", seed=np.int64(7), encoder="clip",
                                     checkpoint_id="c", lengths=[30, 20], features=clips, joints=None,
                                     guidance_scale=np.float32(3.0), steps=10, skeleton=SKELETON))
    assert single["features"].shape == (2, 30, SKELETON.feature_dim) and single["joints"] is None
    np.testing.assert_array_equal(single["features"][1, :20], features[1, :20])
    assert not single["features"][1, 20:].any() and single["seed"] == 7 and single["guidance_scale"] == 3.0

    with pytest.raises(ValueError, match="lengths"):
        save_bundle(tmp_path / "bad.npz", prompt="p", seed=0, encoder="e", checkpoint_id="c", lengths=[31],
                    features=features[0], joints=None, guidance_scale=1.0, steps=1, skeleton=SKELETON)
    with pytest.raises(TypeError, match="JSON"):
        save_bundle(tmp_path / "bad.npz", prompt="p", seed=0, encoder="e", checkpoint_id="c", lengths=[30],
                    features=features[0], joints=None, guidance_scale=1.0, steps=1, extra={"f": object()}, skeleton=SKELETON)
    assert not (tmp_path / "bad.npz").exists() and not list(tmp_path.glob(".*.tmp"))


def test_npy_savers_are_exact_and_validate(tmp_path):
    joints = procedural_motion(num_frames=10).astype(np.float32)
    features = features_from_joints(joints, skeleton=SKELETON)
    np.testing.assert_array_equal(np.load(save_joints_npy(tmp_path / "j.npy", joints, skeleton=SKELETON)), joints)
    np.testing.assert_array_equal(np.load(save_features_npy(tmp_path / "f.npy", features, skeleton=SKELETON)), features)
    with pytest.raises(ValueError, match=r"\(T, 263\)"):
        save_features_npy(tmp_path / "x.npy", features[:, :-1], skeleton=SKELETON)
    with pytest.raises(ValueError, match="NaN"):
        save_joints_npy(tmp_path / "x.npy", np.full((3, SKELETON.num_joints, 3), np.nan), skeleton=SKELETON)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "j.npy"]
