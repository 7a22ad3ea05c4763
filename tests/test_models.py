"""Models and scheduler: the motion denoiser, the diffusion scheduler, the quality-feedback extractors and the
length estimator. Tiny configurations; the extractors use the real MiniLM word vectors (loaded once)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from adamotion.diffusion.scheduler import DiffusionScheduler, SchedulerConfig
from adamotion.models.denoiser import DenoiserConfig, MotionDenoiser
from adamotion.models.extractors import (
    ExtractorPair, MotionExtractor, MotionExtractorConfig, contrastive_loss, duplicate_pairs,
)
from adamotion.models.length import LengthEstimator, default_length
from adamotion.motion.skeleton import HUMANML3D
from adamotion.utils.serialization import CheckpointError

torch.set_num_threads(1)

F = HUMANML3D.feature_dim
TEXT_DIM = 24


def tiny_denoiser(seed: int = 0, **overrides) -> MotionDenoiser:
    torch.manual_seed(seed)
    config = DenoiserConfig.for_skeleton(HUMANML3D, TEXT_DIM, width=32, depth=2, heads=4, ff_mult=2, dropout=0.0,
                                         **overrides)
    return MotionDenoiser(config).eval()


def predict(model: MotionDenoiser, x, t, text, text_mask, frame_mask, drop_condition=None) -> torch.Tensor:
    """One denoiser call: prepare the text condition, then forward."""
    return model(x, t, model.prepare_condition(text, text_mask, drop_condition), frame_mask)


def denoiser_inputs(B=3, T=24, L=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    t = torch.randint(0, 50, (B,), generator=g)
    text = torch.randn(B, L, TEXT_DIM, generator=g)
    text_mask = torch.arange(L)[None] < torch.tensor([L, 3, 1])[:B, None]  # (B, L) rows of 6, 3 and 1 real tokens
    frame_mask = torch.arange(T)[None] < torch.tensor([T, 15, 7])[:B, None]  # (B, T)
    return x, t, text, text_mask, frame_mask


# ============================================================================ denoiser
def test_denoiser_output_shape_and_zero_padding():
    model = tiny_denoiser()
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    with torch.no_grad():
        out = predict(model, x, t, text, text_mask, frame_mask)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert (out[~frame_mask] == 0).all(), "padded frames must come out as exact zeros"
    assert out[frame_mask].abs().sum() > 0


def test_padded_frames_and_tokens_do_not_change_valid_outputs():
    model = tiny_denoiser()
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    with torch.no_grad():
        ref = predict(model, x, t, text, text_mask, frame_mask)
        x2 = x.clone()
        x2[~frame_mask] = torch.randn(int((~frame_mask).sum()), F) * 100
        text2 = text.clone()
        text2[~text_mask] = torch.randn(int((~text_mask).sum()), TEXT_DIM) * 100
        out = predict(model, x2, t, text2, text_mask, frame_mask)
        # control: a change in a VALID frame does reach the other valid frames (attention is live)
        x3 = x.clone()
        x3[1, 0] += 5.0
        moved = predict(model, x3, t, text, text_mask, frame_mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert (moved[1, 1:15] - ref[1, 1:15]).abs().max() > 1e-4
    torch.testing.assert_close(moved[0], ref[0])  # other rows are independent


def test_temporal_convolution_starts_as_identity_mixes_neighbours_and_ignores_padding():
    plain = tiny_denoiser()
    temporal = tiny_denoiser(temporal_kernel=5)
    missing, unexpected = temporal.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["temporal_conv.bias", "temporal_conv.weight", "temporal_norm.bias",
                               "temporal_norm.weight"] and not unexpected
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    with torch.no_grad():
        # zero-initialised: a fresh temporal model predicts exactly what the plain transformer predicts
        torch.testing.assert_close(predict(temporal, x, t, text, text_mask, frame_mask),
                                   predict(plain, x, t, text, text_mask, frame_mask))
        temporal.temporal_conv.weight.normal_(0.0, 0.5)
        ref = predict(temporal, x, t, text, text_mask, frame_mask)
        x2 = x.clone()
        x2[~frame_mask] = torch.randn(int((~frame_mask).sum()), F) * 100
        torch.testing.assert_close(predict(temporal, x2, t, text, text_mask, frame_mask), ref, atol=1e-5, rtol=1e-5)
        assert (ref[~frame_mask] == 0).all()
        # with attention switched off, only the convolution carries one frame's change to its neighbours
        for block in temporal.blocks:
            block.self_attn.out.weight.zero_()
            block.self_attn.out.bias.zero_()
        base = predict(temporal, x, t, text, text_mask, frame_mask)
        x3 = x.clone()
        x3[0, 10] += 5.0
        moved = (predict(temporal, x3, t, text, text_mask, frame_mask) - base)[0].abs().amax(-1)  # (T,)
    assert (moved[8:13] > 1e-4).all() and (moved[:8] == 0).all() and (moved[13:] == 0).all()


def test_temporal_kernel_is_saved_and_old_configs_load_without_it(tmp_path):
    path = tiny_denoiser(temporal_kernel=3).save_pretrained(tmp_path / "temporal")
    assert MotionDenoiser.from_pretrained(path).config.temporal_kernel == 3
    plain = tiny_denoiser().save_pretrained(tmp_path / "plain")
    config = json.loads((plain / "config.json").read_text())
    del config["config"]["temporal_kernel"]  # written before the field existed
    (plain / "config.json").write_text(json.dumps(config))
    loaded = MotionDenoiser.from_pretrained(plain)
    assert loaded.config.temporal_kernel == 0 and not hasattr(loaded, "temporal_conv")
    with pytest.raises(ValueError, match="odd"):
        tiny_denoiser(temporal_kernel=4)


def test_dropped_condition_sees_only_the_learned_null_token():
    model = tiny_denoiser()
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    other_text = torch.randn_like(text)
    drop = torch.tensor([True, False, True])
    with torch.no_grad():
        a = predict(model, x, t, text, text_mask, frame_mask, drop_condition=drop)
        b = predict(model, x, t, other_text, torch.ones_like(text_mask), frame_mask, drop_condition=drop)
        cond = predict(model, x, t, text, text_mask, frame_mask)
    torch.testing.assert_close(a[drop], b[drop])  # dropped rows ignore the text entirely
    assert (a[1] - b[1]).abs().max() > 1e-4  # kept rows follow their text
    assert (a[0] - cond[0]).abs().max() > 1e-4  # dropping changes the prediction
    # the null token is what the dropped rows see: changing it changes them (and only them)
    with torch.no_grad():
        model.null_token.add_(1.0)
        c = predict(model, x, t, text, text_mask, frame_mask, drop_condition=drop)
    assert (c[0] - a[0]).abs().max() > 1e-4
    torch.testing.assert_close(c[1], a[1])


def test_null_token_trains_and_dropout_rate():
    from adamotion.train.generator import draw_condition_dropout

    model = tiny_denoiser().train()
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    out = predict(model, x, t, text, text_mask, frame_mask, drop_condition=torch.tensor([True, False, False]))
    out.pow(2).mean().backward()
    assert model.null_token.grad is not None and model.null_token.grad.abs().sum() > 0
    draws = draw_condition_dropout(model.config.cond_dropout, 20000, generator=torch.Generator().manual_seed(0))
    assert draws.dtype == torch.bool and abs(draws.float().mean().item() - model.config.cond_dropout) < 0.01


def test_one_prepared_condition_serves_every_step():
    """The pipeline prepares the text once and reuses it; that equals re-preparing it for every call."""
    model = tiny_denoiser()
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    with torch.no_grad():
        condition = model.prepare_condition(text, text_mask)
        first = model(x, t, condition, frame_mask)
        again = model(x + 0.5, t, condition, frame_mask)
    torch.testing.assert_close(first, predict(model, x, t, text, text_mask, frame_mask), atol=0, rtol=0)
    torch.testing.assert_close(again, predict(model, x + 0.5, t, text, text_mask, frame_mask), atol=0, rtol=0)
    assert (first - again).abs().max() > 1e-4
    with pytest.raises(ValueError, match="condition has batch 3"):
        model(x[:2], t[:2], condition, frame_mask[:2])


def test_public_api_is_prepare_condition_and_forward():
    """Guidance and benchmark paths live in the pipeline and the bench, not on the model."""
    public = {name for name in vars(MotionDenoiser) if not name.startswith("_") and callable(getattr(MotionDenoiser, name))}
    assert public - {"get_config", "from_config", "from_pretrained"} == {"prepare_condition", "forward"}


def test_retired_token_limit_field_is_ignored_on_load(tmp_path):
    path = tiny_denoiser().save_pretrained(tmp_path / "denoiser")
    config = json.loads((path / "config.json").read_text())
    config["config"]["text_tokens_max"] = 77  # written by checkpoints made before the encoder owned the limit
    (path / "config.json").write_text(json.dumps(config))
    assert MotionDenoiser.from_pretrained(path).config == tiny_denoiser().config
    config["config"]["text_tokens_maxx"] = 77
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="text_tokens_maxx"):
        MotionDenoiser.from_pretrained(path)


def test_denoiser_input_errors():
    model = tiny_denoiser()
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    with pytest.raises(ValueError, match="features per frame"):
        predict(model, x[..., :10], t, text, text_mask, frame_mask)
    with pytest.raises(ValueError, match="text_dim"):
        predict(model, x, t, text[..., :5], text_mask, frame_mask)
    with pytest.raises(ValueError, match="max_frames"):
        long = torch.zeros(1, HUMANML3D.max_frames + 1, F)
        predict(model, long, t[:1], text[:1], text_mask[:1], torch.ones(1, long.shape[1], dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one real token"):
        predict(model, x, t, text, torch.zeros_like(text_mask), frame_mask)
    with pytest.raises(ValueError, match="divisible"):
        DenoiserConfig(feature_dim=F, text_dim=8, max_frames=196, width=30, heads=4)


def test_denoiser_save_load_identical(tmp_path):
    model = tiny_denoiser(seed=3)
    x, t, text, text_mask, frame_mask = denoiser_inputs()
    path = model.save_pretrained(tmp_path / "denoiser")
    config = json.loads((path / "config.json").read_text())
    assert config["component"] == "motion_denoiser" and config["config"]["width"] == 32
    loaded = MotionDenoiser.from_pretrained(path).eval()
    with torch.no_grad():
        drop = torch.tensor([False, True, False])
        torch.testing.assert_close(predict(loaded, x, t, text, text_mask, frame_mask, drop),
                                   predict(model, x, t, text, text_mask, frame_mask, drop), atol=0, rtol=0)


def test_denoiser_bad_checkpoints_name_the_path(tmp_path):
    path = tiny_denoiser().save_pretrained(tmp_path / "denoiser")
    with pytest.raises(CheckpointError, match="not found"):
        MotionDenoiser.from_pretrained(tmp_path / "nowhere")
    # truncated weights
    weights = path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(weights)):
        MotionDenoiser.from_pretrained(path)
    # weights missing
    weights.unlink()
    with pytest.raises(CheckpointError, match=str(weights)):
        MotionDenoiser.from_pretrained(path)
    # config that does not match the weights
    path = tiny_denoiser().save_pretrained(tmp_path / "denoiser2")
    config = json.loads((path / "config.json").read_text())
    config["config"]["width"] = 64
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        MotionDenoiser.from_pretrained(path)
    config["config"]["bogus"] = 1
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="bogus"):
        MotionDenoiser.from_pretrained(path)
    # another component's folder
    DiffusionScheduler().save_pretrained(tmp_path / "scheduler")
    with pytest.raises(CheckpointError, match="expected 'motion_denoiser'"):
        MotionDenoiser.from_pretrained(tmp_path / "scheduler")


# ============================================================================ scheduler
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_is_monotone(schedule):
    sched = DiffusionScheduler(beta_schedule=schedule)
    ab = sched.alphas_cumprod
    assert ab.shape == (50,)
    assert (ab[1:] < ab[:-1]).all(), "alpha-bar must strictly decrease"
    assert 0 < ab[-1] < 0.01 and 0.99 < ab[0] < 1
    assert ((sched.betas > 0) & (sched.betas <= sched.config.max_beta)).all()


def test_add_noise_levels():
    sched = DiffusionScheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 30, F, generator=g)
    noise = torch.randn(4, 30, F, generator=g)
    start = sched.add_noise(x0, noise, torch.zeros(4, dtype=torch.long))
    assert (start - x0).std() < 0.06  # t = 0: x0 plus a little noise
    end = sched.add_noise(x0, noise, torch.full((4,), 49))
    assert torch.corrcoef(torch.stack([end.flatten(), noise.flatten()]))[0, 1] > 0.999  # t = T-1: ~ pure noise
    mixed = sched.add_noise(x0, noise, torch.tensor([0, 10, 30, 49]))  # per-row timesteps
    ab = sched.alphas_cumprod[30].item()
    torch.testing.assert_close(mixed[2], math.sqrt(ab) * x0[2] + math.sqrt(1 - ab) * noise[2])
    with pytest.raises(ValueError, match="timesteps must be in"):
        sched.add_noise(x0, noise, torch.full((4,), 50))


def test_sample_timesteps_range_and_determinism():
    sched = DiffusionScheduler()
    a = sched.sample_timesteps(1000, generator=torch.Generator().manual_seed(1))
    b = sched.sample_timesteps(1000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.long
    assert a.min() == 0 and a.max() == 49


def test_set_timesteps_ddpm_and_ddim():
    sched = DiffusionScheduler()
    assert sched.sampler == "ddpm" and sched.timesteps.tolist() == list(range(49, -1, -1))
    sched.set_timesteps(10, sampler="ddim")
    steps = sched.timesteps.tolist()
    assert sched.sampler == "ddim" and len(steps) == 10 and steps[0] == 49 and steps[-1] == 0
    assert all(a > b for a, b in zip(steps, steps[1:]))
    sched.set_timesteps(50, sampler="ddim")  # all steps, still DDIM: the count never picks the algorithm
    assert sched.sampler == "ddim" and sched.timesteps.tolist() == list(range(49, -1, -1))
    sched.set_timesteps(sampler="ddpm")
    assert sched.sampler == "ddpm" and len(sched.timesteps) == 50
    for bad in (0, 51, 2.5):
        with pytest.raises(ValueError, match="num_inference_steps"):
            sched.set_timesteps(bad, sampler="ddim")
    with pytest.raises(ValueError, match="ddpm sampler runs all 50.*sampler='ddim'"):
        sched.set_timesteps(10, sampler="ddpm")
    with pytest.raises(ValueError, match="sampler must be one of"):
        sched.set_timesteps(10, sampler="euler")
    with pytest.raises(ValueError, match="eta"):
        sched.set_timesteps(10, sampler="ddim", eta=1.5)
    with pytest.raises(ValueError, match="eta is a DDIM setting"):
        sched.set_timesteps(sampler="ddpm", eta=0.5)


def _sample_with_perfect_predictor(sched, x0, x_T, generator=None, record=None):
    x = x_T
    for t in sched.timesteps.tolist():
        x = sched.step(x0, t, x, generator=generator)
        if record is not None:
            record.append((sched.previous_timestep(t), x))
    return x


@pytest.mark.parametrize("sampler, steps, eta", [("ddpm", 50, 0.0), ("ddim", 10, 0.0), ("ddim", 10, 1.0),
                                                 ("ddim", 1, 0.0)])
def test_perfect_x0_predictor_returns_x0_exactly(sampler, steps, eta):
    sched = DiffusionScheduler()
    sched.set_timesteps(steps, sampler=sampler, eta=eta)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 16, F, generator=g)
    out = _sample_with_perfect_predictor(sched, x0, torch.randn(2, 16, F, generator=g), generator=g)
    assert torch.equal(out, x0)


def test_ddim_with_perfect_predictor_stays_on_the_forward_marginal():
    """DDIM (eta=0) keeps the implied noise fixed: every intermediate x_prev == add_noise(x0, eps, prev)."""
    sched = DiffusionScheduler()
    sched.set_timesteps(10, sampler="ddim")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 16, F, generator=g)
    eps = torch.randn(2, 16, F, generator=g)
    x_T = sched.add_noise(x0, eps, int(sched.timesteps[0]))
    record = []
    _sample_with_perfect_predictor(sched, x0, x_T, record=record)
    for prev, x in record[:-1]:
        torch.testing.assert_close(x, sched.add_noise(x0, eps, prev), atol=1e-5, rtol=1e-5)


def test_ddpm_posterior_matches_forward_marginal_statistically():
    """Ancestral steps from x_t ~ q(x_t|x0) with the true x0 give x_{t-1} ~ q(x_{t-1}|x0)."""
    sched = DiffusionScheduler()
    g = torch.Generator().manual_seed(0)
    x0 = torch.zeros(1, 200, 100)
    for t in (40, 20, 5):
        x_t = sched.add_noise(x0, torch.randn(x0.shape, generator=g), t)
        x_prev = sched.step(x0, t, x_t, generator=g)
        expected = math.sqrt(1 - sched.alphas_cumprod[t - 1].item())
        assert abs(x_prev.std().item() - expected) < 0.02 * expected + 1e-3


def test_ddpm_step_noise_is_seeded():
    sched = DiffusionScheduler()
    x0, x_t = torch.zeros(2, 8, 4), torch.ones(2, 8, 4)
    a = sched.step(x0, 30, x_t, generator=torch.Generator().manual_seed(5))
    b = sched.step(x0, 30, x_t, generator=torch.Generator().manual_seed(5))
    c = sched.step(x0, 30, x_t, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    per_row = sched.step(x0, 30, x_t, generator=[torch.Generator().manual_seed(5), torch.Generator().manual_seed(9)])
    assert per_row.shape == x_t.shape


def test_ddim_with_eta_one_over_all_steps_is_the_ddpm_posterior():
    """Known answer (Song et al. 2021): DDIM with eta = 1 over adjacent steps is ancestral DDPM; with the same
    generator both draw the same noise, so the steps agree to float rounding."""
    ddpm, ddim = DiffusionScheduler(), DiffusionScheduler()
    ddim.set_timesteps(50, sampler="ddim", eta=1.0)
    g = torch.Generator().manual_seed(0)
    x0, x_t = torch.randn(2, 8, 4, generator=g, dtype=torch.float64), torch.randn(2, 8, 4, generator=g, dtype=torch.float64)
    for t in (49, 30, 1):
        a = ddpm.step(x0, t, x_t, generator=torch.Generator().manual_seed(t))
        b = ddim.step(x0, t, x_t, generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)
    eta0 = DiffusionScheduler()
    eta0.set_timesteps(50, sampler="ddim")
    assert (eta0.step(x0, 30, x_t) - ddpm.step(x0, 30, x_t, generator=torch.Generator().manual_seed(30))).abs().max() > 0.1


def test_step_noise_per_row_ignores_padding():
    """With one generator per row and row lengths, a row's noise depends only on its own length."""
    sched = DiffusionScheduler()
    x0, x_t = torch.zeros(2, 10, 3), torch.zeros(2, 10, 3)
    both = sched.step(x0, 30, x_t, generator=[torch.Generator().manual_seed(s) for s in (1, 2)], lengths=[10, 4])
    alone = sched.step(x0[1:, :4], 30, x_t[1:, :4], generator=[torch.Generator().manual_seed(2)], lengths=[4])
    torch.testing.assert_close(both[1, :4], alone[0])
    assert (both[1, 4:] == 0).all() and (both[0] != 0).all()
    with pytest.raises(ValueError, match="one generator per batch row"):
        sched.step(x0, 30, x_t, generator=torch.Generator(), lengths=[10, 4])


def test_scheduler_save_load(tmp_path):
    sched = DiffusionScheduler(SchedulerConfig(num_train_timesteps=20, beta_schedule="linear"))
    path = sched.save_pretrained(tmp_path / "scheduler")
    assert sorted(p.name for p in path.iterdir()) == ["config.json"]
    loaded = DiffusionScheduler.from_pretrained(path)
    assert loaded.get_config() == sched.get_config()
    assert torch.equal(loaded.alphas_cumprod, sched.alphas_cumprod)
    config = json.loads((path / "config.json").read_text())
    config["config"]["beta_schedule"] = "quadratic"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="config.json.*quadratic"):
        DiffusionScheduler.from_pretrained(path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=str(path / "config.json")):
        DiffusionScheduler.from_pretrained(path)


# ============================================================================ extractors
@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mean = rng.normal(size=F).astype(np.float32)
    std = rng.uniform(0.5, 2.0, size=F).astype(np.float32)
    return ExtractorPair.build(F, mean, std, embed_dim=32, hidden=32).eval()


def _motion_batch(seed=0, B=3, T=20):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(B, T, F, generator=g)
    mask = torch.arange(T)[None] < torch.tensor([T, 12, 5])[:B, None]
    return feats, mask


def test_text_extractor_uses_frozen_minilm_word_vectors(pair):
    text = pair.text
    assert text.word_vectors.shape == (30522, 384)
    assert "word_vectors" not in text.state_dict()  # not stored in the checkpoint
    assert all(p is not text.word_vectors for p in text.parameters())
    emb = pair.encode_text(["a person walks forward", "someone jumps", "a person walks forward"])
    assert emb.shape == (3, 32)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(emb[0], emb[2])
    assert (emb[0] - emb[1]).abs().max() > 1e-4


def test_motion_extractor_gradient_reaches_input_with_frozen_params(pair):
    frozen = ExtractorPair(pair.text, pair.motion).freeze()
    feats, mask = _motion_batch()
    feats.requires_grad_(True)
    target = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    emb = frozen.encode_motion(feats, mask)
    (1 - (emb * target).sum(-1)).mean().backward()
    assert feats.grad is not None
    assert feats.grad[mask].abs().sum() > 0, "gradient must reach the valid frames of the motion"
    assert (feats.grad[~mask] == 0).all(), "padded frames are outside the packed sequence"
    assert all(p.grad is None for p in frozen.parameters()), "frozen extractor parameters must get no gradient"


def test_motion_extractor_normalises_and_ignores_padding(pair):
    feats, mask = _motion_batch()
    with torch.no_grad():
        ref = pair.encode_motion(feats, mask)
        padded = feats.clone()
        padded[~mask] = 1e3
        torch.testing.assert_close(pair.encode_motion(padded, mask), ref)
        # its own statistics are applied: shifting the input by the mean and scaling by std is undone
        manual = MotionExtractor(pair.motion.config)
        manual.load_state_dict(pair.motion.state_dict())
        manual.set_normalization(np.zeros(F), np.ones(F))
        normalised = (feats - pair.motion.mean) / pair.motion.std
        torch.testing.assert_close(manual(normalised, mask), ref, atol=1e-5, rtol=1e-5)


def test_contrastive_loss_prefers_matching_pairs():
    g = torch.Generator().manual_seed(0)
    text = torch.randn(8, 16, generator=g)
    motion = text + 0.1 * torch.randn(8, 16, generator=g)
    matched = contrastive_loss(text, motion)
    shuffled = contrastive_loss(text, motion[torch.roll(torch.arange(8), 1)])
    assert matched["loss"] < shuffled["loss"]
    assert matched["infonce"] < shuffled["infonce"] and matched["cosine"] < shuffled["cosine"]
    assert set(matched) == {"loss", "infonce", "cosine"}
    torch.testing.assert_close(matched["loss"], matched["infonce"] + matched["cosine"])
    # symmetric InfoNCE from the definition
    t = torch.nn.functional.normalize(text, dim=-1)
    m = torch.nn.functional.normalize(motion, dim=-1)
    logits = t @ m.T / 0.07
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(matched["infonce"], 0.5 * (ce(logits, torch.arange(8)) + ce(logits.T, torch.arange(8))))


def test_contrastive_loss_duplicate_captions_are_not_negatives():
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=-1)
    text = emb[[0, 0, 1, 2]]  # rows 0 and 1 carry the same caption
    motion = emb[[0, 0, 1, 2]]  # ... and their motions are alike
    captions = ["A person walks.", "a person   walks", "someone jumps", "a man sits"]
    plain = contrastive_loss(text, motion)
    aware = contrastive_loss(text, motion, captions=captions)
    assert plain["infonce"] > 0.3  # the duplicate pair is a false negative: ~log 2 on two rows
    assert aware["infonce"] < 0.05 and torch.isfinite(aware["loss"])
    same = duplicate_pairs(captions)
    assert same.tolist()[0] == [False, True, False, False] and not same.diagonal().any()
    assert duplicate_pairs(ids=["m1", "m2", "m1", "m3"])[0, 2]


def test_extractor_pair_save_load(pair, tmp_path):
    path = pair.save_pretrained(tmp_path / "extractors")
    assert {p.name for p in path.iterdir()} == {"config.json", "text", "motion"}
    assert (path / "text" / "model.safetensors").stat().st_size < 2_000_000  # no 47 MB word-vector table
    loaded = ExtractorPair.from_pretrained(path).eval()
    feats, mask = _motion_batch(1)
    captions = ["a person waves", "someone runs in a circle"]
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_text(captions), pair.encode_text(captions), atol=0, rtol=0)
        torch.testing.assert_close(loaded.encode_motion(feats, mask), pair.encode_motion(feats, mask), atol=0, rtol=0)
    torch.testing.assert_close(loaded.motion.std, pair.motion.std)
    (path / "motion" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=str(path / "motion" / "model.safetensors")):
        ExtractorPair.from_pretrained(path)
    import shutil

    shutil.rmtree(path / "text")
    with pytest.raises(CheckpointError, match=str(path / "text")):
        ExtractorPair.from_pretrained(path)
    with pytest.raises(CheckpointError, match="not found"):
        ExtractorPair.from_pretrained(tmp_path / "missing")


def test_motion_extractor_config_mismatch_is_a_checkpoint_error(tmp_path):
    ext = MotionExtractor(MotionExtractorConfig(feature_dim=F, hidden=8, embed_dim=8))
    path = ext.save_pretrained(tmp_path / "motion")
    config = json.loads((path / "config.json").read_text())
    config["config"]["hidden"] = 16
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        MotionExtractor.from_pretrained(path)


# ============================================================================ length estimator
def test_length_estimator_fits_a_linear_relation(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 12))
    w = rng.normal(size=12) * 8
    y = X @ w + 110
    est = LengthEstimator(12, alpha=1e-3, skeleton=HUMANML3D).fit(X, y)
    assert est.train_r2 > 0.999
    np.testing.assert_allclose(est.predict_raw(X[:5]), y[:5], atol=0.1)
    pred = est.predict(np.concatenate([X[:50], 100 * X[:1], -100 * X[:1]]))
    assert pred.dtype == np.int64
    assert (pred % HUMANML3D.unit_length == 0).all()
    assert pred.min() >= HUMANML3D.min_frames and pred.max() <= HUMANML3D.max_frames
    assert {int(pred[-2]), int(pred[-1])} == {HUMANML3D.min_frames, HUMANML3D.max_frames}  # clipped extremes
    np.testing.assert_allclose(pred[:50], np.clip(np.round(y[:50] / 4) * 4, 40, 196), atol=4)
    # torch input and save/load
    loaded = LengthEstimator.from_pretrained(est.save_pretrained(tmp_path / "length"))
    np.testing.assert_array_equal(loaded.predict(torch.as_tensor(X[:20], dtype=torch.float32)),
                                  est.predict(X[:20].astype(np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 12\)"):
        est.predict(np.zeros((2, 5)))


def test_default_length_is_six_seconds():
    assert default_length(HUMANML3D) == 120
    unfitted = LengthEstimator(4, skeleton=HUMANML3D)
    assert (unfitted.predict(np.zeros((2, 4))) == 120).all()
