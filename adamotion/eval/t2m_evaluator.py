"""Text-motion evaluators with the T2M architecture of Guo et al. 2022, and the inputs they read.

Two evaluators share the three networks and one input convention:

* :class:`T2MEvaluator` loads the **official release** from a user-given folder (never shipped)::

      <dir>/text_mot_match/model/finest.tar   torch checkpoint: {'text_encoder', 'motion_encoder', 'movement_encoder'}
      <dir>/glove/our_vab_data.npy            (V, 300) word vectors
      <dir>/glove/our_vab_words.pkl           list of V words
      <dir>/glove/our_vab_idx.pkl             {word: row}
      <dir>/meta/mean.npy, <dir>/meta/std.npy  the evaluator's own feature normalisation (never the generator's)

* :class:`TextMotionEvaluator` is the project's **independent evaluator** (``adamotion train evaluator``,
  shipped as ``checkpoints/default/evaluator/``): the same three networks, smaller, trained on the training split
  with their own seed, over word vectors available offline (see :class:`BackboneWordVectors`). No training job
  loads it, so no generator was ever trained to please it.

Architecture (T2M paper and release): a bi-GRU text encoder over word vectors plus a projected one-hot
part-of-speech code (15 categories, with "VIP" word lists for body parts, locations, objects, actions and
descriptors); a 1-D convolutional movement encoder over the features without the 4 foot contacts (two stride-2
convolutions: lengths are divided by ``unit_length`` 4); a bi-GRU motion encoder over the movement codes.
Embeddings are compared by Euclidean distance. Module attribute names follow the release so its state dicts load
with ``strict=True``.

Input conventions, checked against the official text-to-motion code (word vectorizer, dataset, evaluator
wrapper):

* A caption is a list of ``word/POS`` tokens. For a HumanML3D-layout dataset they are the tokens stored in its
  caption files, used as they are. For free text (:func:`caption_tokens`) the project's rule-based tagger gives
  lower-case words, NOUN/VERB lemmatised, punctuation dropped (the official code runs spaCy ``en_core_web_sm``
  with the same lemma rule; tags can differ on rare words).
* At most :data:`MAX_TEXT_TOKENS` (20) words are kept, then ``sos/OTHER`` and ``eos/OTHER`` are put around them.
* A word with a vector gets that vector and, when it is in a VIP list, the VIP category, else its own tag (a tag
  outside the 15 categories counts as OTHER). A word without a vector becomes ``unk`` with POS OTHER.
* Motions are normalised with the evaluator's own mean/std, padded frames are zero AFTER normalisation (the
  official datasets pad the normalised motion with zeros up to 196 frames, and so does this: the last movement
  code of a clip reads a few frames past its end), the last 4 dims (foot contacts) are dropped, and the
  motion encoder reads ``length // unit_length`` movement codes.
"""
from __future__ import annotations

import functools
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.config import StrictConfig
from adamotion.utils.serialization import CONFIG_NAME, CheckpointError, PretrainedMixin, weights_fingerprint

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
START_TOKEN, END_TOKEN, UNKNOWN_WORD = "sos/OTHER", "eos/OTHER", "unk"


# ----------------------------------------------------------------------------- networks (release layout)
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


# ----------------------------------------------------------------------------- text inputs
def caption_tokens(caption: str) -> list[str]:
    """``word/POS`` tokens of a free-text caption (lower case, NOUN/VERB lemmatised, punctuation dropped)."""
    from adamotion.data.captions import tag_caption

    return tag_caption(caption.replace("-", ""))  # the official free-text path also drops hyphens first


def pos_category(word: str, tag: str) -> str:
    """POS category of a word that HAS a vector: its VIP category if listed, else its tag (OTHER if unknown tag)."""
    for category, words in VIP_WORDS.items():
        if word in words:
            return category
    return tag if tag in POS_CATEGORIES else "OTHER"


class GloveVectors:
    """Word vectors of the official release: a fixed vocabulary; words outside it have none."""

    def __init__(self, vectors: np.ndarray, word_index: dict[str, int]):
        self.table = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)  # (V, D)
        self.word_index = dict(word_index)
        if UNKNOWN_WORD not in self.word_index:
            raise CheckpointError(f"the word-vector vocabulary has no {UNKNOWN_WORD!r} entry, which unknown words need")

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def lookup(self, word: str) -> torch.Tensor | None:
        row = self.word_index.get(word)
        return None if row is None else self.table[row]


class BackboneWordVectors:
    """Offline word vectors for any English word: the mean of a text backbone's frozen input embeddings over the
    word's word pieces (default: MiniLM-L6, whose wheel the project already installs).

    Every word made of word pieces has a vector, so ``unk`` is never needed for real words; the markers map to
    the backbone's own special tokens (sos → [CLS], eos → [SEP], unk → [UNK]).
    """

    def __init__(self, spec: str = "minilm"):
        from adamotion.models.extractors import load_word_vectors

        self.spec = spec
        self.tokenizer, self.table = load_word_vectors(spec)  # (V, D) frozen
        self._special = {"sos": self.tokenizer.cls_token_id, "eos": self.tokenizer.sep_token_id,
                         UNKNOWN_WORD: self.tokenizer.unk_token_id}

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    @functools.lru_cache(maxsize=50_000)
    def lookup(self, word: str) -> torch.Tensor | None:
        if word in self._special:
            return self.table[self._special[word]]
        pieces = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        return self.table[pieces].mean(dim=0) if pieces else None


def text_inputs(token_lists: Sequence[Sequence[str]], vectors) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Word vectors (B, L, D), POS one-hots (B, L, 15) and lengths (B,) of ``word/POS`` token lists.

    The official conventions (module docstring): at most 20 words, sos/eos around them, a word without a vector
    becomes ``unk`` with OTHER, VIP categories only for words with a vector. Padding rows are ``unk`` with OTHER
    (what the release pads with); the encoders never read them.
    """
    rows = []
    for tokens in token_lists:
        words = [token.rsplit("/", 1) if "/" in token else (token, "OTHER") for token in tokens][:MAX_TEXT_TOKENS]
        marked = [tuple(START_TOKEN.split("/"))] + [tuple(w) for w in words] + [tuple(END_TOKEN.split("/"))]
        row = []
        for word, tag in marked:
            vector = vectors.lookup(word)
            if vector is None:
                row.append((vectors.lookup(UNKNOWN_WORD), "OTHER"))
            else:
                row.append((vector, pos_category(word, tag)))
        rows.append(row)
    max_len = max(len(row) for row in rows)
    padding = vectors.lookup(UNKNOWN_WORD)
    word_embs = padding.expand(len(rows), max_len, -1).clone()  # (B, L, D)
    pos = torch.zeros(len(rows), max_len, len(POS_CATEGORIES))  # (B, L, 15)
    pos[:, :, POS_CATEGORIES.index("OTHER")] = 1.0
    for i, row in enumerate(rows):
        for j, (vector, category) in enumerate(row):
            word_embs[i, j] = vector
            pos[i, j] = 0.0
            pos[i, j, POS_CATEGORIES.index(category)] = 1.0
    lengths = torch.tensor([len(row) for row in rows])  # (B,)
    return word_embs, pos, lengths


# ----------------------------------------------------------------------------- the shared evaluator behaviour
class _T2MNetworks(nn.Module):
    """Three T2M networks + the evaluator's own mean/std; ``encode_text`` / ``encode_motion`` like the extractors."""

    text_encoder: T2MTextEncoder
    movement_encoder: T2MMovementEncoder
    motion_encoder: T2MMotionEncoder
    unit_length: int
    max_frames: int  # clips are zero-padded (after normalisation) to at least this many frames; 0 = unit_length more
    vectors: object
    judge_name: str = "T2M evaluator"
    reads_tokens = True  # encode_text takes the dataset's word/POS tokens

    def embed_text(self, token_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        """Differentiable text embeddings (B, D) of ``word/POS`` token lists."""
        word_embs, pos, lengths = text_inputs(token_lists, self.vectors)
        device = self.mean.device
        return self.text_encoder(word_embs.to(device), pos.to(device), lengths)  # (B, D)

    def embed_motion(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Differentiable motion embeddings (B, D) of un-normalised features (B, T, F) with a (B, T) validity mask."""
        features = features.to(self.mean.device).float()
        valid = frame_mask.to(features.device)[..., None]  # (B, T, 1)
        normalised = torch.where(valid, (features - self.mean) / self.std, torch.zeros_like(features))  # (B, T, F)
        # The release pads every clip with zero frames up to max_frames (196): the last movement code of a clip
        # reads up to 3 frames past its end, and at 196 frames the convolution's own edge, so pad exactly as far.
        extra = max(self.max_frames - normalised.shape[1], 0) if self.max_frames else self.unit_length
        normalised = nn.functional.pad(normalised, (0, 0, 0, extra))  # (B, T', F)
        movements = self.movement_encoder(normalised[..., :-4])  # (B, T'/4, M)
        lengths = torch.div(frame_mask.sum(dim=1), self.unit_length, rounding_mode="floor")  # (B,)
        return self.motion_encoder(movements, lengths.clamp(min=1))

    @torch.inference_mode()
    def encode_text(self, captions: Sequence[str], tokens: Sequence[Sequence[str]] | None = None) -> torch.Tensor:
        """(B, D) embeddings; ``tokens`` (the dataset's ``word/POS`` tokens) when known, else tagged from the text."""
        if tokens is None:
            tokens = [caption_tokens(caption) for caption in captions]
        elif len(tokens) != len(captions):
            raise ValueError(f"{len(tokens)} token lists for {len(captions)} captions")
        return self.embed_text(tokens)

    @torch.inference_mode()
    def encode_motion(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Un-normalised features (B, T, F) with a validity mask (B, T) → (B, D)."""
        return self.embed_motion(features, frame_mask)


class T2MEvaluator(_T2MNetworks):
    """The official T2M evaluator (GloVe vectors, 512-d embeddings), loaded with :meth:`from_folder`."""

    judge_name = "official T2M evaluator (Guo et al. 2022)"

    def __init__(self, word_vectors: np.ndarray, word_index: dict[str, int], mean: np.ndarray, std: np.ndarray,
                 skeleton: Skeleton, unit_length: int = 4):
        super().__init__()
        self.skeleton = skeleton
        self.unit_length = unit_length
        self.max_frames = skeleton.max_frames
        self.vectors = GloveVectors(word_vectors, word_index)
        self.text_encoder = T2MTextEncoder(word_size=self.vectors.dim)
        self.movement_encoder = T2MMovementEncoder(skeleton.feature_dim - 4)
        self.motion_encoder = T2MMotionEncoder()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32), persistent=False)
        self.fingerprint: str | None = None

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


# ----------------------------------------------------------------------------- the project's independent evaluator
@dataclass
class TextMotionEvaluatorConfig(StrictConfig):
    feature_dim: int  # F: motion features per frame (Skeleton.feature_dim)
    word_vectors: str = "minilm"  # BackboneWordVectors spec: mean of the backbone's word-piece input embeddings
    word_dim: int | None = None  # filled from the word vectors, checked on load
    text_hidden: int = 128  # text bi-GRU hidden size (official: 512)
    movement_hidden: int = 96  # movement conv channels (official: 512)
    motion_hidden: int = 128  # motion bi-GRU hidden size (official: 1024)
    embed_dim: int = 256  # shared embedding size (official: 512)
    unit_length: int = 4  # frames per movement code (two stride-2 convolutions)
    max_frames: int = 0  # zero-pad clips to this length after normalisation (the release: 196); 0 = unit_length zero frames


class TextMotionEvaluator(PretrainedMixin, _T2MNetworks):
    """The project's independent evaluator: a folder with ``config.json`` + ``model.safetensors``.

    ``fingerprint`` is the sha256 of its weights (:func:`adamotion.utils.serialization.weights_fingerprint`) once
    saved or loaded; ``adamotion evaluate`` compares it with the feedback extractors each generator trained with.
    """

    component_name = "text_motion_evaluator"
    judge_name = "independent T2M-architecture evaluator"

    def __init__(self, config: TextMotionEvaluatorConfig, mean=None, std=None):
        super().__init__()
        self.vectors = BackboneWordVectors(config.word_vectors)
        if config.word_dim is not None and config.word_dim != self.vectors.dim:
            raise ValueError(f"word vectors {config.word_vectors!r} are {self.vectors.dim}-d, the config says {config.word_dim}")
        config.word_dim = self.vectors.dim
        self.config = config
        self.unit_length = config.unit_length
        self.max_frames = config.max_frames
        self.text_encoder = T2MTextEncoder(config.word_dim, hidden_size=config.text_hidden, output_size=config.embed_dim)
        self.movement_encoder = T2MMovementEncoder(config.feature_dim - 4, config.movement_hidden, config.movement_hidden)
        self.motion_encoder = T2MMotionEncoder(config.movement_hidden, config.motion_hidden, config.embed_dim)
        self.register_buffer("mean", torch.zeros(config.feature_dim))  # (F,) own statistics, saved
        self.register_buffer("std", torch.ones(config.feature_dim))  # (F,)
        if mean is not None and std is not None:
            self.mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            self.std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32).clamp(min=1e-3))
        self.fingerprint: str | None = None

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def get_config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "TextMotionEvaluator":
        return cls(TextMotionEvaluatorConfig.from_dict(config, "evaluator config"))

    def save_pretrained(self, directory, dtype=None) -> Path:
        path = super().save_pretrained(directory, dtype=dtype)
        self.fingerprint = weights_fingerprint(path)
        return path

    @classmethod
    def from_pretrained(cls, directory, map_location: str = "cpu") -> "TextMotionEvaluator":
        try:
            evaluator = super().from_pretrained(directory, map_location=map_location)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: invalid evaluator config ({exc})") from exc
        evaluator.fingerprint = weights_fingerprint(directory)
        return evaluator.eval()
