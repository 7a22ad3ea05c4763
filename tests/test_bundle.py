"""The checkpoint bundle: ``adamotion.load`` / ``available_checkpoints`` own the folder layout."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import adamotion
from adamotion.bundle import BUNDLE_PARTS, CHECKPOINTS_ROOT, CheckpointBundle, main
from adamotion.utils.serialization import CheckpointError

SHIPPED = ["adaqf", "baseline", "extractors", "retrieval_vanilla", "retrieval_ada", "gallery", "evaluator",
           "coverage"]


def test_the_shipped_bundle_loads_by_name_and_lists_its_parts():
    bundle = adamotion.load("default")
    assert bundle.root == CHECKPOINTS_ROOT / "default" and bundle.name == "default"
    assert bundle.parts() == SHIPPED
    evaluator = bundle.evaluator()  # the independent judge, loaded with its weight fingerprint
    assert evaluator.fingerprint and evaluator.fingerprint[:12] in bundle.path("evaluator").joinpath(
        "train_summary.json").read_text()
    assert "default" in adamotion.available_checkpoints()
    assert adamotion.load(str(CHECKPOINTS_ROOT / "default")).root == bundle.root  # a path works too
    assert bundle.path("gallery") == CHECKPOINTS_ROOT / "default" / "gallery"


def test_a_bundle_pipeline_is_the_folder_pipeline():
    from adamotion.pipeline import MotionPipeline

    bundle = adamotion.load("default")
    from_bundle = bundle.pipeline("baseline")
    direct = MotionPipeline.from_pretrained(CHECKPOINTS_ROOT / "default" / "baseline")
    a = from_bundle("a person waves", lengths=40, seed=1, steps=2, sampler="ddim")
    b = direct("a person waves", lengths=40, seed=1, steps=2, sampler="ddim")
    np.testing.assert_array_equal(a.features[0], b.features[0])


def test_errors_name_what_is_available(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope: checkpoint bundle not found; available under .*'default'"):
        adamotion.load("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty: not a checkpoint bundle \(none of \['adaqf'"):
        CheckpointBundle(tmp_path / "empty")
    partial = tmp_path / "partial"
    shutil.copytree(CHECKPOINTS_ROOT / "default" / "adaqf", partial / "adaqf")
    with pytest.raises(CheckpointError, match=r"partial/baseline: this bundle has no 'baseline'.*it has \['adaqf'\]"):
        CheckpointBundle(partial).pipeline("baseline")
    with pytest.raises(CheckpointError, match=r"no 'evaluator'.*\['adaqf'\]"):
        CheckpointBundle(partial).evaluator()
    with pytest.raises(ValueError, match="unknown bundle part 'denoiser'; the parts are"):
        adamotion.load("default").path("denoiser")


def test_parts_command_prints_the_folders_a_run_holds(tmp_path, capsys):
    for name in ("baseline", "gallery", "evaluator", "checkpoint"):  # "checkpoint" is resumable state, not a part
        (tmp_path / name).mkdir()
    assert main(["parts", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == ["baseline", "gallery", "evaluator"]
    assert main(["parts", str(tmp_path / "missing")]) == 2
    assert "folder not found" in capsys.readouterr().err
    assert main(["list"]) == 0 and "default" in capsys.readouterr().out.split()


def test_train_all_writes_the_bundle_layout(tiny_checkpoint):
    """The writer (``adamotion train all``) and the reader (the bundle) agree on the folder names."""
    bundle = CheckpointBundle(tiny_checkpoint)
    assert bundle.parts() == SHIPPED
    assert set(SHIPPED) == set(BUNDLE_PARTS)
