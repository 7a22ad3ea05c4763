"""Diffusion schedulers (noise schedules and samplers; no model code)."""
from adamotion.diffusion.scheduler import SAMPLERS, DiffusionScheduler, SchedulerConfig, draw_noise

__all__ = ["SAMPLERS", "DiffusionScheduler", "SchedulerConfig", "draw_noise"]
