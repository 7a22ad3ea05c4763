"""The official T2M evaluator loader, tested on a state dict of the release's layout made here."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from adamotion.eval.t2m_evaluator import T2MEvaluator, T2MMotionEncoder, T2MMovementEncoder, T2MTextEncoder
from adamotion.motion.skeleton import HUMANML3D
from adamotion.utils.serialization import CheckpointError


def write_release(folder, seed=0):
    """A folder in the official layout with random weights and a 6-word GloVe vocabulary."""
    torch.manual_seed(seed)
    words = ["unk", "sos", "eos", "a", "person", "walks"]
    (folder / "glove").mkdir(parents=True)
    np.save(folder / "glove" / "our_vab_data.npy", np.random.default_rng(seed).normal(size=(len(words), 300)).astype(np.float32))
    with open(folder / "glove" / "our_vab_words.pkl", "wb") as f:
        pickle.dump(words, f)
    with open(folder / "glove" / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(words)}, f)
    (folder / "meta").mkdir()
    np.save(folder / "meta" / "mean.npy", np.zeros(HUMANML3D.feature_dim, np.float32))
    np.save(folder / "meta" / "std.npy", np.ones(HUMANML3D.feature_dim, np.float32))
    (folder / "text_mot_match" / "model").mkdir(parents=True)
    state = {"text_encoder": T2MTextEncoder().state_dict(),
             "movement_encoder": T2MMovementEncoder(HUMANML3D.feature_dim - 4).state_dict(),
             "motion_encoder": T2MMotionEncoder().state_dict(), "epoch": 1}
    torch.save(state, folder / "text_mot_match" / "model" / "finest.tar")
    return state


def test_loads_release_layout_and_embeds(tmp_path):
    state = write_release(tmp_path)
    # The release's key names, checked literally so a renamed attribute would fail here.
    assert {"pos_emb.weight", "input_emb.weight", "gru.weight_ih_l0_reverse", "output_net.3.weight", "hidden"} <= set(state["text_encoder"])
    assert {"main.0.weight", "main.3.weight", "out_net.weight"} <= set(state["movement_encoder"])
    evaluator = T2MEvaluator.from_folder(tmp_path, skeleton=HUMANML3D)
    assert torch.equal(evaluator.text_encoder.hidden, state["text_encoder"]["hidden"])
    text = evaluator.encode_text(["a person walks", "a person walks forward quickly"])
    assert text.shape == (2, 512) and torch.isfinite(text).all()
    assert not torch.allclose(text[0], text[1])
    features = torch.randn(3, 80, HUMANML3D.feature_dim)
    mask = torch.ones(3, 80, dtype=torch.bool)
    mask[1, 40:] = False
    motion = evaluator.encode_motion(features, mask)
    assert motion.shape == (3, 512)
    # The masked-out tail of clip 1 must not change its embedding.
    changed = features.clone()
    changed[1, 48:] = 100.0
    assert torch.allclose(evaluator.encode_motion(changed, mask)[1], motion[1], atol=1e-5)


def test_missing_files_and_wrong_layout_fail_loudly(tmp_path):
    with pytest.raises(CheckpointError, match="finest.tar"):
        T2MEvaluator.from_folder(tmp_path, skeleton=HUMANML3D)
    state = write_release(tmp_path / "r")
    state["text_encoder"].pop("pos_emb.weight")
    torch.save(state, tmp_path / "r" / "text_mot_match" / "model" / "finest.tar")
    with pytest.raises(CheckpointError, match="text_encoder does not match"):
        T2MEvaluator.from_folder(tmp_path / "r", skeleton=HUMANML3D)
