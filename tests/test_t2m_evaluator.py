"""T2M-architecture evaluators: the official release loader (parity with the official input conventions, checked
against a reference written here from the documented conventions) and the project's independent evaluator."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from adamotion.eval.t2m_evaluator import (
    T2MEvaluator, T2MMotionEncoder, T2MMovementEncoder, T2MTextEncoder, TextMotionEvaluator,
    TextMotionEvaluatorConfig, caption_tokens,
)
from adamotion.motion.skeleton import HUMANML3D
from adamotion.utils.serialization import CheckpointError, weights_fingerprint

torch.set_num_threads(1)
F = HUMANML3D.feature_dim
VOCAB = ["unk", "sos", "eos", "a", "person", "walk", "forward", "then", "turn", "left", "man", "jump", "up",
         "and", "down", "the", "arm", "raise", "his", "slowly"]


def write_release(folder, seed=0):
    """A folder in the official layout with random weights, a small vocabulary and non-trivial statistics."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    (folder / "glove").mkdir(parents=True)
    np.save(folder / "glove" / "our_vab_data.npy", rng.normal(size=(len(VOCAB), 300)).astype(np.float32))
    with open(folder / "glove" / "our_vab_words.pkl", "wb") as f:
        pickle.dump(VOCAB, f)
    with open(folder / "glove" / "our_vab_idx.pkl", "wb") as f:
        pickle.dump({w: i for i, w in enumerate(VOCAB)}, f)
    (folder / "meta").mkdir()
    np.save(folder / "meta" / "mean.npy", rng.normal(size=F).astype(np.float32))
    np.save(folder / "meta" / "std.npy", rng.uniform(0.5, 2.0, size=F).astype(np.float32))
    (folder / "text_mot_match" / "model").mkdir(parents=True)
    state = {"text_encoder": T2MTextEncoder().state_dict(),
             "movement_encoder": T2MMovementEncoder(F - 4).state_dict(),
             "motion_encoder": T2MMotionEncoder().state_dict(), "epoch": 1}
    torch.save(state, folder / "text_mot_match" / "model" / "finest.tar")
    return state


# ----------------------------------------------------------------------------- reference of the official code
# Written from the documented conventions of the text-to-motion release (word vectorizer, dataset, evaluator
# wrapper), independently of adamotion's implementation.
_POS = ["VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
        "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER"]
_VIP = [("Loc_VIP", {"left", "right", "forward", "up", "down", "back", "backward"}),
        ("Body_VIP", {"arm", "hand", "leg", "foot", "feet"}),
        ("Act_VIP", {"walk", "run", "jump", "turn", "raise", "sit", "stand"}),
        ("Desc_VIP", {"slowly", "quickly", "fast", "slow"})]


def _reference_token(token, word_vectors):
    word, pos = token.split("/")
    onehot = np.zeros(len(_POS))
    if word not in word_vectors:
        onehot[_POS.index("OTHER")] = 1
        return word_vectors["unk"], onehot
    for category, words in _VIP:
        if word in words:
            pos = category
            break
    onehot[_POS.index(pos) if pos in _POS else _POS.index("OTHER")] = 1
    return word_vectors[word], onehot


def _reference_text(token_lists, folder, text_encoder):
    vectors = np.load(folder / "glove" / "our_vab_data.npy")
    word_vectors = {w: vectors[i] for i, w in enumerate(VOCAB)}
    words, poses, lengths = [], [], []
    for tokens in token_lists:
        if len(tokens) < 20:
            tokens = ["sos/OTHER"] + tokens + ["eos/OTHER"]
            length = len(tokens)
            tokens = tokens + ["unk/OTHER"] * (22 - length)
        else:
            tokens = ["sos/OTHER"] + tokens[:20] + ["eos/OTHER"]
            length = len(tokens)
        pairs = [_reference_token(t, word_vectors) for t in tokens]
        words.append(np.stack([p[0] for p in pairs]))
        poses.append(np.stack([p[1] for p in pairs]))
        lengths.append(length)
    order = np.argsort(lengths)[::-1].copy()  # the release sorts a batch by caption length, longest first
    word_embs = torch.tensor(np.stack(words)[order], dtype=torch.float32)
    pos = torch.tensor(np.stack(poses)[order], dtype=torch.float32)
    sorted_lengths = torch.tensor(np.asarray(lengths)[order])
    x = text_encoder.input_emb(word_embs + text_encoder.pos_emb(pos))
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, sorted_lengths, batch_first=True)
    _, last = text_encoder.gru(packed, text_encoder.hidden.repeat(1, len(lengths), 1))
    out = text_encoder.output_net(torch.cat([last[0], last[1]], dim=-1))
    restored = torch.empty_like(out)
    restored[torch.as_tensor(order)] = out
    return restored


def _reference_motion(raw_motions, folder, movement_encoder, motion_encoder):
    mean, std = np.load(folder / "meta" / "mean.npy"), np.load(folder / "meta" / "std.npy")
    padded = np.zeros((len(raw_motions), 196, F), np.float32)  # normalise, THEN pad with zeros to 196 frames
    for i, motion in enumerate(raw_motions):
        padded[i, : len(motion)] = (motion - mean) / std
    lengths = np.array([len(m) for m in raw_motions])
    order = np.argsort(lengths)[::-1].copy()
    movements = movement_encoder(torch.tensor(padded[order])[..., :-4])
    codes = torch.tensor(lengths[order] // 4)
    packed = torch.nn.utils.rnn.pack_padded_sequence(motion_encoder.input_emb(movements), codes, batch_first=True)
    _, last = motion_encoder.gru(packed, motion_encoder.hidden.repeat(1, len(lengths), 1))
    out = motion_encoder.output_net(torch.cat([last[0], last[1]], dim=-1))
    restored = torch.empty_like(out)
    restored[torch.as_tensor(order)] = out
    return restored


# ----------------------------------------------------------------------------- tests
CAPTIONS = {
    # caption: its HumanML3D word/POS tokens, written by hand
    "a person walks forward slowly": ["a/DET", "person/NOUN", "walk/VERB", "forward/ADV", "slowly/ADV"],
    "the man jumps up and down": ["the/DET", "man/NOUN", "jump/VERB", "up/ADV", "and/CCONJ", "down/ADV"],
    # "quickly" is a VIP word without a vector: unk/OTHER, not Desc_VIP; "twirls" is out of the vocabulary too
    "a man quickly twirls then turns left": ["a/DET", "man/NOUN", "quickly/ADV", "twirl/VERB", "then/ADV",
                                             "turn/VERB", "left/NOUN"],
    # 24 words: cropped to 20 before sos/eos
    "long": ["a/DET", "person/NOUN", "raise/VERB", "his/PRON", "arm/NOUN", "then/ADV", "walk/VERB", "forward/ADV",
             "and/CCONJ", "turn/VERB", "left/ADJ", "then/ADV", "jump/VERB", "up/ADP", "and/CCONJ", "down/ADP",
             "slowly/ADV", "the/DET", "man/NOUN", "walk/VERB", "forward/ADV", "and/CCONJ", "jump/VERB", "up/ADV"],
}


def test_release_gives_the_official_embeddings(tmp_path):
    state = write_release(tmp_path)
    # the release's key names, checked literally so a renamed attribute would fail here
    assert {"pos_emb.weight", "input_emb.weight", "gru.weight_ih_l0_reverse", "output_net.3.weight", "hidden"} <= set(state["text_encoder"])
    assert {"main.0.weight", "main.3.weight", "out_net.weight"} <= set(state["movement_encoder"])
    evaluator = T2MEvaluator.from_folder(tmp_path, skeleton=HUMANML3D)

    tokens = list(CAPTIONS.values())
    ours = evaluator.encode_text(list(CAPTIONS), tokens=tokens)
    with torch.no_grad():
        reference = _reference_text(tokens, tmp_path, evaluator.text_encoder)
    assert ours.shape == (4, 512)
    assert (ours - reference).abs().max().item() < 1e-4

    rng = np.random.default_rng(1)
    motions = [rng.normal(size=(n, F)).astype(np.float32) for n in (196, 120, 43, 80)]
    padded = torch.full((4, 196, F), 7.0)  # raw padding garbage: must not matter
    mask = torch.zeros(4, 196, dtype=torch.bool)
    for i, motion in enumerate(motions):
        padded[i, : len(motion)] = torch.from_numpy(motion)
        mask[i, : len(motion)] = True
    ours = evaluator.encode_motion(padded, mask)
    with torch.no_grad():
        reference = _reference_motion(motions, tmp_path, evaluator.movement_encoder, evaluator.motion_encoder)
    assert (ours - reference).abs().max().item() < 1e-4
    # a batch padded only to its own longest clip gives the same embeddings (zero padding after normalisation)
    short = evaluator.encode_motion(padded[1:, :120], mask[1:, :120])
    assert (short - ours[1:]).abs().max().item() < 1e-4


def test_free_text_is_tagged_like_the_caption_files(tmp_path):
    write_release(tmp_path)
    evaluator = T2MEvaluator.from_folder(tmp_path, skeleton=HUMANML3D)
    assert [t.split("/")[0] for t in caption_tokens("A person walks forward, slowly!")] == \
        ["a", "person", "walk", "forward", "slowly"]
    caption = "a person walks forward slowly"
    from_text = evaluator.encode_text([caption])
    from_file = evaluator.encode_text([caption], tokens=[CAPTIONS[caption]])
    assert (from_text - from_file).abs().max().item() < 1e-4


def test_missing_files_and_wrong_layout_fail_loudly(tmp_path):
    with pytest.raises(CheckpointError, match="finest.tar"):
        T2MEvaluator.from_folder(tmp_path, skeleton=HUMANML3D)
    state = write_release(tmp_path / "r")
    state["text_encoder"].pop("pos_emb.weight")
    torch.save(state, tmp_path / "r" / "text_mot_match" / "model" / "finest.tar")
    with pytest.raises(CheckpointError, match="text_encoder does not match"):
        T2MEvaluator.from_folder(tmp_path / "r", skeleton=HUMANML3D)


def test_independent_evaluator_round_trip_and_fingerprint(tmp_path):
    torch.manual_seed(0)
    config = TextMotionEvaluatorConfig(feature_dim=F, text_hidden=8, movement_hidden=8, motion_hidden=8, embed_dim=8)
    evaluator = TextMotionEvaluator(config, mean=np.full(F, 0.5), std=np.full(F, 2.0)).eval()
    path = evaluator.save_pretrained(tmp_path / "evaluator")
    loaded = TextMotionEvaluator.from_pretrained(path)
    assert loaded.fingerprint == evaluator.fingerprint == weights_fingerprint(path)
    assert torch.equal(loaded.std, torch.full((F,), 2.0))
    # words absent from any training caption still have vectors: nothing becomes unk
    captions = ["someone does a cartwheel", "a person pirouettes gracefully"]
    assert torch.allclose(loaded.encode_text(captions), evaluator.encode_text(captions))
    unknown = loaded.encode_text(["a person zzqxv"])
    assert not torch.allclose(unknown, loaded.encode_text(["a person unk"]))
    features, mask = torch.randn(2, 48, F), torch.ones(2, 48, dtype=torch.bool)
    assert torch.allclose(loaded.encode_motion(features, mask), evaluator.encode_motion(features, mask))
    # a changed weight changes the fingerprint
    with torch.no_grad():
        loaded.text_encoder.hidden.add_(1.0)
    changed = loaded.save_pretrained(tmp_path / "changed")
    assert weights_fingerprint(changed) != weights_fingerprint(path)
    (path / "model.safetensors").write_bytes(b"partial")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        TextMotionEvaluator.from_pretrained(path)
