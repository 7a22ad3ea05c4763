"""Diffusion schedulers (noise schedules and samplers; no model code)."""
from adamotion.diffusion.scheduler import DiffusionScheduler, SchedulerConfig

__all__ = ["DiffusionScheduler", "SchedulerConfig"]
