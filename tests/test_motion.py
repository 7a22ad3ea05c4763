"""Tests for the rotation utilities and the HumanML3D feature format (adamotion.motion).

Motions are built procedurally with forward kinematics (walking-like swings, root translation, slow turns),
so no licensed mocap is needed. A slow, matrix-based re-derivation of the documented pipeline
(`_reference_features`, float64, no quaternions) checks every convention of
shared/docs/motion-representation.md independently of the production code.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from adamotion.motion import HUMANML3D, KIT, rotations as R
from adamotion.motion import features as F

SKELETON = HUMANML3D
RNG_SEED = 1234


# ======================================================================================== motion builders
def _x_rotation(angle: np.ndarray) -> np.ndarray:
    """Quaternions (T, 4) rotating by ``angle`` (T,) about x."""
    return R.axis_angle_to_quat(np.stack([angle, 0 * angle, 0 * angle], -1))


def _y_rotation(angle: np.ndarray) -> np.ndarray:
    return R.quat_from_y_angle(angle)


def walking_rotations(num_frames: int, *, initial_heading: float, turn: float, skeleton=SKELETON) -> np.ndarray:
    """(T, J, 4) local rotations of a walk-like cycle with a torso twist and a slow heading change."""
    time_s = np.arange(num_frames) / skeleton.fps  # (T,)
    phase = 2 * np.pi * 1.1 * time_s  # (T,)
    rotations = R.identity_quat((num_frames, skeleton.num_joints), np.float64)  # (T, J, 4)
    rotations[:, 0] = _y_rotation(initial_heading + turn * time_s / time_s[-1])
    if skeleton is SKELETON:
        index = skeleton.index
        rotations[:, index("left_knee")] = _x_rotation(0.5 * np.sin(phase))  # thigh swing
        rotations[:, index("right_knee")] = _x_rotation(-0.5 * np.sin(phase))
        rotations[:, index("left_ankle")] = _x_rotation(-0.4 * (1 + np.sin(phase + 1)))  # knee bend
        rotations[:, index("right_ankle")] = _x_rotation(-0.4 * (1 - np.sin(phase + 1)))
        rotations[:, index("left_elbow")] = _x_rotation(-0.4 * np.sin(phase))  # arm swing
        rotations[:, index("right_elbow")] = _x_rotation(0.4 * np.sin(phase))
        rotations[:, index("left_wrist")] = _x_rotation(-0.3 + 0 * phase)
        twist = _y_rotation(0.35 * np.sin(phase))  # hips and shoulders turn against each other
        for joint in ("spine1", "left_collar", "right_collar"):
            rotations[:, index(joint)] = twist
    else:  # KIT: swing the thighs (joints after the hips on the two leg chains)
        left_thigh, right_thigh = skeleton.chains[0][2], skeleton.chains[1][2]
        rotations[:, left_thigh] = _x_rotation(0.5 * np.sin(phase))
        rotations[:, right_thigh] = _x_rotation(-0.5 * np.sin(phase))
    return rotations


def walking_motion(
    num_frames: int = 120,
    *,
    initial_heading: float = 0.7,
    turn: float = 1.2,
    start=(1.0, 0.0, -2.0),
    speed: float = 1.2,
    skeleton=SKELETON,
    offsets=None,
) -> np.ndarray:
    """(T, J, 3) joints of a walking-like motion built by forward kinematics on ``offsets``."""
    rotations = walking_rotations(num_frames, initial_heading=initial_heading, turn=turn, skeleton=skeleton)
    time_s = np.arange(num_frames) / skeleton.fps
    heading = initial_heading + turn * time_s / time_s[-1]  # (T,)
    forward = np.stack([np.sin(heading), 0 * heading, np.cos(heading)], -1)  # (T, 3) body +z in the world
    root = np.asarray(start, float) + np.cumsum(forward * speed / skeleton.fps, 0)  # (T, 3)
    root[:, 1] = 0.95 + 0.03 * np.sin(4 * np.pi * time_s)
    return np.asarray(F.forward_kinematics(rotations, root, skeleton, offsets=offsets), np.float64)


def symmetric_offsets(skeleton=SKELETON) -> np.ndarray:
    """Target offsets with left and right bone lengths averaged (a mirror-symmetric skeleton)."""
    lengths = np.asarray(skeleton.bone_lengths, float)
    permutation = skeleton.mirror_permutation
    return np.asarray(skeleton.raw_offsets, float) * ((lengths + lengths[permutation]) / 2)[:, None]


# ============================================================================ independent reference pipeline
def _rot_y_matrix(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation by ``angle`` about +y (the matrix of quaternion [cos a/2, 0, sin a/2, 0])."""
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.zeros(np.shape(angle) + (3, 3))
    matrix[..., 0, 0], matrix[..., 0, 2], matrix[..., 1, 1] = cos, sin, 1.0
    matrix[..., 2, 0], matrix[..., 2, 2] = -sin, cos
    return matrix


def _swing_matrix(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 3, 3) minimal rotation taking unit ``u`` onto unit ``v`` (Rodrigues)."""
    axis = np.cross(u, v)  # (..., 3)
    cosine = (u * v).sum(-1)
    skew = np.zeros(axis.shape + (3,))
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    skew = skew - np.swapaxes(skew, -1, -2)
    return np.eye(3) + skew + skew @ skew / (1 + cosine)[..., None, None]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _reference_canonical(joints: np.ndarray, skeleton=SKELETON, target_lengths=None) -> np.ndarray:
    """Steps 1-4 with plain float64 geometry: bone directions kept, lengths replaced, floor, origin, facing."""
    joints = np.asarray(joints, np.float64)
    parents = np.asarray(skeleton.parents)
    if target_lengths is None:
        target_lengths = np.asarray(skeleton.bone_lengths, float)
    source_lengths = np.linalg.norm(joints[0] - joints[0, np.maximum(parents, 0)], axis=-1)  # (J,)
    knee, ankle = skeleton.leg_joints
    scale = (target_lengths[knee] + target_lengths[ankle]) / (source_lengths[knee] + source_lengths[ankle])
    out = np.zeros_like(joints)
    out[:, 0] = joints[:, 0] * scale
    for chain in skeleton.chains:
        for parent, child in zip(chain[:-1], chain[1:]):
            out[:, child] = out[:, parent] + target_lengths[child] * _unit(joints[:, child] - joints[:, parent])
    out[..., 1] -= out[..., 1].min()
    out[..., [0, 2]] -= out[0, 0, [0, 2]]
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.face_joints
    across = (out[0, r_hip] - out[0, l_hip]) + (out[0, r_shoulder] - out[0, l_shoulder])
    forward = np.cross([0.0, 1.0, 0.0], across)
    facing_angle = np.arctan2(forward[0], forward[2])  # measured from +z towards +x
    return out @ _rot_y_matrix(-facing_angle).T


def _reference_features(joints: np.ndarray, skeleton=SKELETON, target_lengths=None) -> np.ndarray:
    """The documented feature pipeline written with rotation matrices and heading angles (float64)."""
    positions = _reference_canonical(joints, skeleton, target_lengths)  # (T, J, 3)
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.face_joints
    across = _unit((positions[:, l_hip] - positions[:, r_hip]) + (positions[:, r_shoulder] - positions[:, l_shoulder]))
    forward = gaussian_filter1d(np.cross([0.0, 1.0, 0.0], across), 20, axis=0, mode="nearest")
    theta = -np.arctan2(forward[:, 0], forward[:, 2])  # heading rotation taking forward onto +z
    theta[0] = 0.0  # first frame forced to identity
    heading = _rot_y_matrix(theta)  # (T, 3, 3)

    raw = np.asarray(skeleton.raw_offsets, float)
    local = np.tile(np.eye(3), (len(positions), skeleton.num_joints, 1, 1))  # (T, J, 3, 3)
    for chain in skeleton.chains:
        previous = heading
        for parent, child in zip(chain[:-1], chain[1:]):
            direction = _unit(positions[:, child] - positions[:, parent])
            swing = _swing_matrix(np.broadcast_to(raw[child], direction.shape), direction)
            local[:, child] = np.swapaxes(previous, -1, -2) @ swing
            previous = swing

    root = positions[:, 0]
    rotation_velocity = np.arcsin(np.sin((theta[1:] - theta[:-1]) / 2))
    linear_velocity = np.einsum("tij,tj->ti", heading[1:], root[1:] - root[:-1])[:, [0, 2]]
    relative = positions.copy()
    relative[..., [0, 2]] -= root[:, None, [0, 2]]
    ric = np.einsum("tij,tkj->tki", heading, relative)[:, 1:]
    rot6d = np.concatenate([local[:, 1:, :, 0], local[:, 1:, :, 1]], -1)
    velocity = np.einsum("tij,tkj->tki", heading[:-1], positions[1:] - positions[:-1])
    feet = positions[:, list(skeleton.foot_joints)]
    contacts = (((feet[1:] - feet[:-1]) ** 2).sum(-1) < skeleton.contact_threshold).astype(float)
    rows = len(positions) - 1
    return np.concatenate(
        [
            rotation_velocity[:, None], linear_velocity, root[:-1, 1:2], ric[:-1].reshape(rows, -1),
            rot6d[:-1].reshape(rows, -1), velocity.reshape(rows, -1), contacts,
        ],
        -1,
    )


def _facing_direction(frame: np.ndarray, skeleton=SKELETON) -> np.ndarray:
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.face_joints
    across = (frame[r_hip] - frame[l_hip]) + (frame[r_shoulder] - frame[l_shoulder])
    return _unit(np.cross([0.0, 1.0, 0.0], across))


# ================================================================================================ fixtures
@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return walking_motion(120)


@pytest.fixture(scope="module")
def walk_features(walk) -> np.ndarray:
    return F.features_from_joints(walk, skeleton=SKELETON)


def _random_quats(rng, shape) -> np.ndarray:
    return R.qnormalize(rng.normal(size=shape + (4,)))


# =============================================================================================== rotations
def test_motion_package_imports_without_torch_or_scipy():
    code = (
        "import sys; import adamotion.motion, adamotion.motion.features, adamotion.motion.rotations; "
        "assert 'torch' not in sys.modules and 'scipy' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_quaternion_matrix_round_trip_including_half_turns():
    rng = np.random.default_rng(RNG_SEED)
    quats = _random_quats(rng, (5, 40))  # (5, 40, 4)
    half_turns = np.concatenate([np.zeros((4, 1)), _unit(rng.normal(size=(4, 3)))], -1)  # w = 0 cases
    quats = np.concatenate([quats.reshape(-1, 4), half_turns, [[1.0, 0, 0, 0]]])
    matrices = R.quat_to_matrix(quats)  # (N, 3, 3)
    np.testing.assert_allclose(matrices @ np.swapaxes(matrices, -1, -2), np.broadcast_to(np.eye(3), matrices.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(matrices), 1.0, atol=1e-12)
    back = R.matrix_to_quat(matrices)
    assert (back[:, 0] >= 0).all()
    # q and -q are the same rotation: compare up to sign
    same = np.minimum(np.abs(back - quats).max(-1), np.abs(back + quats).max(-1))
    assert same.max() < 1e-10


def test_rot6d_is_first_two_columns_and_round_trips():
    rng = np.random.default_rng(RNG_SEED)
    matrices = R.quat_to_matrix(_random_quats(rng, (3, 7)))  # (3, 7, 3, 3)
    rot6d = R.matrix_to_rot6d(matrices)  # (3, 7, 6)
    np.testing.assert_array_equal(rot6d[..., :3], matrices[..., :, 0])
    np.testing.assert_array_equal(rot6d[..., 3:], matrices[..., :, 1])
    np.testing.assert_allclose(R.rot6d_to_matrix(rot6d), matrices, atol=1e-12)
    # Gram-Schmidt turns a perturbed, unnormalised 6D vector back into a proper rotation
    noisy = R.rot6d_to_matrix(rot6d * 3.0 + 0.01 * rng.normal(size=rot6d.shape))
    np.testing.assert_allclose(noisy, matrices, atol=0.05)
    np.testing.assert_allclose(np.linalg.det(noisy), 1.0, atol=1e-12)
    quats = _random_quats(rng, (10,))
    np.testing.assert_allclose(R.quat_to_rot6d(quats), R.matrix_to_rot6d(R.quat_to_matrix(quats)))
    np.testing.assert_allclose(R.quat_to_matrix(R.rot6d_to_quat(R.quat_to_rot6d(quats))), R.quat_to_matrix(quats), atol=1e-12)


def test_axis_angle_round_trip_and_small_angles():
    rng = np.random.default_rng(RNG_SEED)
    axis_angle = _unit(rng.normal(size=(50, 3))) * rng.uniform(0, np.pi - 1e-3, size=(50, 1))
    axis_angle[:3] *= 1e-7  # near-identity rotations use the series branch
    quats = R.axis_angle_to_quat(axis_angle)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(R.quat_to_axis_angle(quats), axis_angle, atol=1e-9)
    # 90 degrees about z takes x to y
    quarter = R.axis_angle_to_quat(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(R.qrot(quarter, np.array([1.0, 0, 0])), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(R.quat_to_axis_angle(np.array([1.0, 0, 0, 0])), 0.0)


def test_qmul_qinv_qrot_agree_with_matrices():
    rng = np.random.default_rng(RNG_SEED)
    a, b = _random_quats(rng, (20,)), _random_quats(rng, (20,))
    vectors = rng.normal(size=(20, 3))
    np.testing.assert_allclose(R.quat_to_matrix(R.qmul(a, b)), R.quat_to_matrix(a) @ R.quat_to_matrix(b), atol=1e-12)
    np.testing.assert_allclose(R.qrot(a, vectors), np.einsum("nij,nj->ni", R.quat_to_matrix(a), vectors), atol=1e-12)
    np.testing.assert_allclose(R.qmul(a, R.qinv(a)), np.tile([1.0, 0, 0, 0], (20, 1)), atol=1e-12)
    # broadcasting: one quaternion rotating many vectors
    np.testing.assert_allclose(R.qrot(a[0], vectors), R.qrot(np.tile(a[0], (20, 1)), vectors))
    # y-angle quaternion is a rotation about +y by that angle (x -> -z for +90 degrees)
    np.testing.assert_allclose(R.qrot(R.quat_from_y_angle(np.pi / 2), np.array([1.0, 0, 0])), [0, 0, -1], atol=1e-12)


def test_qbetween_maps_a_onto_b_with_published_formula():
    rng = np.random.default_rng(RNG_SEED)
    a, b = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    q = R.qbetween(a, b)
    np.testing.assert_allclose(R.qrot(q, _unit(a)), _unit(b), atol=1e-12)
    assert (q[:, 0] >= 0).all()
    expected = np.concatenate(
        [(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + (a * b).sum(-1))[:, None], np.cross(a, b)], -1
    )
    np.testing.assert_allclose(q, _unit(expected), atol=1e-12)
    # exactly opposite directions: still a valid rotation; a horizontal heading gets a rotation about y
    opposite = R.qbetween(np.array([0.0, 0, -1]), np.array([0.0, 0, 1]))
    np.testing.assert_allclose(np.abs(opposite), [0, 0, 1, 0], atol=1e-12)
    leg_up = R.qbetween(np.array([0.0, -1, 0], np.float32), np.array([0.0, 1, 0], np.float32))
    assert np.isfinite(leg_up).all()
    np.testing.assert_allclose(R.qrot(leg_up, np.array([0.0, -1, 0], np.float32)), [0, 1, 0], atol=1e-6)


def test_rotations_keep_float32_and_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(RNG_SEED)
    quats = _random_quats(rng, (2, 3, 5)).astype(np.float32)  # (2, 3, 5, 4)
    vectors = rng.normal(size=(2, 3, 5, 3)).astype(np.float32)
    assert R.qrot(quats, vectors).dtype == np.float32
    assert R.quat_to_rot6d(quats).dtype == np.float32
    cases = {
        "qmul": lambda lib, q, v: R.qmul(q, R.qinv(q[..., :1, :])),  # broadcasts over the joint axis
        "qrot": lambda lib, q, v: R.qrot(q, v),
        "qbetween": lambda lib, q, v: R.qbetween(v, q[..., 1:]),
        "matrix": lambda lib, q, v: R.quat_to_matrix(q),
        "matrix_to_quat": lambda lib, q, v: R.matrix_to_quat(R.quat_to_matrix(q)),
        "rot6d": lambda lib, q, v: R.rot6d_to_matrix(R.quat_to_rot6d(q)),
        "axis_angle": lambda lib, q, v: R.axis_angle_to_quat(R.quat_to_axis_angle(q)),
        "y_angle": lambda lib, q, v: R.quat_from_y_angle(v[..., 0]),
    }
    for name, function in cases.items():
        expected = function(np, quats, vectors)
        got = function(torch, torch.from_numpy(quats), torch.from_numpy(vectors))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32, name
        np.testing.assert_allclose(got.numpy(), expected, atol=2e-6, err_msg=name)


def test_rotation_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"q must have shape \(\.\.\., 4\)"):
        R.qmul(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        R.matrix_to_quat(np.zeros((4, 4)))


# =============================================================================================== features
def test_feature_shape_dtype_and_layout(walk, walk_features):
    assert walk_features.shape == (len(walk) - 1, SKELETON.feature_dim) == (119, 263)
    assert walk_features.dtype == np.float32
    contacts = walk_features[:, SKELETON.feature_slices["contacts"]]
    assert set(np.unique(contacts)) <= {0.0, 1.0}


def test_features_match_independent_reference_pipeline(walk_features):
    """Every convention (row alignment, floor, both facing signs, smoothing, first-frame identity, rot6d columns,
    velocities' frames, contact order) against a matrix-based re-derivation; the source is a non-uniform skeleton."""
    rng = np.random.default_rng(RNG_SEED)
    source_lengths = np.asarray(SKELETON.bone_lengths) * rng.uniform(0.85, 1.2, size=SKELETON.num_joints) * 1.1
    source_offsets = np.asarray(SKELETON.raw_offsets, float) * source_lengths[:, None]
    joints = walking_motion(150, initial_heading=-2.2, turn=-1.5, offsets=source_offsets)
    expected = _reference_features(joints)
    got = F.features_from_joints(joints, skeleton=SKELETON)
    slices = SKELETON.feature_slices
    for group, part in slices.items():
        np.testing.assert_allclose(got[:, part], expected[:, part], atol=2e-5, err_msg=group)


def test_heading_sign_quirk_and_smoothing_matter():
    """The reference with the "natural" IK sign or without smoothing gives different features: the test above
    would catch those mistakes on this motion."""
    positions = F.canonicalize_joints(walking_motion(100), skeleton=SKELETON)
    natural = F.forward_directions(positions, SKELETON, ik_convention=False, smooth=True)
    quirk = F.forward_directions(positions, SKELETON, ik_convention=True, smooth=True)
    assert np.abs(natural - quirk).max() > 1e-3  # hips twist against shoulders, so the two signs differ
    heading = F.inverse_kinematics(positions, skeleton=SKELETON)[:, 0]
    np.testing.assert_allclose(R.qrot(heading[1:], quirk[1:].astype(np.float32)), np.tile([0, 0, 1.0], (99, 1)), atol=1e-5)
    np.testing.assert_array_equal(heading[0], [1, 0, 0, 0])
    unsmoothed = F.forward_directions(positions, SKELETON, ik_convention=True, smooth=False)
    assert np.abs(unsmoothed - quirk).max() > 1e-2


def test_feature_rows_use_frame_t_and_absolute_heights(walk, walk_features):
    positions = F.canonicalize_joints(walk, skeleton=SKELETON)
    slices = SKELETON.feature_slices
    np.testing.assert_allclose(walk_features[:, slices["root_y"]][:, 0], positions[:-1, 0, 1], atol=1e-6)
    ric = walk_features[:, slices["ric"]].reshape(len(walk_features), -1, 3)
    np.testing.assert_allclose(ric[..., 1], positions[:-1, 1:, 1], atol=1e-6)  # ric y = height above floor
    # frame 0's heading is the identity: ric and vel of row 0 are plain root-relative world values
    np.testing.assert_allclose(ric[0, :, [0, 2]], (positions[0, 1:] - positions[0, :1])[:, [0, 2]].T, atol=1e-6)


def test_round_trip_features_joints_features(walk_features):
    rebuilt = F.joints_from_features(walk_features, append_final_frame=True, skeleton=SKELETON)  # (T, J, 3)
    assert rebuilt.shape == (len(walk_features) + 1, SKELETON.num_joints, 3)
    again = F.features_from_joints(rebuilt, skeleton=SKELETON)
    # all 263 entries of every row, including row 0's root_rot_vel (heading of frame 1 against the forced
    # identity at frame 0), are reproduced
    np.testing.assert_allclose(again, walk_features, atol=1e-5)

    # Without the final frame the clip is one frame shorter: the heading smoothing (sigma 20, radius 80 frames)
    # then differs near the clip end, so only rows more than 80 frames before the end are reproduced exactly.
    shorter = F.features_from_joints(F.joints_from_features(walk_features, skeleton=SKELETON), skeleton=SKELETON)
    untouched = len(shorter) - 80
    np.testing.assert_allclose(shorter[:untouched], walk_features[:untouched], atol=1e-5)
    assert np.abs(shorter[untouched:] - walk_features[untouched:-1]).max() > 1e-4


def test_recovered_joints_equal_floored_origin_facing_joints():
    """A motion on the uniform skeleton: recovery gives the input moved to the floor/origin and turned to +z."""
    joints = walking_motion(100, initial_heading=2.6, turn=0.8, start=(3.0, 0.4, 5.0))
    recovered = F.joints_from_features(F.features_from_joints(joints, skeleton=SKELETON), skeleton=SKELETON)  # (T-1, J, 3)
    expected = joints.copy()
    expected[..., 1] -= expected[..., 1].min()
    expected[..., [0, 2]] -= expected[0, 0, [0, 2]]
    facing = _facing_direction(expected[0])
    expected = expected @ _rot_y_matrix(-np.arctan2(facing[0], facing[2])).T
    assert np.abs(recovered - expected[:-1]).max() < 1e-3  # < 1 mm
    np.testing.assert_allclose(recovered, F.canonicalize_joints(joints, skeleton=SKELETON)[:-1], atol=1e-5)


def test_ik_fk_round_trip_and_chain_convention():
    joints = walking_motion(60, initial_heading=0.0, turn=0.5)
    rotations = F.inverse_kinematics(joints, skeleton=SKELETON)  # (T, J, 4)
    assert rotations.shape == (60, SKELETON.num_joints, 4) and rotations.dtype == np.float32
    rebuilt = F.forward_kinematics(rotations, joints[:, 0], skeleton=SKELETON)
    assert np.abs(rebuilt - joints).max() < 1e-3  # the FK-built motion comes back (< 1 mm)
    # every chain starts from the root rotation, also the arm chains starting at spine3:
    # the collar's local rotation is inverse(root) * swing(raw offset -> bone direction)
    root = rotations[:, 0]
    for collar in (SKELETON.index("left_collar"), SKELETON.index("right_collar")):
        parent = SKELETON.parents[collar]
        direction = _unit(joints[:, collar] - joints[:, parent]).astype(np.float32)
        swing = R.qbetween(np.broadcast_to(np.asarray(SKELETON.raw_offsets[collar], np.float32), direction.shape), direction)
        np.testing.assert_allclose(rotations[:, collar], R.qmul(R.qinv(root), swing), atol=1e-5)
    # swing-only: the rotation composed down the chain has no twist about the joint's rest bone direction
    hip, knee = SKELETON.index("left_hip"), SKELETON.index("left_knee")
    composed = R.qmul(R.qmul(root, rotations[:, hip]), rotations[:, knee])
    axis = R.quat_to_axis_angle(composed)
    np.testing.assert_allclose((axis * np.asarray(SKELETON.raw_offsets[knee])).sum(-1), 0.0, atol=1e-5)


def test_retarget_scales_and_rebones_source():
    joints = walking_motion(50)
    scaled = F.canonicalize_joints(joints * 1.37, skeleton=SKELETON)  # a uniformly bigger person, everything scales
    np.testing.assert_allclose(scaled, F.canonicalize_joints(joints, skeleton=SKELETON), atol=1e-5)
    rng = np.random.default_rng(RNG_SEED)
    lengths = np.asarray(SKELETON.bone_lengths) * rng.uniform(0.7, 1.4, size=SKELETON.num_joints)
    odd = walking_motion(50, offsets=np.asarray(SKELETON.raw_offsets, float) * lengths[:, None])
    retargeted = F.retarget_to_uniform(odd, skeleton=SKELETON)
    for parent, child in SKELETON.bones:
        measured = np.linalg.norm(retargeted[:, child] - retargeted[:, parent], axis=-1)
        np.testing.assert_allclose(measured, SKELETON.bone_lengths[child], rtol=1e-5)
        np.testing.assert_allclose(
            _unit(retargeted[:, child] - retargeted[:, parent]), _unit(odd[:, child] - odd[:, parent]), atol=1e-5
        )
    knee, ankle = SKELETON.leg_joints
    ratio = (SKELETON.bone_lengths[knee] + SKELETON.bone_lengths[ankle]) / (lengths[knee] + lengths[ankle])
    np.testing.assert_allclose(retargeted[:, 0], odd[:, 0] * ratio, atol=1e-5)


def test_floor_is_lowest_joint_of_the_whole_clip_and_facing_is_plus_z():
    """Bent over with hands below the lifted feet: the floor is the lowest joint of all, not the feet."""
    rotations = walking_rotations(40, initial_heading=2.2, turn=0.3)
    index = SKELETON.index
    rotations[:, index("spine1")] = _x_rotation(np.full(40, 2.4))  # torso pitched down
    rotations[:, index("left_ankle")] = _x_rotation(np.full(40, -1.5))  # shins lifted behind
    rotations[:, index("right_ankle")] = _x_rotation(np.full(40, -1.5))
    root = np.tile([0.5, 1.1, 0.2], (40, 1)) + np.linspace(0, 1, 40)[:, None] * [0.3, 0.0, 0.2]
    joints = np.asarray(F.forward_kinematics(rotations, root, skeleton=SKELETON))
    positions = F.canonicalize_joints(joints, skeleton=SKELETON)
    feet = positions[:, list(SKELETON.foot_joints)]
    assert abs(positions[..., 1].min()) < 1e-6
    assert feet[..., 1].min() > 0.05  # the feet are not what touches the floor here
    np.testing.assert_allclose(positions[0, 0, [0, 2]], 0.0, atol=1e-6)  # frame-0 root at the origin
    np.testing.assert_allclose(_facing_direction(positions[0]), [0, 0, 1], atol=1e-6)  # frame 0 faces +z
    recovered = F.joints_from_features(F.features_from_joints(joints, skeleton=SKELETON), skeleton=SKELETON)
    np.testing.assert_allclose(_facing_direction(recovered[0]), [0, 0, 1], atol=1e-5)
    assert abs(recovered[..., 1].min()) < 1e-5


def test_walk_grounded_feet_touch_floor(walk):
    positions = F.canonicalize_joints(walk, skeleton=SKELETON)
    assert abs(positions[..., 1].min()) < 1e-6
    assert abs(positions[:, list(SKELETON.foot_joints), 1].min()) < 1e-6  # lowest joint is a foot


def test_contacts_still_foot_is_one_moving_foot_is_zero():
    num_frames = 30
    rotations = R.identity_quat((num_frames, SKELETON.num_joints), np.float64)
    # right thigh circles at constant angular speed: the right foot always moves; the root never moves
    right_thigh = SKELETON.index("right_knee")
    rotations[:, right_thigh] = _x_rotation(0.6 * np.arange(num_frames))
    joints = np.asarray(F.forward_kinematics(rotations, np.tile([0.0, 0.95, 0.0], (num_frames, 1)), skeleton=SKELETON))
    contacts = F.features_from_joints(joints, skeleton=SKELETON)[:, SKELETON.feature_slices["contacts"]]  # (T-1, 4)
    np.testing.assert_array_equal(contacts[:, :2], 1.0)  # left heel, left toe: still
    np.testing.assert_array_equal(contacts[:, 2:], 0.0)  # right heel, right toe: moving


@pytest.mark.parametrize("squared_step, expected", [(0.0019, 1.0), (0.0021, 0.0)])
def test_contact_threshold_is_strict_squared_displacement(squared_step, expected):
    rotations = R.identity_quat((10, SKELETON.num_joints), np.float64)
    root = np.zeros((10, 3))
    root[:, 0] = np.arange(10) * np.sqrt(squared_step)  # the whole body slides sideways
    root[:, 1] = 0.95
    joints = np.asarray(F.forward_kinematics(rotations, root, skeleton=SKELETON))
    contacts = F.features_from_joints(joints, skeleton=SKELETON)[:, SKELETON.feature_slices["contacts"]]
    np.testing.assert_array_equal(contacts, expected)


def test_mirroring_twice_is_identity_and_commutes_with_recovery(walk, walk_features):
    np.testing.assert_array_equal(F.mirror_features(F.mirror_features(walk_features, skeleton=SKELETON), skeleton=SKELETON), walk_features)
    np.testing.assert_array_equal(F.mirror_joints(F.mirror_joints(walk, skeleton=SKELETON), skeleton=SKELETON), walk)
    mirrored = F.mirror_joints(walk, skeleton=SKELETON)
    left, right = SKELETON.mirror_left[0], SKELETON.mirror_right[0]
    np.testing.assert_array_equal(mirrored[:, left], walk[:, right] * [-1, 1, 1])
    np.testing.assert_allclose(
        F.joints_from_features(F.mirror_features(walk_features, skeleton=SKELETON), skeleton=SKELETON),
        F.mirror_joints(F.joints_from_features(walk_features, skeleton=SKELETON), skeleton=SKELETON),
        atol=1e-5,
    )


def test_mirror_features_equals_features_of_mirrored_joints():
    """On a left/right-symmetric skeleton the pipeline commutes exactly with mirroring. (The published target
    lengths are slightly asymmetric and the retarget scale uses the right leg only, so on those a mirrored
    clip is retargeted slightly differently.)"""
    offsets = symmetric_offsets()
    joints = walking_motion(90, initial_heading=0.4, turn=-1.0, offsets=offsets)
    direct = F.features_from_joints(F.mirror_joints(joints, skeleton=SKELETON), target_offsets=offsets, skeleton=SKELETON)
    mirrored = F.mirror_features(F.features_from_joints(joints, target_offsets=offsets, skeleton=SKELETON), skeleton=SKELETON)
    for group, part in SKELETON.feature_slices.items():
        np.testing.assert_allclose(direct[:, part], mirrored[:, part], atol=2e-5, err_msg=group)


def test_torch_batched_recovery_matches_numpy():
    torch = pytest.importorskip("torch")
    clips = [walking_motion(41, initial_heading=h, turn=t) for h, t in ((0.1, 0.5), (-1.0, -0.7))]
    features = np.stack([F.features_from_joints(c, skeleton=SKELETON) for c in clips])  # (2, 40, 263)
    batched = F.joints_from_features(torch.from_numpy(features), skeleton=SKELETON)  # (2, 40, 22, 3)
    assert isinstance(batched, torch.Tensor) and batched.dtype == torch.float32
    assert tuple(batched.shape) == (2, 40, SKELETON.num_joints, 3)
    for i in range(2):
        np.testing.assert_allclose(batched[i].numpy(), F.joints_from_features(features[i], skeleton=SKELETON), atol=1e-5)
    full = F.joints_from_features(torch.from_numpy(features), append_final_frame=True, skeleton=SKELETON)
    assert tuple(full.shape) == (2, 41, SKELETON.num_joints, 3)
    mirrored = F.mirror_features(torch.from_numpy(features), skeleton=SKELETON)
    np.testing.assert_allclose(mirrored.numpy(), F.mirror_features(features, skeleton=SKELETON), atol=0)
    # differentiable: gradients flow from positions back to the features
    leaf = torch.from_numpy(features[0]).requires_grad_(True)
    F.joints_from_features(leaf, skeleton=SKELETON).square().sum().backward()
    assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0


def test_kit_skeleton_with_explicit_and_own_offsets():
    lengths = np.zeros(KIT.num_joints)
    lengths[1:] = np.linspace(0.08, 0.45, KIT.num_joints - 1)
    offsets = np.asarray(KIT.raw_offsets, float) * lengths[:, None]
    joints = walking_motion(60, skeleton=KIT, offsets=offsets, turn=0.6)
    features = F.features_from_joints(joints, KIT, target_offsets=offsets)
    assert features.shape == (59, KIT.feature_dim) == (59, 251)
    recovered = F.joints_from_features(features, KIT)
    assert recovered.shape == (59, KIT.num_joints, 3)
    assert np.abs(recovered - _reference_canonical(joints, KIT, lengths)[:-1]).max() < 1e-3
    # no target given and KIT has no published lengths: the clip keeps its own frame-0 bone lengths
    np.testing.assert_allclose(F.features_from_joints(joints, KIT), features, atol=1e-5)
    with pytest.raises(ValueError, match="263|251"):
        F.joints_from_features(features, SKELETON)


def test_invalid_inputs_raise_clear_errors(walk):
    with pytest.raises(ValueError, match=r"joints must have shape \(T, 22, 3\)"):
        F.features_from_joints(walk[:, :21], skeleton=SKELETON)
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        F.features_from_joints(walk[0], skeleton=SKELETON)
    with pytest.raises(ValueError, match="at least 2"):
        F.features_from_joints(walk[:1], skeleton=SKELETON)
    broken = walk.copy()
    broken[5, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf at frame\(s\) \[5\]"):
        F.features_from_joints(broken, skeleton=SKELETON)
    broken[5, 3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        F.features_from_joints(broken, skeleton=SKELETON)
    with pytest.raises(ValueError, match="target_offsets must have shape"):
        F.features_from_joints(walk, target_offsets=np.zeros((5, 3)), skeleton=SKELETON)
    with pytest.raises(ValueError, match="features must have shape"):
        F.joints_from_features(np.zeros((10, 100), np.float32), skeleton=SKELETON)
    collapsed = walk.copy()
    collapsed[:, SKELETON.index("left_elbow")] = collapsed[:, SKELETON.index("left_shoulder")]
    with pytest.raises(ValueError, match="coincide"):
        F.features_from_joints(collapsed, skeleton=SKELETON)
