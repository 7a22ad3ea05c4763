"""Loader for the official T2M evaluator of Guo et al. 2022 (``text_mot_match/model/finest.tar`` + GloVe).

The user gives a folder laid out as the official release::

    <dir>/text_mot_match/model/finest.tar   torch checkpoint: {'text_encoder', 'motion_encoder', 'movement_encoder'}
    <dir>/glove/our_vab_data.npy            (V, 300) word vectors
    <dir>/glove/our_vab_words.pkl           list of V words
    <dir>/glove/our_vab_idx.pkl             {word: row}
    <dir>/meta/mean.npy, <dir>/meta/std.npy  the evaluator's own feature normalisation (never the generator's)

Architecture (documented in the T2M paper and release): a bi-GRU text encoder over GloVe word vectors plus a
projected one-hot part-of-speech code (15 categories, with "VIP" word lists for body parts, locations, objects,
actions and descriptors); a 1-D convolutional movement encoder over the features without the 4 foot contacts
(two stride-2 convolutions: lengths are divided by ``unit_length`` 4); a bi-GRU motion encoder over the movement
codes. Embeddings are 512-d and compared by Euclidean distance. Module attribute names follow the release so its
state dicts load with ``strict=True``.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.serialization import CheckpointError

POS_CATEGORIES = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
                  "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER")
VIP_WORDS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward",
                "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder",
                 "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump", "turn",
                "stumble", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel", "stroll", "rub", "bend",
                "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily",
                 "angrily", "sadly"),
}
MAX_TEXT_TOKENS = 20  # words kept per caption, before the sos/eos markers


class _BiGRUEncoder(nn.Module):
    """input_emb → bi-GRU (learned initial state) → final states of both directions → output_net."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(hidden_size * 2, hidden_size), nn.LayerNorm(hidden_size), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden_size, output_size))
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size), requires_grad=True))

    def _encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.input_emb(inputs)  # (B, L, H)
        h0 = self.hidden.repeat(1, x.shape[0], 1)  # (2, B, H)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed, h0)  # (2, B, H)
        return self.output_net(torch.cat([h_n[0], h_n[1]], dim=-1))  # (B, out)


class T2MTextEncoder(_BiGRUEncoder):
    def __init__(self, word_size: int = 300, pos_size: int = len(POS_CATEGORIES), hidden_size: int = 512,
                 output_size: int = 512):
        super().__init__(word_size, hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size)

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(word_embs + self.pos_emb(pos_onehot), lengths)  # (B, out)


class T2MMovementEncoder(nn.Module):
    def __init__(self, input_size: int, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2, inplace=True), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2, inplace=True), nn.LeakyReLU(0.2, inplace=True))
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.main(features.permute(0, 2, 1)).permute(0, 2, 1)  # (B, T/4, out)
        return self.out_net(x)


class T2MMotionEncoder(_BiGRUEncoder):
    def __init__(self, input_size: int = 512, hidden_size: int = 1024, output_size: int = 512):
        super().__init__(input_size, hidden_size, output_size)

    def forward(self, movements: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(movements, lengths)


def _pos_of(word: str, tag: str) -> str:
    for category, words in VIP_WORDS.items():
        if word in words:
            return category
    return tag if tag in POS_CATEGORIES else "OTHER"


class T2MEvaluator(nn.Module):
    """``encode_text(captions)`` / ``encode_motion(features, frame_mask)`` like the project's extractors."""

    def __init__(self, word_vectors: np.ndarray, word_index: dict[str, int], mean: np.ndarray, std: np.ndarray,
                 skeleton: Skeleton, unit_length: int = 4):
        super().__init__()
        self.skeleton = skeleton
        self.unit_length = unit_length
        feature_dim = skeleton.feature_dim
        self.text_encoder = T2MTextEncoder(word_size=word_vectors.shape[1])
        self.movement_encoder = T2MMovementEncoder(feature_dim - 4)
        self.motion_encoder = T2MMotionEncoder()
        self.register_buffer("word_vectors", torch.as_tensor(word_vectors, dtype=torch.float32), persistent=False)
        self.word_index = dict(word_index)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_folder(cls, folder: str | Path, skeleton: Skeleton, device: str = "cpu") -> "T2MEvaluator":
        folder = Path(folder)
        paths = {
            "checkpoint": folder / "text_mot_match" / "model" / "finest.tar",
            "vectors": folder / "glove" / "our_vab_data.npy",
            "index": folder / "glove" / "our_vab_idx.pkl",
            "mean": folder / "meta" / "mean.npy",
            "std": folder / "meta" / "std.npy",
        }
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise CheckpointError(f"{folder}: not a T2M evaluator folder; missing {missing} "
                                  "(download the official evaluator and GloVe files and keep their layout)")
        vectors = np.load(paths["vectors"])
        with open(paths["index"], "rb") as f:
            word_index = pickle.load(f)  # plain dict of str -> int written by the release
        evaluator = cls(vectors, word_index, np.load(paths["mean"]), np.load(paths["std"]), skeleton=skeleton)
        try:
            checkpoint = torch.load(paths["checkpoint"], map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure gets the same explanation
            raise CheckpointError(f"{paths['checkpoint']}: cannot be read as a torch checkpoint ({exc})") from exc
        for key, module in (("text_encoder", evaluator.text_encoder), ("movement_encoder", evaluator.movement_encoder),
                            ("motion_encoder", evaluator.motion_encoder)):
            if key not in checkpoint:
                raise CheckpointError(f"{paths['checkpoint']}: no {key!r} state dict (keys: {sorted(checkpoint)})")
            try:
                module.load_state_dict(checkpoint[key], strict=True)
            except RuntimeError as exc:
                raise CheckpointError(f"{paths['checkpoint']}: {key} does not match the T2M architecture: {exc}") from exc
        return evaluator.to(device).eval()

    # ------------------------------------------------------------------ text
    def _tokens(self, caption: str) -> list[tuple[str, str]]:
        from adamotion.data.captions import pos_tag

        words = [(w.lower(), _pos_of(w.lower(), tag)) for w, tag in pos_tag(caption) if tag != "PUNCT"]
        return [("sos", "OTHER")] + words[:MAX_TEXT_TOKENS] + [("eos", "OTHER")]

    @torch.inference_mode()
    def encode_text(self, captions: list[str]) -> torch.Tensor:
        device = self.word_vectors.device
        tokenised = [self._tokens(c) for c in captions]
        max_len = max(len(t) for t in tokenised)
        unk = self.word_index.get("unk", 0)
        words = torch.full((len(captions), max_len), unk, dtype=torch.long)  # (B, L)
        pos = torch.zeros((len(captions), max_len, len(POS_CATEGORIES)))  # (B, L, 15)
        for i, tokens in enumerate(tokenised):
            for j, (word, tag) in enumerate(tokens):
                words[i, j] = self.word_index.get(word, unk)
                pos[i, j, POS_CATEGORIES.index(tag)] = 1.0
        lengths = torch.tensor([len(t) for t in tokenised])
        return self.text_encoder(self.word_vectors[words.to(device)], pos.to(device), lengths)  # (B, 512)

    # ------------------------------------------------------------------ motion
    @torch.inference_mode()
    def encode_motion(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Un-normalised features (B, T, F) with a validity mask (B, T) → (B, 512)."""
        features = features.to(self.mean.device).float()
        normalised = (features - self.mean) / self.std  # (B, T, F)
        movements = self.movement_encoder(normalised[..., :-4])  # (B, T/4, 512)
        lengths = (frame_mask.sum(dim=1) // self.unit_length).clamp(min=1)  # (B,)
        return self.motion_encoder(movements, lengths)
