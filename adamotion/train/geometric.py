"""Geometric training losses on joint positions decoded from predicted features (MDM's L_pos, L_vel, L_foot).

The feature MSE alone leaves the denoiser's error nearly white over time: every frame's prediction is off on its
own, which a viewer sees as popping, stretching bones and sliding feet. These terms read the prediction as
a skeleton, through the same differentiable :func:`~adamotion.motion.features.joints_from_features` the
pipeline decodes with, and penalise exactly those defects:

============  =========================================================================================
position      joint positions (metres) vs ground truth's
velocity      frame-to-frame joint displacements vs ground truth's (the term that removes high frequencies)
foot_contact  displacement of a foot joint on frames where ground truth's contact label is on
bone_length   bone lengths vs ground truth's (the ric positions are free per joint; this keeps them rigid)
============  =========================================================================================

Everything skeleton-specific (feature slices, foot joints, bones) comes from the :class:`Skeleton`. All
inputs are *un-normalised* features; losses are means over valid frames, in metres squared.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from adamotion.motion.features import joints_from_features
from adamotion.motion.skeleton import Skeleton

GEOMETRIC_TERMS = ("position", "velocity", "foot_contact", "bone_length")


@dataclass
class GeometricLossConfig:
    """Weights of the geometric terms (0 switches a term off; all 0 = the plain feature MSE of old runs).

    The defaults put each term's gradient at roughly the feature MSE's size on a 2k-step CPU model (measured
    in checkpoints/default/investigation/jitter.md): positions are metres, so small errors need large weights.
    """

    position: float = 0.05  # global joint positions, includes the integrated root trajectory
    velocity: float = 50.0  # frame-to-frame displacement
    foot_contact: float = 5.0  # foot displacement where ground truth is in contact
    bone_length: float = 50.0  # bone lengths

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"generator.geometric.{f.name} must be a number >= 0, got {value!r}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) > 0 for name in GEOMETRIC_TERMS)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (B, T, ...) over the frames where ``mask`` (B, T) is True."""
    weight = mask.to(values.dtype).reshape(mask.shape + (1,) * (values.dim() - 2))  # (B, T, 1...)
    per_frame = values[0, 0].numel()
    return (values * weight).sum() / (mask.sum() * per_frame).clamp(min=1).to(values.dtype)


def geometric_losses(pred_raw: torch.Tensor, target_raw: torch.Tensor, frame_mask: torch.Tensor,
                     skeleton: Skeleton, config: GeometricLossConfig) -> dict[str, torch.Tensor]:
    """Named unweighted losses (``geo_<term>``) for every term with a non-zero weight, and ``geometric``, their
    weighted sum.

    Args:
        pred_raw, target_raw: (B, T, F) un-normalised features (prediction, ground truth).
        frame_mask: (B, T) bool, True = valid frame.
    """
    if pred_raw.shape != target_raw.shape or pred_raw.shape[-1] != skeleton.feature_dim:
        raise ValueError(f"features must both be (B, T, {skeleton.feature_dim}); got {tuple(pred_raw.shape)} "
                         f"and {tuple(target_raw.shape)}")
    mask = frame_mask.bool()
    pred = joints_from_features(pred_raw.float(), skeleton)  # (B, T, J, 3)
    with torch.no_grad():
        target = joints_from_features(target_raw.float(), skeleton)  # (B, T, J, 3)
    step_mask = mask[:, 1:] & mask[:, :-1]  # (B, T-1) both frames valid
    losses: dict[str, torch.Tensor] = {}
    if config.position > 0:
        losses["geo_position"] = _masked_mean(((pred - target) ** 2).sum(-1), mask)
    if config.velocity > 0 or config.foot_contact > 0:
        pred_step = pred[:, 1:] - pred[:, :-1]  # (B, T-1, J, 3)
        if config.velocity > 0:
            target_step = target[:, 1:] - target[:, :-1]
            losses["geo_velocity"] = _masked_mean(((pred_step - target_step) ** 2).sum(-1), step_mask)
        if config.foot_contact > 0:
            feet = list(skeleton.foot_joints)
            contact = (target_raw[:, :-1, skeleton.feature_slices["contacts"]] > 0.5).to(pred.dtype)  # (B, T-1, 4)
            contact = contact * step_mask[..., None].to(pred.dtype)
            slide = (pred_step[:, :, feet] ** 2).sum(-1)  # (B, T-1, 4) squared displacement of each foot joint
            losses["geo_foot_contact"] = (slide * contact).sum() / contact.sum().clamp(min=1.0)
    if config.bone_length > 0:
        parents = [p for p, _ in skeleton.bones]
        children = [c for _, c in skeleton.bones]
        pred_len = (pred[:, :, children] - pred[:, :, parents]).norm(dim=-1)  # (B, T, bones)
        target_len = (target[:, :, children] - target[:, :, parents]).norm(dim=-1)
        losses["geo_bone_length"] = _masked_mean((pred_len - target_len) ** 2, mask)
    total = pred.new_zeros(())
    for name in GEOMETRIC_TERMS:
        if f"geo_{name}" in losses:
            total = total + getattr(config, name) * losses[f"geo_{name}"]
    losses["geometric"] = total
    return losses
