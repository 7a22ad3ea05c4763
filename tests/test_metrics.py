"""Known-answer tests for generation metrics, retrieval metrics, the embedding index cache and reports."""
from __future__ import annotations

import json

import numpy as np
import pytest

from adamotion.eval.metrics import (
    bone_length_variation,
    diversity,
    foot_floating,
    foot_penetration,
    frechet_distance,
    joint_acceleration,
    joint_jerk,
    mean_ci95,
    mm_distance,
    multimodality,
    physical_metrics,
    r_precision,
    skating_ratio,
)
from adamotion.eval.report import plot_training_curves, write_report
from adamotion.retrieval.report import format_retrieval_table
from adamotion.motion.skeleton import HUMANML3D, KIT
from adamotion.retrieval.index import EmbeddingIndex, build_or_load_index, checksum_paths
from adamotion.retrieval.metrics import retrieval_metric_names, retrieval_metrics


# ============================================================================ FID
def test_fid_of_a_set_with_itself_is_zero():
    samples = np.random.default_rng(0).normal(size=(500, 8))
    assert frechet_distance(samples, samples) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    mean_a, mean_b = np.array([0.0, 1.0, -1.0, 2.0]), np.array([1.0, 1.0, 0.5, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([2.0, 1.0, 1.0, 0.5])
    samples_a = mean_a + np.sqrt(var_a) * rng.normal(size=(100_000, 4))
    samples_b = mean_b + np.sqrt(var_b) * rng.normal(size=(100_000, 4))
    # diagonal covariances: tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt(a) - sqrt(b))^2
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert expected == pytest.approx(7.25 + 1.9216, abs=1e-3)  # mean shift 7.25, spread 1.92
    assert frechet_distance(samples_a, samples_b) == pytest.approx(expected, rel=0.01)


def test_fid_near_singular_covariances_stay_finite_and_torch_is_accepted():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    few_real, few_gen = rng.normal(size=(5, 16)), rng.normal(size=(6, 16)) + 3.0  # rank-deficient covariances
    value = frechet_distance(few_real, few_gen)
    assert np.isfinite(value) and value > 16 * 9 * 0.5  # the mean shift alone is ~144
    assert frechet_distance(torch.from_numpy(few_real), torch.from_numpy(few_gen)) == pytest.approx(value)
    with pytest.raises(ValueError, match="same width"):
        frechet_distance(few_real, few_gen[:, :8])


# ============================================================================ diversity / multimodality
def test_diversity_of_points_at_known_distances():
    simplex = 3.0 * np.eye(10)  # every pair of distinct points is 3*sqrt(2) apart
    assert diversity(simplex, pairs=300, rng=0) == pytest.approx(3.0 * np.sqrt(2.0))
    two_points = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert diversity(two_points, pairs=50, rng=1) == pytest.approx(5.0)
    assert diversity(simplex, rng=7) == diversity(simplex, rng=7)  # seeded: repeatable


def test_multimodality_identical_samples_is_zero_and_known_spread():
    same = np.repeat(np.random.default_rng(3).normal(size=(4, 1, 6)), 5, axis=1)  # (K=4, S=5, D=6)
    assert multimodality(same, pairs=10, rng=0) == 0.0
    two_samples = np.zeros((3, 2, 2))
    two_samples[:, 1, 0] = 2.0  # the two generations of every caption are 2 apart
    assert multimodality(two_samples, pairs=10, rng=0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="K captions"):
        multimodality(np.zeros((3, 2)))


# ============================================================================ R-precision / MM-Dist
def test_r_precision_identical_embeddings_is_perfect():
    embeddings = np.random.default_rng(4).normal(size=(96, 16))
    np.testing.assert_array_equal(r_precision(embeddings, embeddings, rng=0), [1.0, 1.0, 1.0])
    assert mm_distance(embeddings, embeddings) == 0.0


def test_r_precision_shuffled_pairing_is_at_chance():
    rng = np.random.default_rng(5)
    text = rng.normal(size=(32 * 250, 16))
    motion = text[rng.permutation(len(text))]  # each motion paired with an unrelated caption
    top = r_precision(text, motion, pool=32, top_k=3, rng=rng)
    np.testing.assert_allclose(top, np.array([1, 2, 3]) / 32, atol=0.012)
    assert np.all(np.diff(top) >= 0)


def test_r_precision_uses_batches_of_pool_and_drops_the_incomplete_one():
    rng = np.random.default_rng(6)
    text = rng.normal(size=(40, 8))
    motion = text.copy()
    motion[32:] = rng.normal(size=(8, 8))  # the last 8 pairs are mismatched, but fall in the dropped batch
    np.testing.assert_array_equal(r_precision(text, motion, pool=32, shuffle=False), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="at least pool"):
        r_precision(text[:20], motion[:20], pool=32)


def test_mm_distance_known_value():
    text = np.zeros((3, 2))
    motion = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]])
    assert mm_distance(text, motion) == pytest.approx((5 + 1 + 2) / 3)


# ============================================================================ mean ± CI
def test_mean_ci95_matches_hand_computation():
    mean, half_width = mean_ci95([1.0, 2.0, 3.0, 4.0])
    # population std of 1..4 = sqrt(1.25); 1.96 * sqrt(1.25) / sqrt(4)
    assert mean == 2.5
    assert half_width == pytest.approx(1.96 * 1.1180339887 / 2.0)
    means, widths = mean_ci95([[1.0, 10.0], [3.0, 10.0]])  # per-repeat vectors: per-column statistics
    np.testing.assert_allclose(means, [2.0, 10.0])
    np.testing.assert_allclose(widths, [1.96 * 1.0 / np.sqrt(2), 0.0])


# ============================================================================ skating ratio
def _standing_clip(num_frames: int = 11, skeleton=HUMANML3D) -> np.ndarray:
    """(T, J, 3): every joint 1 m up, feet planted on the floor at fixed x/z."""
    joints = np.zeros((num_frames, skeleton.num_joints, 3))
    joints[:, :, 1] = 1.0
    joints[:, list(skeleton.foot_joints), 1] = 0.0
    return joints


def _slide(joints: np.ndarray, foot: tuple[int, ...], step_m: float, frames: slice = slice(None)) -> np.ndarray:
    """Move ``foot`` joints along x by ``step_m`` per frame inside ``frames`` (positions accumulate)."""
    out = joints.copy()
    steps = np.zeros(len(joints))
    steps[frames] = step_m
    out[:, list(foot), 0] += np.cumsum(steps)[:, None] - steps[0]
    return out


def test_retrieval_rank_counts_ties_against_the_true_item():
    """One rank rule for R-precision and the app's score: 1 + the other candidates at least as near."""
    from adamotion.eval.metrics import retrieval_rank

    assert retrieval_rank([0.5, 0.2, 0.9], 0.5).item() == 2
    assert retrieval_rank([0.5, 0.5, 0.2, 0.9], 0.5).item() == 3  # a tie counts against the true caption
    assert retrieval_rank([0.1, 0.2, 0.9], 0.1).item() == 1
    distances = np.array([[[0.1, 0.3], [0.3, 0.3]]])  # (B=1, pool=2, pool=2), true captions on the diagonal
    np.testing.assert_array_equal(retrieval_rank(distances, np.diagonal(distances, axis1=1, axis2=2)), [[1, 2]])
    # r_precision uses the same rule: a motion tied with another caption is not a top-1 hit
    text = np.array([[0.0, 0.0], [2.0, 0.0]])
    motion = np.array([[0.0, 0.0], [1.0, 0.0]])  # motion 1 is equally far (1.0) from both captions
    np.testing.assert_allclose(r_precision(text, motion, pool=2, top_k=2, shuffle=False), [0.5, 1.0])


def test_skating_ratio_sliding_foot_on_the_ground():
    standing = _standing_clip()
    assert skating_ratio(standing, HUMANML3D) == 0.0
    fast = _slide(standing, HUMANML3D.feet_left, 0.03)  # 3 cm/frame > 2.5 cm at 20 fps
    assert skating_ratio(fast, HUMANML3D) == 1.0
    slow = _slide(standing, HUMANML3D.feet_left, 0.01)  # 1 cm/frame: normal contact drift
    assert skating_ratio(slow, HUMANML3D) == 0.0
    lifted = fast.copy()
    lifted[:, list(HUMANML3D.feet_left), 1] = 0.06  # same speed, 6 cm above the floor: swinging, not skating
    assert skating_ratio(lifted, HUMANML3D) == 0.0
    half = _slide(standing, HUMANML3D.feet_right, 0.03, frames=slice(0, 6))  # slides during 5 of 10 steps
    assert skating_ratio(half, HUMANML3D) == pytest.approx(0.5)
    up_only = standing.copy()
    up_only[:, list(HUMANML3D.feet_left), 1] = np.linspace(0.0, 0.049, 11)[:, None]  # vertical motion only
    assert skating_ratio(up_only, HUMANML3D) == 0.0


def test_skating_threshold_scales_with_fps():
    fast = _slide(_standing_clip(), HUMANML3D.feet_left, 0.03)  # 3 cm/frame
    assert skating_ratio(fast, HUMANML3D, fps=20) == 1.0
    assert skating_ratio(fast, HUMANML3D, fps=10) == 0.0  # at 10 fps 3 cm/frame is 0.3 m/s < 0.5 m/s
    slow = _slide(_standing_clip(), HUMANML3D.feet_left, 0.015)
    assert skating_ratio(slow, HUMANML3D, fps=20) == 0.0
    assert skating_ratio(slow, HUMANML3D, fps=40) == 1.0  # 1.5 cm/frame at 40 fps is 0.6 m/s
    kit = _slide(_standing_clip(skeleton=KIT), KIT.feet_right, 0.03, frames=slice(0, 6))
    assert skating_ratio(kit, KIT) == 0.0  # KIT's 12.5 fps: threshold 4 cm/frame


def test_skating_ratio_padded_batch_with_lengths_and_mask():
    sliding = _slide(_standing_clip(), HUMANML3D.feet_left, 0.03)
    padded = _standing_clip()
    padded[6:] = sliding[6:] + 5.0 * np.array([1.0, 0.0, 0.0])  # garbage padding after 6 real frames
    padded[6:, :, 1] = 0.0
    batch = np.stack([sliding, padded])  # (B=2, T=11, J, 3)
    np.testing.assert_allclose(skating_ratio(batch, HUMANML3D, lengths=[11, 6], reduce="none"), [1.0, 0.0])
    mask = np.arange(11)[None, :] < np.array([[11], [6]])
    np.testing.assert_allclose(skating_ratio(batch, HUMANML3D, mask=mask, reduce="none"), [1.0, 0.0])
    assert skating_ratio(batch, HUMANML3D, lengths=[11, 6]) == pytest.approx(0.5)
    assert skating_ratio(batch, HUMANML3D, reduce="none")[1] > 0  # without lengths the padding counts
    with pytest.raises(ValueError, match="fewer than 2 valid frames"):
        skating_ratio(batch, HUMANML3D, lengths=[11, 1])
    with pytest.raises(ValueError, match="skeleton"):
        skating_ratio(batch[:, :, :21], HUMANML3D)


# ============================================================================ physical quality
def _rest_pose_clip(num_frames: int, skeleton=HUMANML3D) -> np.ndarray:
    """(T, J, 3) the skeleton's rest pose (FK of its target offsets), feet on the floor, still."""
    offsets = skeleton.target_offsets.astype(np.float64)  # (J, 3)
    pose = np.zeros_like(offsets)
    for joint, parent in enumerate(skeleton.parents):
        if parent >= 0:
            pose[joint] = pose[parent] + offsets[joint]
    pose[:, 1] -= pose[list(skeleton.foot_joints), 1].min()
    return np.repeat(pose[None], num_frames, axis=0)


def test_constant_velocity_has_zero_acceleration_and_jerk():
    clip = _rest_pose_clip(30)
    clip += np.arange(30)[:, None, None] * np.array([0.07, 0.0, -0.03])  # 1.4 m/s along x, -0.6 m/s along z
    assert joint_acceleration(clip, HUMANML3D) == pytest.approx(0.0, abs=1e-9)
    assert joint_jerk(clip, HUMANML3D) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("frequency_hz, fps", [(3.0, 20.0), (1.25, 20.0), (2.0, 12.5)])
def test_circular_jitter_gives_its_discrete_closed_form(frequency_hz, fps):
    """Every joint circles with radius A at f Hz in the x-z plane: |second difference| is exactly
    2 A (1 - cos w) with w = 2 pi f / fps, i.e. 4 A sin^2(pi f / fps); the third difference is 8 A |sin^3(pi f / fps)|."""
    radius = 0.02
    t = np.arange(40)
    angle = 2 * np.pi * frequency_hz * t / fps
    clip = _rest_pose_clip(40)
    clip[:, :, 0] += radius * np.cos(angle)[:, None]
    clip[:, :, 2] += radius * np.sin(angle)[:, None]
    half = np.pi * frequency_hz / fps
    assert joint_acceleration(clip, HUMANML3D, fps=fps) == pytest.approx(4 * radius * np.sin(half) ** 2 * fps**2, rel=1e-9)
    assert joint_jerk(clip, HUMANML3D, fps=fps) == pytest.approx(8 * radius * abs(np.sin(half)) ** 3 * fps**3, rel=1e-9)
    # the skeleton's own fps is the default: a 20 fps skeleton evaluated at 20 fps
    if fps == HUMANML3D.fps:
        assert joint_acceleration(clip, HUMANML3D) == joint_acceleration(clip, HUMANML3D, fps=fps)


def test_alternating_one_joint_jitter_averages_over_joints():
    """One joint flips by +/-A every frame (Nyquist): |a| = 4 A fps^2 at that joint, 0 elsewhere."""
    amplitude = 0.01
    clip = _rest_pose_clip(12)
    clip[:, 20, 1] += amplitude * (-1.0) ** np.arange(12)
    expected = 4 * amplitude * HUMANML3D.fps**2 / HUMANML3D.num_joints
    assert joint_acceleration(clip, HUMANML3D) == pytest.approx(expected, rel=1e-12)


def test_padded_batch_ignores_padding_for_every_physical_metric():
    still = _rest_pose_clip(20)
    garbage = still.copy()
    garbage[8:] = np.random.default_rng(0).normal(size=garbage[8:].shape)  # padding after 8 real frames
    batch = np.stack([still, garbage])  # (B=2, T=20, J, 3)
    per_clip = physical_metrics(batch, HUMANML3D, lengths=[20, 8], reduce="none")
    for key, values in per_clip.items():
        assert values.shape == (2,), key
        np.testing.assert_allclose(values, 0.0, atol=1e-12, err_msg=key)
    mask = np.arange(20)[None] < np.array([[20], [8]])
    assert physical_metrics(batch, HUMANML3D, mask=mask) == physical_metrics(batch, HUMANML3D, lengths=[20, 8])
    assert joint_acceleration(batch, HUMANML3D, reduce="none")[1] > 1.0  # without lengths the padding counts
    with pytest.raises(ValueError, match="fewer than 3 valid frames"):
        joint_acceleration(batch, HUMANML3D, lengths=[20, 2])
    with pytest.raises(TypeError, match="Skeleton"):
        joint_acceleration(batch, "humanml3d")


def test_bone_length_variation_rigid_is_zero_and_stretch_is_its_cv():
    clip = _rest_pose_clip(10)
    spin = np.linspace(0, np.pi, 10)  # rotate the whole rigid body about y: lengths unchanged
    rotated = clip.copy()
    rotated[..., 0] = clip[..., 0] * np.cos(spin)[:, None] + clip[..., 2] * np.sin(spin)[:, None]
    rotated[..., 2] = -clip[..., 0] * np.sin(spin)[:, None] + clip[..., 2] * np.cos(spin)[:, None]
    assert bone_length_variation(rotated, HUMANML3D) == pytest.approx(0.0, abs=1e-12)
    # the left wrist's bone alternates between 0.9 L and 1.1 L: CV 0.1 on one of 21 bones
    stretched = clip.copy()
    forearm = clip[:, 20] - clip[:, 18]  # (T, 3)
    scale = np.where(np.arange(10) % 2 == 0, 0.9, 1.1)[:, None]
    stretched[:, 20] = clip[:, 18] + forearm * scale
    assert bone_length_variation(stretched, HUMANML3D) == pytest.approx(0.1 / len(HUMANML3D.bones), rel=1e-9)


def test_foot_penetration_depth_and_share():
    clip = _rest_pose_clip(10)
    sunk = clip.copy()
    sunk[:, HUMANML3D.feet_right[1], 1] = -0.03  # right toe 3 cm under the floor all along
    depth, share = foot_penetration(sunk, HUMANML3D)
    assert depth == pytest.approx(0.03) and share == 1.0
    assert foot_penetration(clip, HUMANML3D) == (0.0, 0.0)
    half = clip.copy()
    half[:5, :, 1] -= 0.005  # 5 mm under for half the frames: below the 1 cm tolerance of the share
    depth, share = foot_penetration(half, HUMANML3D)
    assert depth == pytest.approx(0.0025) and share == 0.0


def test_floating_counts_planted_feet_in_the_air_only():
    standing = _rest_pose_clip(10)
    assert foot_floating(standing, HUMANML3D) == 0.0
    hovering = standing + np.array([0.0, 0.2, 0.0])  # whole body still, 20 cm above the floor
    assert foot_floating(hovering, HUMANML3D) == 1.0
    jumping = standing.copy()  # feet leave the floor fast (30 cm per frame = 6 m/s): flight, not floating
    jumping[:, :, 1] += 0.3 * np.arange(10)[:, None]
    assert foot_floating(jumping, HUMANML3D) == 0.0
    partly = standing.copy()
    partly[6:, :, 1] += 0.1  # steps 6..8 hover (3 of 9 transitions); the jump itself (5 -> 6) is 10 cm/frame = 2 m/s
    assert foot_floating(partly, HUMANML3D) == pytest.approx(3 / 9)


# ============================================================================ retrieval metrics
def _similarity_with_ranks(ranks: list[int]) -> np.ndarray:
    """(N, N) similarity whose row i ranks its diagonal item at position ranks[i] (1-based)."""
    size = len(ranks)
    sim = np.zeros((size, size))
    for row, rank in enumerate(ranks):
        others = [col for col in range(size) if col != row]
        order = others[: rank - 1] + [row] + others[rank - 1:]
        sim[row, order] = np.arange(size, 0, -1)  # first in order gets the highest score
    return sim


def test_retrieval_identity_similarity_is_perfect():
    result = retrieval_metrics(np.eye(12))
    assert list(result) == retrieval_metric_names()
    for direction in ("t2m", "m2t"):
        for k in (1, 2, 3, 5, 10):
            assert result[f"{direction}/R@{k}"] == 100.0
        assert result[f"{direction}/MedR"] == 1.0
    assert result["Rsum"] == 1000.0


def test_retrieval_known_ranks_give_exact_recalls():
    sim = _similarity_with_ranks(list(range(1, 21)))  # text i finds its motion at rank i + 1
    result = retrieval_metrics(sim)
    expected = {"R@1": 5.0, "R@2": 10.0, "R@3": 15.0, "R@5": 25.0, "R@10": 50.0, "MedR": 10.5}
    for key, value in expected.items():
        assert result[f"t2m/{key}"] == pytest.approx(value)
    transposed = retrieval_metrics(sim.T)  # motion-to-text of sim.T is text-to-motion of sim
    for key, value in expected.items():
        assert transposed[f"m2t/{key}"] == pytest.approx(value)

    reversed_sim = -np.eye(10)  # every true pair scores lowest: rank 10 of 10
    reversed_result = retrieval_metrics(reversed_sim)
    assert [reversed_result[f"t2m/R@{k}"] for k in (1, 2, 3, 5, 10)] == [0.0, 0.0, 0.0, 0.0, 100.0]
    assert reversed_result["m2t/MedR"] == 10.0
    assert reversed_result["Rsum"] == 200.0  # only R@10 hits, in both directions: 100 + 100
    assert retrieval_metrics(np.eye(12))["Rsum"] == 1000.0  # every recall of both directions is 100
    assert retrieval_metrics(np.ones((10, 10)))["t2m/MedR"] == 10.0  # ties count against the query


def test_retrieval_threshold_protocol_counts_near_duplicate_captions():
    sim = np.eye(4)
    sim[0] = [0.5, 0.9, 0.1, 0.0]  # caption 0 prefers motion 1 over its own motion 0
    text_sim = np.eye(4)
    text_sim[0, 1] = text_sim[1, 0] = 0.97  # captions 0 and 1 say the same thing
    normal = retrieval_metrics(sim, protocol="normal")
    assert normal["t2m/R@1"] == 75.0  # caption 0 finds its motion second
    threshold = retrieval_metrics(sim, protocol="threshold", text_sim=text_sim)
    assert threshold["t2m/R@1"] == 100.0  # motion 1 is described by a near-identical caption
    assert retrieval_metrics(sim, protocol="threshold", text_sim=text_sim, threshold=0.99)["t2m/R@1"] == 75.0
    with pytest.raises(ValueError, match="needs text_sim"):
        retrieval_metrics(sim, protocol="threshold")
    with pytest.raises(ValueError, match="unknown retrieval protocol"):
        retrieval_metrics(sim, protocol="nearest")
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(np.zeros((3, 4)))


def test_retrieval_guo_protocol_scores_batches_of_32():
    sim = np.full((64, 64), 5.0)  # cross-batch pairs look very similar: they only hurt the "normal" gallery
    sim[:32, :32] = np.eye(32)  # batch 0: perfect
    sim[32:, 32:] = -np.eye(32)  # batch 1: every true pair last of 32
    guo = retrieval_metrics(sim, protocol="guo", batch=32, shuffle=False)
    assert guo["t2m/R@1"] == 50.0 and guo["m2t/R@10"] == 50.0
    assert guo["t2m/MedR"] == pytest.approx((1 + 32) / 2)
    normal = retrieval_metrics(sim, protocol="normal")
    assert normal["t2m/R@10"] == 0.0
    shuffled = retrieval_metrics(np.eye(70), protocol="guo", rng=0)  # 2 full batches, 6 pairs dropped
    assert shuffled["Rsum"] == 1000.0
    with pytest.raises(ValueError, match="at least batch"):
        retrieval_metrics(np.eye(20), protocol="guo")


# ============================================================================ embedding index
def test_index_search_returns_known_nearest():
    gallery = np.eye(4) * 7.0  # normalised to the unit axes
    index = EmbeddingIndex(embeddings=gallery, ids=["a", "b", "c", "d"],
                           captions=["walk", "run", "jump", "sit"],
                           caption_embeddings=np.eye(4)[[2, 0]], caption_texts=["a jump", "a walk"],
                           caption_ids=["c", "a"])
    hits = index.search_text(np.array([0.1, 0.0, 2.0, 0.0]), k=2)
    assert [hit[0] for hit in hits] == ["c", "a"]
    assert hits[0][2] == "jump" and hits[0][1] == pytest.approx(2.0 / np.hypot(0.1, 2.0))
    batched = index.search_text(np.array([[0, 0, 0, 1.0], [0, 1.0, 0, 0]]), k=10)
    assert [hits[0][0] for hits in batched] == ["d", "b"] and len(batched[0]) == 4  # k clipped to N
    assert index.search_motion(np.array([0.0, 0, 1, 0]), k=1) == [("c", pytest.approx(1.0), "a jump")]
    with pytest.raises(ValueError, match="unique"):
        EmbeddingIndex(embeddings=gallery, ids=["a", "a", "b", "c"])


def test_index_cache_rebuilds_only_when_checkpoint_or_data_change(tmp_path):
    checkpoint, data = tmp_path / "ckpt", tmp_path / "test.txt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text('{"dim": 3}')
    (checkpoint / "model.safetensors").write_bytes(b"\x00\x01\x02weights")
    data.write_text("000001\n000002\n")
    calls = []

    def build():
        calls.append(1)
        return EmbeddingIndex(embeddings=np.eye(3), ids=["x", "y", "z"], captions=["a", "b", "c"],
                              metadata={"encoder": "vanilla"})

    def key_parts():
        return {"checkpoint": checksum_paths(checkpoint), "data": checksum_paths([data])}

    cache = tmp_path / "cache"
    first = build_or_load_index(cache, key_parts(), build)
    second = build_or_load_index(cache, key_parts(), build)
    assert len(calls) == 1
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.ids == ["x", "y", "z"] and second.metadata == {"encoder": "vanilla"}

    original_weights = (checkpoint / "model.safetensors").read_bytes()
    (checkpoint / "model.safetensors").write_bytes(b"\x00\x01\x03weights")  # one byte changed
    build_or_load_index(cache, key_parts(), build)
    assert len(calls) == 2
    data.write_text("000001\n000003\n")
    build_or_load_index(cache, key_parts(), build)
    assert len(calls) == 3
    build_or_load_index(cache, key_parts(), build)
    assert len(calls) == 3

    (checkpoint / "model.safetensors").write_bytes(original_weights)  # back to the first checkpoint + data
    data.write_text("000001\n000002\n")
    build_or_load_index(cache, key_parts(), build)
    assert len(calls) == 3  # its cache folder is still there

    for folder in cache.iterdir():  # a corrupt cache is rebuilt, not trusted
        (folder / "embeddings.safetensors").write_bytes(b"garbage")
    build_or_load_index(cache, key_parts(), build)
    assert len(calls) == 4


# ============================================================================ reports
def test_write_report_files_read_back(tmp_path):
    from matplotlib.image import imread

    results = {
        "real motions": {"fid": [0.0, 0.0], "r_precision": [[0.5, 0.7, 0.8], [0.52, 0.7, 0.8]],
                         "diversity": [9.5, 9.7], "mm_dist": [3.0, 3.0], "skating_ratio": [0.04, 0.04],
                         "jitter": [], "multimodality": [], "bone_variation": [1e-7, 1e-7]},
        "baseline": {"fid": [0.5, 0.7], "r_precision": [[0.4, 0.6, 0.7], [0.42, 0.6, 0.72]],
                     "diversity": [9.0, 9.0], "mm_dist": [3.5, 3.7], "skating_ratio": [0.1, 0.09],
                     "jitter": [30.0, 30.0], "multimodality": [], "bone_variation": [0.0001, 0.0001]},
        "AdaQF": {"fid": [0.1, 0.2], "r_precision": [[0.45, 0.65, 0.75], [0.47, 0.65, 0.77]],
                  "diversity": [9.4, 9.8], "mm_dist": [3.2, 3.4], "skating_ratio": [0.05, 0.07],
                  "jitter": [25.0, 25.0], "multimodality": [], "bone_variation": [0.02, 0.02]},
    }
    paths = write_report(results, tmp_path / "report", "HumanML3D test", reference="real motions",
                         evaluator="evaluator-under-test (sha256 abc)")

    report = json.loads(paths["json"].read_text())
    assert report["methods"] == ["real motions", "baseline", "AdaQF"]
    fid = report["results"]["baseline"]["fid"]
    assert fid["values"] == [0.5, 0.7] and fid["mean"] == pytest.approx(0.6)
    assert fid["ci95"] == pytest.approx(1.96 * 0.1 / np.sqrt(2))
    assert report["results"]["AdaQF"]["r_precision_top3"]["mean"] == pytest.approx(0.76)
    assert report["evaluator"] == "evaluator-under-test (sha256 abc)"
    assert report["results"]["AdaQF"]["skating_ratio"]["ratio_to_reference"] == pytest.approx(0.06 / 0.04)

    markdown = paths["md"].read_text()
    lines = markdown.splitlines()
    header, physical_header = [line for line in lines if line.startswith("| Method")]
    assert "FID ↓" in header and "R-prec top-3 ↑" in header and "Skating ratio" not in header
    assert "Skating ratio ↓" in physical_header and "Jitter (m/s²) →" in physical_header
    assert "Evaluator (embeds the captions and motions of this table): evaluator-under-test (sha256 abc)." in lines
    first_table = lines[lines.index(header): lines.index(physical_header)]
    rows = [line for line in first_table if line.startswith("| ") and not line.startswith("| Method")]
    assert [row.split("|")[1].strip() for row in rows] == ["real motions", "baseline", "AdaQF"]
    adaqf = rows[2].split("|")
    assert adaqf[2].strip() == "**0.150 ± 0.069**"  # best FID among competitors
    assert adaqf[6].strip() == "**3.300 ± 0.139**" and adaqf[7].strip().startswith("**9.600")  # diversity closest to real motions (9.6)
    assert "**" not in rows[0]  # the reference row is never bolded
    assert rows[0].split("|")[-2].strip() == "9.600 ± 0.139"  # real motions' diversity, never bolded
    physical_rows = [line for line in lines[lines.index(physical_header) + 2:] if line.startswith("| ")]
    adaqf_physical = physical_rows[2].split("|")
    assert adaqf_physical[1].strip() == "AdaQF"
    # jitter: closest to real motion is best, here the only reference is "–" (not measured) so no ratio
    assert adaqf_physical[2].strip() == "25.00 ± 0.00" and physical_rows[0].split("|")[2].strip() == "–"
    assert adaqf_physical[4].strip() == "**0.060 ± 0.014** (×1.50)"  # skating: lowest, 1.5 x real motion
    assert physical_rows[0].split("|")[4].strip() == "0.040 ± 0.000"  # the reference row has no ratio
    # bone-length CV: real motion ~0, so the ratio is not printed as a huge number
    assert adaqf_physical[3].strip() == "0.0200 ± 0.0000 (>100× real)"
    assert physical_rows[1].split("|")[3].strip() == "**0.0001 ± 0.0000** (>100× real)"

    image = imread(paths["png"])
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_training_curves_and_retrieval_table(tmp_path):
    from matplotlib.image import imread

    logs = {}
    for name, scale in (("baseline", 1.0), ("adaqf", 0.5)):
        path = tmp_path / f"{name}.csv"
        path.write_text("step,loss_mse,loss_motion\n" + "".join(
            f"{step},{scale / (step + 1)},{'' if step % 2 else scale}\n" for step in range(20)))
        logs[name] = path
    out = plot_training_curves(logs, tmp_path / "curves.png")
    assert imread(out).shape[0] > 100
    plot_training_curves(logs, tmp_path / "mse.png", columns=["loss_mse"])
    with pytest.raises(ValueError, match="not in the logs"):
        plot_training_curves(logs, tmp_path / "none.png", columns=["loss_kl"])
    bad = tmp_path / "bad.csv"
    bad.write_text("iteration,loss\n1,2\n")
    with pytest.raises(ValueError, match="'step' column"):
        plot_training_curves({"bad": bad}, tmp_path / "bad.png")

    vanilla = retrieval_metrics(_similarity_with_ranks(list(range(1, 21))))
    adapted = retrieval_metrics(np.eye(20))
    table = format_retrieval_table({"vanilla": vanilla, "adapted": adapted})
    lines = table.strip().splitlines()
    assert lines[0] == "| Metric | vanilla | adapted | Δ |"
    assert len(lines) == 2 + len(retrieval_metric_names())
    assert "| t2m/R@1 ↑ | 5.00 | **100.00** | +95.00 |" in lines
    assert "| t2m/MedR ↓ | 10.50 | **1.00** | -9.50 |" in lines
