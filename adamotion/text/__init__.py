"""Text encoders for AdaMotion: a pretrained text transformer with LoRA adapters (AdaQF / "AdaCLIP").

Public API::

    from adamotion.text import TextEncoder, LoraSettings, TextEncoding, available_backbones

    encoder = TextEncoder.from_pretrained("minilm")        # or "clip:<folder or hub id>", "hf:<folder>", a saved folder
    out = encoder(["a person walks forward"])              # TextEncoding(hidden (B, L, D), mask (B, L), pooled (B, D))
    with encoder.vanilla(): ...                            # adapters off, same module
"""
from adamotion.text.backbones import (
    DEFAULT_SPEC,
    MINILM_SHA256,
    BackboneError,
    LoadedBackbone,
    available_backbones,
    load_backbone,
    load_clip_tokenizer,
)
from adamotion.text.encoder import (
    ADAPTER_COMPONENT,
    ENCODER_COMPONENT,
    TRAINABLE_MODES,
    LoraSettings,
    TextEncoder,
    TextEncoding,
)

__all__ = [
    "ADAPTER_COMPONENT",
    "DEFAULT_SPEC",
    "ENCODER_COMPONENT",
    "MINILM_SHA256",
    "TRAINABLE_MODES",
    "BackboneError",
    "LoadedBackbone",
    "LoraSettings",
    "TextEncoder",
    "TextEncoding",
    "available_backbones",
    "load_backbone",
    "load_clip_tokenizer",
]
