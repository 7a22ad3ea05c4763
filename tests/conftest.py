"""Shared pytest fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point $ADAMOTION_CACHE (corpora, retrieval indexes) at a session folder: tests never touch ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("adamotion_cache")
        patch.setenv("ADAMOTION_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """The tiny procedural corpus (60 motions + mirrors, seed 0, HumanML3D layout), built once per session.

    Read-only for tests: copy it first if a test needs to modify files.
    """
    from adamotion.data.synthetic import build_corpus
    from adamotion.motion.skeleton import HUMANML3D

    root = tmp_path_factory.mktemp("tiny_corpus") / "corpus"
    build_corpus(root, size="tiny", seed=0, skeleton=HUMANML3D)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_corpus, tmp_path_factory) -> Path:
    """Every component the app loads, trained once per session from ``tiny_corpus`` with configs/tiny.json.

    ``<dir>/{extractors, adaqf, baseline, retrieval_vanilla, retrieval_ada, gallery, evaluator}`` plus
    ``training_summary.json``, as ``adamotion train all --config configs/tiny.json --out <dir>`` writes them.
    Read-only for tests.
    """
    from adamotion.train.all import train_all

    out = tmp_path_factory.mktemp("tiny_checkpoint") / "tiny"
    train_all(Path(__file__).resolve().parents[1] / "configs" / "tiny.json", out, data_root=tiny_corpus)
    missing = [name for name in ("extractors", "adaqf", "baseline", "retrieval_vanilla", "retrieval_ada", "gallery",
                                 "evaluator")
               if not (out / name).is_dir()]
    assert not missing, f"train all did not write {missing} into {out}"
    return out
