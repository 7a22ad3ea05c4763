"""Geometric training losses: known answers on real procedural features, gradients, config."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from adamotion.data.synthetic import generate_motion
from adamotion.motion.features import features_from_joints
from adamotion.motion.skeleton import HUMANML3D as SK
from adamotion.train.geometric import GeometricLossConfig, geometric_losses

ALL_ON = GeometricLossConfig(position=1.0, velocity=1.0, foot_contact=1.0, bone_length=1.0)


@pytest.fixture(scope="module")
def walk_features():
    joints = generate_motion(np.random.default_rng(0), plan=["walk"], skeleton=SK).joints
    return torch.as_tensor(features_from_joints(joints, SK))[None]  # (1, T, F)


def _mask(features):
    return torch.ones(features.shape[:2], dtype=torch.bool)


def test_ground_truth_against_itself_is_zero(walk_features):
    losses = geometric_losses(walk_features, walk_features, _mask(walk_features), SK, ALL_ON)
    for name in ("geo_position", "geo_velocity", "geo_bone_length"):
        assert float(losses[name]) == pytest.approx(0.0, abs=1e-10), name
    # the procedural walk's planted feet barely move, so its own contact term is tiny but real
    assert 0.0 <= float(losses["geo_foot_contact"]) < 1e-3


def test_a_constant_lift_costs_position_only(walk_features):
    lifted = walk_features.clone()
    lifted[..., SK.feature_slices["root_y"]] += 0.1  # the root 10 cm higher on every frame
    lifted[..., SK.feature_slices["ric"]] = (lifted[..., SK.feature_slices["ric"]].reshape(1, -1, 21, 3)
                                             + torch.tensor([0.0, 0.1, 0.0])).reshape(1, -1, 63)
    losses = geometric_losses(lifted, walk_features, _mask(walk_features), SK, ALL_ON)
    assert float(losses["geo_position"]) == pytest.approx(0.01, rel=1e-4)  # (0.1 m)^2 on every joint
    assert float(losses["geo_velocity"]) == pytest.approx(0.0, abs=1e-10)
    assert float(losses["geo_bone_length"]) == pytest.approx(0.0, abs=1e-10)


def test_frame_to_frame_noise_costs_velocity_and_bone_length(walk_features):
    noisy = walk_features.clone()
    ric = SK.feature_slices["ric"]
    noise = torch.zeros_like(noisy[..., ric])
    noise[:, ::2] = 0.01  # +1 cm on every other frame, every coordinate
    noisy[..., ric] += noise
    losses = geometric_losses(noisy, walk_features, _mask(walk_features), SK, ALL_ON)
    T = walk_features.shape[1]
    # joints 1..21 step by 1 cm in x, y and z between frames; the root does not move
    assert float(losses["geo_velocity"]) == pytest.approx(3e-4 * 21 / 22, rel=1e-3)
    assert float(losses["geo_position"]) == pytest.approx(3e-4 * 21 / 22 * ((T + 1) // 2) / T, rel=1e-3)
    assert float(losses["geo_bone_length"]) > 0  # root-to-child bones change length


def test_padded_frames_do_not_count(walk_features):
    T = walk_features.shape[1]
    padded = torch.cat([walk_features, torch.zeros(1, 10, SK.feature_dim)], 1)
    garbage = torch.cat([walk_features, torch.randn(1, 10, SK.feature_dim)], 1)
    mask = torch.arange(T + 10)[None] < T
    losses = geometric_losses(garbage, padded, mask, SK, ALL_ON)
    assert float(losses["geo_velocity"]) == pytest.approx(0.0, abs=1e-10)
    assert float(losses["geo_position"]) == pytest.approx(0.0, abs=1e-10)


def test_weights_combine_and_gradients_flow(walk_features):
    pred = (walk_features + 0.01 * torch.randn_like(walk_features)).requires_grad_(True)
    config = GeometricLossConfig(position=2.0, velocity=3.0, foot_contact=0.0, bone_length=5.0)
    losses = geometric_losses(pred, walk_features, _mask(walk_features), SK, config)
    assert "geo_foot_contact" not in losses
    expected = 2 * losses["geo_position"] + 3 * losses["geo_velocity"] + 5 * losses["geo_bone_length"]
    assert float(losses["geometric"].detach()) == pytest.approx(float(expected.detach()))
    losses["geometric"].backward()
    assert pred.grad is not None and pred.grad[..., SK.feature_slices["ric"]].abs().sum() > 0


def test_config_rejects_negative_weights_and_all_zero_is_off():
    with pytest.raises(ValueError, match="velocity"):
        GeometricLossConfig(velocity=-1)
    assert not GeometricLossConfig(0, 0, 0, 0).enabled and GeometricLossConfig().enabled


# ============================================================================ optional post-processing
def test_rigid_decoding_reproduces_ground_truth_and_fixes_bones(walk_features):
    from adamotion.motion.features import joints_from_features
    from adamotion.motion.postprocess import decode, rigid_joints_from_features

    feats = walk_features[0].numpy()
    reference = joints_from_features(feats, SK)
    np.testing.assert_allclose(rigid_joints_from_features(feats, SK), reference, atol=2e-3)
    # stretch the ric positions: "none" follows them, "rigid" keeps the skeleton's bones
    stretched = feats.copy()
    stretched[:, SK.feature_slices["ric"]] *= 1.2
    _, joints = decode(stretched, SK, "rigid")
    bones = np.linalg.norm(joints[:, [c for _, c in SK.bones]] - joints[:, [p for p, _ in SK.bones]], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(np.asarray(SK.bone_lengths)[1:], bones.shape), atol=1e-5)
    _, loose = decode(stretched, SK, "none")
    assert not np.allclose(loose, joints, atol=1e-2)


def test_smoothing_removes_popping_and_keeps_contacts(walk_features):
    from adamotion.motion.postprocess import check_postprocess, decode

    feats = walk_features[0].numpy()
    popping = feats.copy()
    popping[::2, SK.feature_slices["ric"]] += 0.03  # 3 cm pop on every other frame
    smoothed, joints = decode(popping, SK, "smooth")
    _, raw = decode(popping, SK, "none")
    accel = lambda j: np.linalg.norm(j[2:] - 2 * j[1:-1] + j[:-2], axis=-1).mean()  # noqa: E731
    assert accel(joints) < 0.3 * accel(raw)
    np.testing.assert_array_equal(smoothed[:, SK.feature_slices["contacts"]], feats[:, SK.feature_slices["contacts"]])
    with pytest.raises(ValueError, match="postprocess must be one of"):
        check_postprocess("blur")
