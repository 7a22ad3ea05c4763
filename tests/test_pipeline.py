"""The inference pipeline, ``adamotion generate`` and ``adamotion bench generate``: a tiny random denoiser with the
real MiniLM text encoder (+ fresh LoRA adapters), loaded once for the module."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from adamotion.cli import main
from adamotion.data.meta import DatasetMeta
from adamotion.diffusion.scheduler import DiffusionScheduler
from adamotion.models.denoiser import DenoiserConfig, MotionDenoiser
from adamotion.models.length import LengthEstimator
from adamotion.motion.features import joints_from_features
from adamotion.motion.skeleton import HUMANML3D
from adamotion.pipeline import MotionOutput, MotionPipeline, seconds_to_frames
from adamotion.text.encoder import LoraSettings, TextEncoder
from adamotion.utils.serialization import CheckpointError

torch.set_num_threads(1)

F = HUMANML3D.feature_dim
PROMPT = "a person walks forward and waves"


def tiny_meta() -> DatasetMeta:
    rng = np.random.default_rng(0)
    return DatasetMeta(name="tiny-test", skeleton=HUMANML3D, fps=HUMANML3D.fps, feature_dim=F,
                       mean=rng.normal(0.0, 0.1, F).astype(np.float32), std=rng.uniform(0.05, 0.2, F).astype(np.float32))


def build_pipeline(encoder, seed: int = 0, length_estimator=None) -> MotionPipeline:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        denoiser = MotionDenoiser(DenoiserConfig.for_skeleton(HUMANML3D, encoder.hidden_size, width=32, depth=2,
                                                              heads=4, ff_mult=2))
    return MotionPipeline(encoder, denoiser, DiffusionScheduler(), tiny_meta(), length_estimator,
                          name="tiny", method="test")


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder.from_pretrained("minilm", lora=LoraSettings())


@pytest.fixture(scope="module")
def pipe(encoder):
    return build_pipeline(encoder)


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    """The tiny pipeline with a fitted length estimator, saved once."""
    pooled = pipe.text_encoder.encode_cached(["a person walks", "someone runs fast", "a man jumps up and down",
                                              "a person sits", "someone waves"]).pooled
    estimator = LengthEstimator(pipe.text_encoder.hidden_size, alpha=1.0, skeleton=HUMANML3D).fit(pooled, [60, 100, 80, 140, 44])
    with_length = MotionPipeline(pipe.text_encoder, pipe.denoiser, pipe.scheduler, pipe.meta, estimator,
                                 name="tiny", method="test")
    return with_length, with_length.save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


# ============================================================================ sampling
def test_output_structure_and_order(pipe):
    out = pipe(["a person walks", "someone jumps"], lengths=[40, 52], seed=7, num_samples=2, steps=10, sampler="ddim")
    assert isinstance(out, MotionOutput) and len(out) == 4
    assert out.prompts == ["a person walks", "a person walks", "someone jumps", "someone jumps"]
    assert out.lengths == [40, 40, 52, 52] and out.seeds == [7, 8, 7, 8]
    assert out.encoder == "MiniLM-L6 + LoRA (AdaQF)" and out.encoder_mode == "ada"
    for feats, joints, n in zip(out.features, out.joints, out.lengths):
        assert feats.shape == (n, F) and feats.dtype == np.float32 and np.isfinite(feats).all()
        assert joints.shape == (n, HUMANML3D.num_joints, 3) and joints.dtype == np.float32
        np.testing.assert_allclose(joints, joints_from_features(feats, HUMANML3D), atol=1e-5)
    assert not np.allclose(out.features[0], out.features[1])  # two samples of one prompt differ
    assert set(out.timings) >= {"text", "sampling", "decode", "total"}


# _summary of pipe(PROMPT, lengths=40, seed=0, steps=...) computed once with this tiny pipeline (torch 2.13 CPU).
EXPECTED_DDPM = {"mean": -0.00672883, "std": 0.11013962, "first": [-0.18946597, 0.02364118, 0.19091217],
                 "last": [-0.10403151, -0.06399053, -0.00674739], "root_end": [-0.00956804, 0.01643705, 2.95851493]}
EXPECTED_DDIM = {"mean": -0.00695767, "std": 0.11159370, "first": [-0.21653531, -0.06732314, 0.14959693],
                 "last": [-0.19780535, -0.17865613, -0.00238991], "root_end": [-0.24929452, 0.02428586, 2.81496119]}


def _summary(pipe: MotionPipeline, out: MotionOutput) -> dict:
    """A few numbers of sample 0 on the model's (normalised, O(1)) scale, plus where the root ends up."""
    z = pipe.meta.normalize(out.features[0])  # (T, F)
    return {"mean": float(z.mean()), "std": float(z.std()), "first": z[0, :3].tolist(), "last": z[-1, 4:7].tolist(),
            "root_end": out.joints[0][-1, 0].tolist()}


@pytest.mark.parametrize("sampler, steps, expected", [("ddpm", 50, EXPECTED_DDPM), ("ddim", 10, EXPECTED_DDIM)],
                         ids=["ddpm", "ddim"])
def test_seeded_sampling_matches_stored_values(pipe, sampler, steps, expected):
    pipe.text_encoder.clear_cache()  # PROMPT encoded alone, whatever ran before
    got = _summary(pipe, pipe(PROMPT, lengths=40, seed=0, steps=steps, sampler=sampler))
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, atol=1e-4, rtol=0, err_msg=key)


def test_same_seed_identical_different_seed_differs(pipe):
    a = pipe(PROMPT, lengths=48, seed=3)
    b = pipe(PROMPT, lengths=48, seed=3)
    c = pipe(PROMPT, lengths=48, seed=4)
    np.testing.assert_array_equal(a.features[0], b.features[0])
    np.testing.assert_array_equal(a.joints[0], b.joints[0])
    assert np.abs(a.features[0] - c.features[0]).max() > 1e-2


def test_one_seed_per_prompt(pipe):
    shared = pipe([PROMPT, PROMPT], lengths=48, seed=3)
    own = pipe([PROMPT, PROMPT], lengths=48, seed=[3, 9])
    alone = pipe(PROMPT, lengths=48, seed=9)
    np.testing.assert_array_equal(shared.features[0], shared.features[1])  # one int: every prompt uses it
    np.testing.assert_array_equal(own.features[0], shared.features[0])
    np.testing.assert_allclose(own.features[1], alone.features[0], atol=1e-5)
    assert own.seeds == [3, 9] and np.abs(own.features[0] - own.features[1]).max() > 1e-2
    with pytest.raises(ValueError, match="one seed per prompt"):
        pipe([PROMPT, PROMPT], lengths=48, seed=[1, 2, 3])


def test_a_sample_does_not_depend_on_its_batch_mates(pipe):
    alone = pipe("someone jumps", lengths=60, seed=1)
    together = pipe(["a person walks", "someone jumps"], lengths=[40, 60], seed=0, num_samples=2)
    np.testing.assert_allclose(together.features[3], alone.features[0], atol=1e-5)


def test_batched_guidance_matches_the_two_pass_baseline(pipe):
    from adamotion.bench import generate_two_pass

    batched = pipe(PROMPT, lengths=44, seed=2, steps=10, sampler="ddim", guidance_scale=3.0)
    two_pass, two_pass_joints = generate_two_pass(pipe, PROMPT, 44, seed=2, steps=10, sampler="ddim", guidance_scale=3.0)
    unguided = pipe(PROMPT, lengths=44, seed=2, steps=10, sampler="ddim", guidance_scale=1.0)
    np.testing.assert_allclose(batched.features[0], two_pass, atol=1e-4)
    np.testing.assert_allclose(batched.joints[0], two_pass_joints, atol=1e-4)
    assert np.abs(batched.features[0] - unguided.features[0]).max() > 1e-3  # guidance does something


def test_guided_x0_is_uncond_plus_scale_times_the_difference(pipe):
    """The pipeline's one-pass guidance equals two manual denoiser calls, and s = 1 is the conditional branch."""
    denoiser = pipe.denoiser
    hidden, text_mask = pipe.encode_prompt(["a person walks", "someone jumps"])  # (2, L, Dt), (2, L)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, F, generator=g)
    t = torch.tensor([30, 30])
    frame_mask = torch.arange(40)[None] < torch.tensor([40, 24])[:, None]
    with torch.no_grad():
        cond = denoiser(x, t, denoiser.prepare_condition(hidden, text_mask), frame_mask)
        uncond = denoiser(x, t, denoiser.prepare_condition(hidden, text_mask, torch.ones(2, dtype=torch.bool)),
                          frame_mask)
        guided = pipe.guided_x0(x, t, pipe.prepare_guided_condition(hidden, text_mask, 2.5), frame_mask, 2.5)
        at_one = pipe.guided_x0(x, t, pipe.prepare_guided_condition(hidden, text_mask, 1.0), frame_mask, 1.0)
    assert (cond - uncond).abs().max() > 1e-3  # the two branches really differ
    torch.testing.assert_close(guided, uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(at_one, cond, atol=0, rtol=0)


def test_sampler_is_chosen_explicitly(pipe):
    with pytest.raises(ValueError, match="ddpm sampler runs all 50 training steps.*sampler='ddim'"):
        pipe(PROMPT, lengths=40, steps=10)
    with pytest.raises(ValueError, match="sampler must be one of"):
        pipe(PROMPT, lengths=40, sampler="plms")
    deterministic = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim")
    stochastic = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim", eta=1.0)
    again = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim", eta=1.0)
    other_seed = pipe(PROMPT, lengths=40, seed=1, steps=10, sampler="ddim", eta=1.0)
    assert stochastic.sampler == "ddim" and stochastic.eta == 1.0 and deterministic.eta == 0.0
    np.testing.assert_array_equal(stochastic.features[0], again.features[0])  # eta > 0 noise is seeded
    assert np.abs(stochastic.features[0] - deterministic.features[0]).max() > 1e-3  # and really drawn
    assert np.abs(stochastic.features[0] - other_seed.features[0]).max() > 1e-3


def test_vanilla_equals_ada_with_fresh_adapters_and_differs_once_trained(pipe):
    ada = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim")
    van = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim", encoder="vanilla")
    assert van.encoder == "MiniLM-L6 (vanilla)" and van.encoder_mode == "vanilla"
    # fresh LoRA has B = 0: the adapted encoder IS the vanilla one, so the motions are identical (expected)
    np.testing.assert_array_equal(ada.features[0], van.features[0])
    lora_b = next(p for name, p in pipe.text_encoder.named_parameters() if "lora_B" in name)
    with torch.no_grad():
        lora_b.add_(0.5)  # a "trained" adapter; the encoder's cache notices the in-place update
    try:
        ada2 = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim")
        van2 = pipe(PROMPT, lengths=40, seed=0, steps=10, sampler="ddim", encoder="vanilla")
    finally:
        with torch.no_grad():
            lora_b.zero_()
    assert np.abs(ada2.features[0] - van2.features[0]).max() > 1e-4
    np.testing.assert_array_equal(van2.features[0], van.features[0])  # vanilla really has the adapters off
    assert pipe.text_encoder.adapters_active  # restored after the vanilla call


def test_postprocess_options_are_labelled_and_raw_by_default(pipe):
    from adamotion.motion.features import joints_from_features
    from adamotion.motion.postprocess import decode

    kwargs = dict(lengths=40, seed=3, steps=4, sampler="ddim")
    raw = pipe("a person walks", **kwargs)
    assert raw.postprocess == "none"
    np.testing.assert_array_equal(raw.joints[0], joints_from_features(raw.features[0], HUMANML3D).astype(np.float32))
    for option in ("smooth", "rigid", "smooth+rigid"):
        cleaned = pipe("a person walks", postprocess=option, **kwargs)
        assert cleaned.postprocess == option
        features, joints = decode(raw.features[0], HUMANML3D, option)  # the same model output, cleaned
        np.testing.assert_allclose(cleaned.features[0], features, atol=1e-6)
        np.testing.assert_allclose(cleaned.joints[0], joints, atol=1e-5)
    with pytest.raises(ValueError, match="postprocess must be one of"):
        pipe("a person walks", postprocess="blur", **kwargs)


def test_progress_is_reported_per_step(pipe):
    calls = []
    pipe(PROMPT, lengths=40, steps=7, sampler="ddim", progress=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 7) for i in range(1, 8)]


def test_auto_length(pipe, saved):
    assert pipe(PROMPT, steps=2, sampler="ddim").lengths == [120]  # no estimator: 6 s
    with_length, _ = saved
    out = with_length(["a person sits", "someone runs fast"], steps=2, sampler="ddim")
    pooled = pipe.text_encoder.encode_cached(["a person sits", "someone runs fast"]).pooled
    assert out.lengths == with_length.length_estimator.predict(pooled).tolist()
    assert all(n % HUMANML3D.unit_length == 0 and 40 <= n <= 196 for n in out.lengths)


# ============================================================================ validation
def test_input_validation_messages(pipe, caplog):
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        pipe("   ")
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        pipe(["a person walks", ""])
    with pytest.raises(ValueError, match="2,000"):
        pipe("walk " * 401)
    for bad in (39, 197, 0):
        with pytest.raises(ValueError, match=r"length must be between 40 and 196 frames \(2\.0–9\.8 s\)"):
            pipe(PROMPT, lengths=bad)
    with pytest.raises(ValueError, match="2 lengths for 1 prompts"):
        pipe(PROMPT, lengths=[40, 50])
    for bad in (float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="guidance_scale must be a finite number"):
            pipe(PROMPT, lengths=40, guidance_scale=bad)
    for bad in (0, 51):
        with pytest.raises(ValueError, match="steps must be between 1 and 50"):
            pipe(PROMPT, lengths=40, steps=bad)
    with pytest.raises(ValueError, match="encoder must be one of"):
        pipe(PROMPT, lengths=40, encoder="clip")
    with pytest.raises(ValueError, match="num_samples"):
        pipe(PROMPT, lengths=40, num_samples=0)
    with caplog.at_level(logging.WARNING, logger="adamotion.pipeline"):
        out = pipe("a person walks " * 40, lengths=40, steps=2, sampler="ddim")  # ~120 tokens: truncated, still generates
    assert len(out) == 1 and "only the first 77 are used" in caplog.text


def test_seconds_to_frames():
    assert seconds_to_frames(4.0, skeleton=HUMANML3D) == 80
    assert seconds_to_frames(9.8, skeleton=HUMANML3D) == HUMANML3D.max_frames
    with pytest.raises(ValueError):
        seconds_to_frames(float("nan"), skeleton=HUMANML3D)


# ============================================================================ persistence
def test_save_load_gives_identical_outputs(saved, encoder):
    original, path = saved
    assert {p.name for p in path.iterdir()} == {"pipeline.json", "text_encoder", "denoiser", "scheduler", "meta",
                                               "length_estimator"}
    info = json.loads((path / "pipeline.json").read_text())
    assert info["component"] == "motion_pipeline" and info["name"] == "tiny"
    assert info["display_names"] == {"ada": "MiniLM-L6 + LoRA (AdaQF)", "vanilla": "MiniLM-L6 (vanilla)"}
    for loaded in (MotionPipeline.from_pretrained(path), MotionPipeline.from_pretrained(path, text_encoder=encoder)):
        # BERT numerics depend (~1e-7) on which texts share a padded batch: encode the same batch on both sides
        original.text_encoder.clear_cache()
        b = original(["someone waves", PROMPT], seed=5, steps=10, sampler="ddim", num_samples=2)
        a = loaded(["someone waves", PROMPT], seed=5, steps=10, sampler="ddim", num_samples=2)
        assert a.lengths == b.lengths
        for fa, fb in zip(a.features, b.features):
            np.testing.assert_array_equal(fa, fb)
        assert loaded.display_name("vanilla") == "MiniLM-L6 (vanilla)"


def test_missing_parts_raise_checkpoint_errors_naming_the_path(saved, tmp_path):
    _, path = saved
    with pytest.raises(CheckpointError, match=str(tmp_path / "nope")):
        MotionPipeline.from_pretrained(tmp_path / "nope")
    for part in ("pipeline.json", "denoiser", "meta", "scheduler", "text_encoder"):
        broken = tmp_path / f"without-{part.split('.')[0]}"
        shutil.copytree(path, broken)
        target = broken / part
        target.unlink() if target.is_file() else shutil.rmtree(target)
        with pytest.raises(CheckpointError, match=str(target)):
            MotionPipeline.from_pretrained(broken)
    broken = tmp_path / "bad-weights"
    shutil.copytree(path, broken)
    weights = broken / "denoiser" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(weights)):
        MotionPipeline.from_pretrained(broken)


# ============================================================================ command line
def test_generate_command_writes_joints(saved, tmp_path, capsys):
    original, path = saved
    out_file, feats_file = tmp_path / "m.npy", tmp_path / "f.npy"
    code = main(["generate", PROMPT, "--checkpoint", str(path), "--seconds", "2.4", "--seed", "3", "--steps", "5", "--sampler", "ddim",
                 "--out", str(out_file), "--features-out", str(feats_file)])
    assert code == 0
    joints, feats = np.load(out_file), np.load(feats_file)
    assert joints.shape == (48, HUMANML3D.num_joints, 3) and feats.shape == (48, F)
    original.text_encoder.clear_cache()  # encode PROMPT alone, as the command did (BERT padding numerics)
    expected = original(PROMPT, lengths=48, seed=3, steps=5, sampler="ddim")
    np.testing.assert_array_equal(joints, expected.joints[0])
    assert "MiniLM-L6 + LoRA (AdaQF)" in capsys.readouterr().out
    code = main(["generate", PROMPT, "--checkpoint", str(path), "--length", "40", "--steps", "2", "--sampler", "ddim", "--num-samples", "2",
                 "--encoder", "vanilla", "--out", str(out_file)])
    assert code == 0 and np.load(out_file).shape == (2, 40, HUMANML3D.num_joints, 3)


def test_generate_command_errors(tmp_path, capsys):
    assert main(["generate", PROMPT, "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "m.npy")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err
    assert not (tmp_path / "m.npy").exists()


def test_bench_generate_reports_both_guidance_modes(saved, tmp_path, capsys):
    _, path = saved
    report = tmp_path / "bench.json"
    code = main(["bench", "generate", "--checkpoint", str(path), "--steps", "2", "--sampler", "ddim", "--batch", "3", "--repeats", "1",
                 "--json", str(report)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "batched guidance" in printed and "two-pass guidance" in printed and "throughput batch 3" in printed
    data = json.loads(report.read_text())["generate"]
    assert data["steps"] == 2 and data["frames"] == HUMANML3D.max_frames and data["throughput_batch"] == 3
    assert data["latency_batched_s"] > 0 and data["latency_unbatched_s"] > 0


def test_bench_generate_times_one_batched_pass_against_two_single_passes(saved, monkeypatch):
    """The two measured paths really differ: batched guidance runs the denoiser once per step on the doubled
    batch, the baseline twice per step on single rows (counted per call, so no timing is involved)."""
    from collections import Counter

    from adamotion.bench import bench_generate
    import argparse

    _, path = saved
    batch_sizes = Counter()
    original = MotionDenoiser.forward

    def counting(self, x_t, *args, **kwargs):
        batch_sizes[x_t.shape[0]] += 1
        return original(self, x_t, *args, **kwargs)

    monkeypatch.setattr(MotionDenoiser, "forward", counting)
    args = argparse.Namespace(checkpoint=str(path), device="cpu", steps=2, sampler="ddim", batch=3, repeats=1, threads=None)
    bench_generate(args)
    # warm-up + timed batched run: 2 x 2 steps on B = 2 (cond + null rows); two-pass: 2 steps x 2 passes on B = 1;
    # throughput: 2 steps on 3 prompts x 2 rows
    assert batch_sizes == Counter({2: 4, 1: 4, 6: 2})


def test_every_command_prints_its_help(capsys):
    """`--help` of the top level and of every (sub)command formats (a stray % in a help text breaks it)."""
    import argparse

    from adamotion.cli import build_parser, main

    def commands(parser, prefix=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield prefix + (name,)
                    yield from commands(child, prefix + (name,))

    found = [()] + list(commands(build_parser()))
    assert {("evaluate",), ("retrieve",), ("retrieval-bench",), ("train", "all"), ("bench", "generate")} <= set(found)
    for command in found:
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0, command
        assert "usage: adamotion" in capsys.readouterr().out
