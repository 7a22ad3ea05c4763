"""Torch-free motion renderers: stick-figure videos, shaded body videos, keyframe strips.

* :mod:`renderers.video`    atomic mp4 (H.264 yuv420p, faststart) / WebM (VP9) / GIF writer and prober
* :mod:`renderers.skeleton` fast Pillow stick-figure renderer (single, side by side, keyframe strip)
* :mod:`renderers.mesh`     pyrender capsule body (or SMPL body when the licensed files are given)
* :mod:`renderers.bench`    ``python -m renderers.bench``: frames/s of each renderer

Nothing here imports torch; only :func:`renderers.smpl_fit.fit_smpl_to_joints` (the SMPL path, taken
when SMPL model files are present) imports it, lazily. pyrender/OpenGL are imported on the first mesh
render, not at import time.
"""
from renderers.mesh import MeshStyle, find_smpl_model, mesh_cameras, render_mesh_frames, render_mesh_video
from renderers.skeleton import (
    Camera,
    SkeletonStyle,
    follow_cameras,
    frame_cameras,
    project_points,
    render_frames,
    render_keyframe_strip,
    render_naive_matplotlib,
    render_side_by_side,
    render_video,
)
from renderers.smpl_fit import SmplModel, SmplModelError, fit_smpl_to_joints, load_smpl_model
from renderers.video import VideoInfo, VideoWriter, probe_video, read_video_frames, write_video

__all__ = [
    "Camera",
    "MeshStyle",
    "SkeletonStyle",
    "SmplModel",
    "SmplModelError",
    "VideoInfo",
    "VideoWriter",
    "find_smpl_model",
    "fit_smpl_to_joints",
    "follow_cameras",
    "frame_cameras",
    "load_smpl_model",
    "mesh_cameras",
    "probe_video",
    "project_points",
    "read_video_frames",
    "render_frames",
    "render_keyframe_strip",
    "render_mesh_frames",
    "render_mesh_video",
    "render_naive_matplotlib",
    "render_side_by_side",
    "render_video",
    "write_video",
]
