"""Training jobs: quality-feedback extractors, the generator (AdaQF and its ablations), retrieval encoders.

* :mod:`adamotion.train.loop` - the shared trainer (resumable checkpoints, EMA, CSV/TensorBoard logs,
  validation, bf16/compile on CUDA, several GPUs through torchrun / accelerate launch).
* :mod:`adamotion.train.extractors` - ``train_extractors`` (E_T / E_M, InfoNCE + cosine).
* :mod:`adamotion.train.generator` - ``train_generator`` with ``method`` in :data:`METHODS`.
* :mod:`adamotion.train.retrieval` - ``train_retrieval`` (motion encoder for a frozen text encoder).
* :mod:`adamotion.train.all` - ``train_all``: corpus -> extractors -> generators -> retrieval encoders.

This module stays import-light (no torch) so the CLI can list choices quickly.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodSpec:
    """One generator training method (a row of the paper's ablation table)."""

    constraints: bool  # add the quality-feedback terms L_M, L_T to the loss
    encoder_mode: str  # TextEncoder.set_trainable mode: "frozen", "lora" or "full"
    adapters: bool  # the text encoder carries LoRA adapters
    title: str  # human-readable name (pipeline.json "method")
    paper_row: str  # ablation row of the paper's Table 4


METHODS: dict[str, MethodSpec] = {
    "baseline": MethodSpec(False, "frozen", False, "baseline MDM", "① baseline MDM"),
    "constraints": MethodSpec(True, "frozen", False, "MDM + constraints", "② + constraints"),
    "lora": MethodSpec(False, "lora", True, "MDM + LoRA", "③ + LoRA only"),
    "adaqf": MethodSpec(True, "lora", True, "AdaQF", "④ AdaQF (full model)"),
    "full": MethodSpec(True, "full", False, "AdaQF (full fine-tune)", "⑤ full fine-tune"),
}


def method_spec(method: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``method``, or a ValueError listing the choices."""
    try:
        return METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)} "
                         f"(paper ablations: baseline ①, constraints ②, lora ③, adaqf ④, full ⑤)") from None


__all__ = ["METHODS", "MethodSpec", "method_spec"]
