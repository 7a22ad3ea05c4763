"""The GPU recipe, checked on the CPU: the backbone pack round trip and a --tiny run of every stage."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from adamotion.text.pack import check_coverage, pack_backbone, unpack_backbone
from adamotion.gpu_recipe import (
    MAX_OUTPUT_BYTES, MAX_OUTPUT_FILES, check_outputs, corpus_captions, demo_prompts, run_recipe,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def packed(tiny_corpus, tmp_path_factory):
    from adamotion.text.backbones import default_minilm_folder

    folder = tmp_path_factory.mktemp("pack")
    info = pack_backbone(default_minilm_folder(), corpus_captions(tiny_corpus) + demo_prompts(), folder / "pack.st")
    return info, unpack_backbone(folder / "pack.st", folder / "unpacked")


def test_pack_is_small_and_gives_the_backbones_hidden_states(packed, tiny_corpus):
    from adamotion.text.encoder import TextEncoder

    info, unpacked = packed
    assert info["bytes"] < 25 * 2**20 and info["kept_tokens"] < 2000  # vs 91 MB for the fp32 original
    captions = corpus_captions(tiny_corpus)[:5] + demo_prompts()[:3]
    original = TextEncoder.from_pretrained("minilm")
    copy = TextEncoder.from_pretrained(f"hf:{unpacked}")
    with torch.no_grad():
        a, b = original(captions), copy(captions)
    assert torch.equal(a.mask, b.mask)
    torch.testing.assert_close(b.hidden[b.mask], a.hidden[a.mask], atol=5e-3, rtol=0)  # fp16 weights
    check_coverage(unpacked, captions)
    with pytest.raises(ValueError, match="pack it again"):
        check_coverage(unpacked, ["a zebra plays the xylophone"])


def test_unpack_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pack-backbone"):
        unpack_backbone(tmp_path / "missing.st", tmp_path / "out")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.st"))
    with pytest.raises(ValueError, match="not a backbone pack"):
        unpack_backbone(tmp_path / "other.st", tmp_path / "out")


def test_output_limits_are_enforced(tmp_path):
    for i in range(MAX_OUTPUT_FILES + 1):
        (tmp_path / f"f{i}").write_text("x")
    with pytest.raises(ValueError, match="at most 8"):
        check_outputs(tmp_path)
    for i in range(MAX_OUTPUT_FILES + 1):
        (tmp_path / f"f{i}").unlink()
    with open(tmp_path / "big.tar", "wb") as handle:
        handle.truncate(MAX_OUTPUT_BYTES + 1)
    with pytest.raises(ValueError, match="big.tar"):
        check_outputs(tmp_path)


def test_tiny_recipe_writes_loadable_components_within_the_limits(packed, tiny_corpus, tmp_path):
    from adamotion.pipeline import MotionPipeline

    _, unpacked = packed
    pack_file = unpacked.parent / "pack.st"
    record = run_recipe(tmp_path / "out", work=tmp_path / "work", pack=pack_file, data=tiny_corpus, tiny=True,
                        device="cpu")
    names = sorted(record["files"])
    assert names == ["adaqf.tar", "baseline.tar", "bench.json", "extractors.tar", "logs.tar", "recipe.json"]
    assert set(record["stages"]) == {"backbone", "train", "bench"}
    on_disk = json.loads((tmp_path / "out" / "recipe.json").read_text())
    assert on_disk["files"] == record["files"] and on_disk["device"] == "cpu"
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert "generate" in bench
    with tarfile.open(tmp_path / "out" / "adaqf.tar") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
        assert not any("checkpoint/" in n for n in tar.getnames())
    pipe = MotionPipeline.from_pretrained(tmp_path / "unpacked" / "adaqf")
    assert pipe.denoiser.config.temporal_kernel == 5  # the recipe trains the new defaults
    out = pipe("a person walks forward", lengths=40, steps=2, sampler="ddim")
    assert out.joints[0].shape == (40, 22, 3)
    with tarfile.open(tmp_path / "out" / "logs.tar") as tar:
        assert any(n.endswith("adaqf/log.csv") for n in tar.getnames())
    with pytest.raises(ValueError, match="must be empty"):
        run_recipe(tmp_path / "out", pack=pack_file, data=tiny_corpus, tiny=True, device="cpu")


def test_script_prints_usage_without_arguments():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_train.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 2 and "usage: scripts/gpu_train.sh OUT_DIR" in done.stderr
