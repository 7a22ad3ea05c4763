"""Fast stick-figure videos of joint-position motions.

The figure is projected with a small numpy camera model (:class:`Camera`, :func:`project_points`) and
rasterised with Pillow's ``ImageDraw`` at ``supersample`` times the output size, then box-downsampled
(cheap anti-aliasing). Frames are streamed straight into ffmpeg (:mod:`renderers.video`), which encodes
in its own process while Python draws the next frame. No matplotlib figure is ever built per frame; a
plain matplotlib ``FuncAnimation`` renderer (:func:`render_naive_matplotlib`) exists only as the
benchmark baseline.

Every scene element comes from the :class:`~adamotion.motion.skeleton.Skeleton` object: bones and
left/right/centre colours from its chains and ``mirror_left``/``mirror_right``, the default fps, the
head joint by name. Coordinates are HumanML3D's: metres, y up, the figure facing +z at frame 0.

Public API: :class:`Camera`, :func:`project_points`, :class:`SkeletonStyle`, :func:`frame_cameras`,
:func:`render_frames`, :func:`render_video`, :func:`render_side_by_side`, :func:`render_keyframe_strip`,
:func:`render_naive_matplotlib`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.files import atomic_file
from renderers.video import VideoWriter

logger = logging.getLogger(__name__)

__all__ = [
    "Camera",
    "SkeletonStyle",
    "follow_cameras",
    "frame_cameras",
    "project_points",
    "root_index",
    "render_frames",
    "render_keyframe_strip",
    "render_naive_matplotlib",
    "render_side_by_side",
    "render_video",
    "smooth_along_time",
]

RGB = tuple[int, int, int]
_WORLD_UP = np.array([0.0, 1.0, 0.0])


# ================================================================================================ camera
@dataclass(frozen=True)
class Camera:
    """A look-at camera orbiting ``target`` (y-up world, metres, pixel rows grow downwards).

    ``azimuth_deg`` turns the eye about +y: 0 puts the eye on the +z side, i.e. a front view of a
    figure facing +z; positive values swing the eye towards +x (the figure's left). ``elevation_deg``
    lifts the eye above the target. ``fov_deg`` is the vertical field of view of the whole image; ``None``
    selects an orthographic camera that shows ``ortho_height`` metres over the image height.
    ``principal_point`` (pixels, default the image centre) lets a layout move the view centre, e.g.
    below a title band. The camera looks along its own -z axis (OpenGL / pyrender convention).
    """

    target: tuple[float, float, float]
    azimuth_deg: float = 35.0
    elevation_deg: float = 15.0
    distance: float = 4.0
    width: int = 640
    height: int = 480
    fov_deg: float | None = 40.0
    ortho_height: float = 2.5
    principal_point: tuple[float, float] | None = None
    near: float = 0.05  # metres; points closer than this (or behind the eye) do not project

    @property
    def is_orthographic(self) -> bool:
        return self.fov_deg is None

    @property
    def center(self) -> tuple[float, float]:
        """(cx, cy) principal point in pixels."""
        if self.principal_point is not None:
            return (float(self.principal_point[0]), float(self.principal_point[1]))
        return (self.width / 2.0, self.height / 2.0)

    @property
    def focal_px(self) -> float:
        """Pixels per unit of (camera x / depth) for perspective; pixels per metre when orthographic."""
        if self.is_orthographic:
            return self.height / self.ortho_height
        return (self.height / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)

    @property
    def eye_offset(self) -> np.ndarray:
        """(3,) vector from the target to the eye."""
        azimuth, elevation = math.radians(self.azimuth_deg), math.radians(self.elevation_deg)
        return self.distance * np.array(
            [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
        )

    @property
    def eye(self) -> np.ndarray:
        return np.asarray(self.target, np.float64) + self.eye_offset

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) world-to-camera rotation; rows are the camera's right, up and backward axes in world."""
        return _look_rotation(self.eye_offset)

    @property
    def pose_matrix(self) -> np.ndarray:
        """(4, 4) camera-to-world transform (what pyrender's camera node expects)."""
        pose = np.eye(4)
        pose[:3, :3] = self.rotation.T
        pose[:3, 3] = self.eye
        return pose

    @property
    def view_matrix(self) -> np.ndarray:
        """(4, 4) world-to-camera transform."""
        return np.linalg.inv(self.pose_matrix)

    def with_target(self, target) -> "Camera":
        return dataclasses.replace(self, target=tuple(float(v) for v in target))

    def scaled(self, factor: int) -> "Camera":
        """The same view rendered at ``factor`` times the pixel resolution."""
        cx, cy = self.center
        return dataclasses.replace(self, width=self.width * factor, height=self.height * factor,
                                   principal_point=(cx * factor, cy * factor))


def _look_rotation(eye_offset: np.ndarray) -> np.ndarray:
    """(3, 3) world-to-camera rotation for an eye at ``target + eye_offset`` looking at the target."""
    backward = eye_offset / np.linalg.norm(eye_offset)  # camera +z points from the target to the eye
    right = np.cross(_WORLD_UP, backward)
    if np.linalg.norm(right) < 1e-8:
        raise ValueError("camera elevation of +-90 degrees is degenerate with a y-up world; use |elevation| < 90")
    right /= np.linalg.norm(right)
    up = np.cross(backward, right)
    return np.stack([right, up, backward])


def _to_camera_space(points: np.ndarray, eyes: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """points (..., N, 3), eyes (..., 3) broadcastable per leading index -> (..., N, 3) camera coordinates."""
    return (points - eyes[..., None, :]) @ rotation.T


def _camera_to_pixels(camera_points: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) camera-space points -> (..., 2) pixel coordinates (x right, y down); NaN where not visible."""
    cx, cy = camera.center
    x, y = camera_points[..., 0], camera_points[..., 1]
    depth = -camera_points[..., 2]  # distance in front of the eye along the view direction
    if camera.is_orthographic:
        scale = np.full_like(depth, camera.focal_px)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(depth > camera.near, camera.focal_px / depth, np.nan)
    return np.stack([cx + x * scale, cy - y * scale], axis=-1)


def project_points(points, camera: Camera) -> np.ndarray:
    """Project world points to pixel coordinates of ``camera``.

    points: (..., 3) metres, y up. Returns (..., 2) float pixel coordinates ``(column, row)`` with
    (0, 0) at the top-left corner of the image; NaN for points behind the near plane (perspective).
    The renderers draw exactly where this function says.
    """
    points = np.asarray(points, np.float64)
    if points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {points.shape}")
    flat = points.reshape(1, -1, 3)  # (1, N, 3)
    camera_points = _to_camera_space(flat, camera.eye[None], camera.rotation)  # (1, N, 3)
    return _camera_to_pixels(camera_points, camera).reshape(*points.shape[:-1], 2)


def smooth_along_time(values: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian-smooth (T, ...) values along axis 0 (edge values repeated). sigma 0 returns a copy."""
    values = np.asarray(values, np.float64)
    if sigma_frames <= 0 or len(values) < 2:
        return values.copy()
    radius = int(math.ceil(3 * sigma_frames))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_frames) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    out = np.zeros_like(values)
    for weight, offset in zip(kernel, range(2 * radius + 1)):
        out += weight * padded[offset: offset + len(values)]
    return out


def follow_cameras(joints: np.ndarray, *, size: tuple[int, int], skeleton: Skeleton, top_band: int = 0,
                   azimuth_deg: float = 35.0, elevation_deg: float = 15.0, fov_deg: float | None = 40.0,
                   view_height: float | None = None, follow_sigma_frames: float = 6.0) -> list[Camera]:
    """One :class:`Camera` per frame that follows the (Gaussian-smoothed) root in xz.

    joints: (T, J, 3). The view fits ``view_height`` metres (default: the clip's 90th-percentile figure
    height x 1.5, at least 2.5 m) into the image below a ``top_band`` of pixels kept for text; the
    principal point sits in the middle of the area below the band. Shared by the skeleton and mesh
    renderers so both frame a clip identically.
    """
    joints = np.asarray(joints, np.float64)
    width, height = size
    root = joints[:, root_index(skeleton), :]  # (T, 3)
    target_xz = smooth_along_time(root[:, [0, 2]], follow_sigma_frames)  # (T, 2)
    # Fit the figure's typical height with head room; crouching or lying clips still get a full-body
    # view because the minimum is 2.5 m.
    heights = joints[:, :, 1].max(axis=1) - np.minimum(joints[:, :, 1].min(axis=1), 0.0)  # (T,)
    figure_height = float(np.percentile(heights, 90))
    view_height = view_height or max(2.5, 1.5 * figure_height)
    target_y = 0.5 * max(figure_height, 1.0)
    usable = max(height - top_band, 1)  # pixel rows left for the 3D view
    full_view_height = view_height * height / usable  # metres over the whole image height
    principal = (width / 2.0, top_band + usable / 2.0)
    if fov_deg is None:
        distance = 10.0  # orthographic: only the direction matters, and the eye must clear the scene
    else:
        distance = max((full_view_height / 2.0) / math.tan(math.radians(fov_deg) / 2.0), 1.5)
    base = Camera(target=(0.0, target_y, 0.0), azimuth_deg=azimuth_deg, elevation_deg=elevation_deg,
                  distance=distance, width=width, height=height, fov_deg=fov_deg,
                  ortho_height=full_view_height, principal_point=principal)
    return [base.with_target((x, target_y, z)) for x, z in target_xz]


def root_index(skeleton: Skeleton) -> int:
    """Index of the skeleton's root joint (the one without a parent)."""
    return skeleton.parents.index(-1)


# ================================================================================================= style
@dataclass(frozen=True)
class SkeletonStyle:
    """Look and camera of the stick-figure renderer. Colours are RGB 0..255; sizes in output pixels."""

    background: RGB = (248, 248, 245)
    grid_color: RGB = (178, 182, 192)  # nearest grid lines; they fade into the background with distance
    trail_color: RGB = (235, 140, 40)  # root trajectory drawn on the floor
    shadow_color: RGB = (222, 222, 218)  # soft disc on the floor under the root
    left_color: RGB = (215, 60, 55)  # chains made of skeleton.mirror_left joints
    right_color: RGB = (40, 110, 210)  # chains made of skeleton.mirror_right joints
    centre_color: RGB = (45, 45, 55)  # spine / head chains
    text_color: RGB = (30, 30, 35)
    line_width: float = 5.0  # bone thickness
    head_radius: float = 9.0  # disc drawn on the head joint
    trail_width: float = 2.5
    supersample: int = 2  # draw at this multiple of the output size, then box-downsample
    azimuth_deg: float = 35.0  # see Camera
    elevation_deg: float = 15.0
    fov_deg: float | None = 40.0  # None = orthographic
    view_height: float | None = None  # metres to fit vertically at the target; None = from the clip
    follow_sigma_frames: float = 6.0  # Gaussian smoothing of the camera's root-following target
    grid_spacing: float = 0.5  # metres between floor grid lines
    grid_radius: float = 4.0  # metres of floor drawn around the camera target
    grid_fade_levels: int = 3  # colour steps from grid_color to background
    shadow_radius: float = 0.28  # metres
    title_font_size: int = 17
    label_font_size: int = 19
    counter_font_size: int = 13
    max_title_lines: int = 3
    margin: int = 8  # pixels around text


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap_text(text: str, font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap measured in pixels, keeping explicit line breaks ("label\\ncaption").

    The last kept line gets an ellipsis if text was dropped.
    """
    lines: list[str] = []
    for paragraph in text.splitlines():
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}".strip()
            if current and font.getlength(candidate) > max_width:
                lines.append(current)
                current = word
            else:
                current = candidate
        if current:
            lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and font.getlength(last + " ...") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + " ..."
    return lines


def _line_height(font) -> int:
    ascent, descent = font.getmetrics()
    return int(ascent + descent + 2)


# ============================================================================================ validation
def _check_joints(joints, skeleton: Skeleton, name: str = "joints") -> np.ndarray:
    joints = np.asarray(joints, np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(
            f"{name} must have shape (T, {skeleton.num_joints}, 3) for skeleton {skeleton.name!r}, got {joints.shape}"
        )
    if len(joints) == 0:
        raise ValueError(f"{name} has no frames")
    if not np.isfinite(joints).all():
        bad = np.unique(np.nonzero(~np.isfinite(joints))[0])
        raise ValueError(f"{name} contains NaN/inf at frames {bad[:10].tolist()}")
    return joints


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width < 16 or height < 16:
        raise ValueError(f"size must be at least 16x16 pixels, got {size}")
    return width, height


# ================================================================================================ scene
@functools.lru_cache(maxsize=8)
def _skeleton_drawing(skeleton: Skeleton) -> tuple[tuple[tuple[int, int, str], ...], int]:
    """Bones as (parent, child, side) with side in {left, right, centre}, and the head joint index.

    The side of a chain is decided by its joints (skeleton.mirror_left / mirror_right), never by index.
    """
    left, right = set(skeleton.mirror_left), set(skeleton.mirror_right)
    bones = []
    for chain in skeleton.chains:
        members = set(chain[1:])  # the first joint is shared with the parent chain
        side = "left" if members & left else "right" if members & right else "centre"
        bones.extend((parent, child, side) for parent, child in zip(chain[:-1], chain[1:]))
    drawn = {(p, c) for p, c, _ in bones}
    # Bones no chain covers (other skeletons) are still drawn, coloured by their child joint.
    for parent, child in skeleton.bones:
        if (parent, child) not in drawn:
            side = "left" if child in left else "right" if child in right else "centre"
            bones.append((parent, child, side))
    if "head" in skeleton.joint_names:
        head = skeleton.index("head")
    else:  # the end of the longest centre chain (the spine)
        centre_chains = [c for c in skeleton.chains if not (set(c[1:]) & (left | right))]
        head = max(centre_chains, key=len)[-1] if centre_chains else skeleton.num_joints - 1
    return tuple(bones), head


class _Panel:
    """Draws the frames of one clip into PIL images of one panel size.

    All projections are computed up front in numpy (joints, floor trail) so that per-frame work is only
    Pillow drawing. ``top_band`` pixels at the top are kept free for text; the camera's principal point
    moves down to the middle of the remaining area.
    """

    def __init__(self, joints: np.ndarray, *, size: tuple[int, int], skeleton: Skeleton, style: SkeletonStyle,
                 top_band: int = 0):
        self.joints = joints  # (T, J, 3)
        self.width, self.height = size
        self.skeleton = skeleton
        self.style = style
        self.top_band = top_band
        self.num_frames = len(joints)
        self.bones, self.head = _skeleton_drawing(skeleton)
        self.cameras = follow_cameras(  # output resolution, one per frame
            joints, size=size, skeleton=skeleton, top_band=top_band, azimuth_deg=style.azimuth_deg, elevation_deg=style.elevation_deg,
            fov_deg=style.fov_deg, view_height=style.view_height, follow_sigma_frames=style.follow_sigma_frames)
        ss = max(1, int(style.supersample))
        self.ss = ss
        cam0 = self.cameras[0].scaled(ss)
        self._draw_camera = cam0  # intrinsics at the drawing resolution; the target changes per frame
        self._rotation = cam0.rotation  # (3, 3), same for all frames
        self._eyes = np.array([c.eye for c in self.cameras])  # (T, 3)
        # (T, J, 3) camera space and (T, J, 2) drawing-resolution pixels of every joint
        self._joints_camera = _to_camera_space(joints, self._eyes, self._rotation)
        self._joints_px = _camera_to_pixels(self._joints_camera, cam0)
        root = root_index(skeleton)
        self._floor_trail = np.stack([joints[:, root, 0], np.zeros(self.num_frames), joints[:, root, 2]], axis=-1)  # (T, 3)
        self._side_colors = {"left": style.left_color, "right": style.right_color, "centre": style.centre_color}
        levels = max(1, style.grid_fade_levels)
        self._grid_palette = [
            tuple(int(round(g + (b - g) * i / levels)) for g, b in zip(style.grid_color, style.background))
            for i in range(levels)
        ]
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        self._shadow_circle = np.stack([np.cos(angles), np.zeros_like(angles), np.sin(angles)], -1) * style.shadow_radius

    # ------------------------------------------------------------------------------------- drawing
    def _project(self, points: np.ndarray, frame: int) -> np.ndarray:
        """(N, 3) world -> (N, 2) drawing-resolution pixels with frame ``frame``'s camera."""
        camera_points = _to_camera_space(points[None], self._eyes[frame][None], self._rotation)[0]
        return _camera_to_pixels(camera_points, self._draw_camera)

    def _draw_grid(self, draw: ImageDraw.ImageDraw, frame: int) -> None:
        style = self.style
        spacing, radius = style.grid_spacing, style.grid_radius
        if spacing <= 0 or radius <= 0:
            return
        tx, _, tz = self.cameras[frame].target
        # Grid lines lie at multiples of the spacing (the pattern is fixed in the world and slides past
        # the following camera). They are cut at rings around the target so the colour fades outwards:
        # piece i of a line is the part between ring i and ring i + 1 (ring 0 has radius 0).
        levels = len(self._grid_palette)
        radii = radius * np.arange(1, levels + 1) / levels  # (L,) outer radius of each fade level
        segments, segment_levels = [], []
        for axis, centre, other_centre in ((0, tx, tz), (2, tz, tx)):  # lines x = c (along z), then z = c (along x)
            positions = np.arange(math.ceil((centre - radius) / spacing), math.floor((centre + radius) / spacing) + 1) * spacing
            offset = np.abs(positions - centre)  # (N,) distance of each line from the target
            half_chords = np.sqrt(np.clip(radii[None] ** 2 - offset[:, None] ** 2, 0, None))  # (N, L)
            bounds = np.concatenate([np.zeros((len(positions), 1)), half_chords], 1)  # (N, L + 1)
            for level in range(levels):
                inner, outer = bounds[:, level], bounds[:, level + 1]
                present = outer - inner > 1e-6
                sides = [(-outer, outer)] if level == 0 else [(inner, outer), (-outer, -inner)]
                for low, high in sides:
                    line_pos = positions[present]
                    a = np.zeros((present.sum(), 3))
                    b = np.zeros((present.sum(), 3))
                    a[:, axis], b[:, axis] = line_pos, line_pos
                    a[:, 2 - axis], b[:, 2 - axis] = other_centre + low[present], other_centre + high[present]
                    segments.append(np.stack([a, b], 1))
                    segment_levels.append(np.full(present.sum(), level))
        segments = np.concatenate(segments)  # (S, 2, 3) world endpoints on the floor
        fade = np.concatenate(segment_levels)  # (S,) palette index
        # clip against a near plane in front of the eye so lines under the camera stay finite
        camera_points = _to_camera_space(segments.reshape(1, -1, 3), self._eyes[frame][None], self._rotation)[0]
        camera_points = camera_points.reshape(-1, 2, 3)
        depth = -camera_points[..., 2]  # (S, 2)
        near = max(self._draw_camera.near, 0.3) if not self._draw_camera.is_orthographic else -np.inf
        visible = (depth > near).any(1)
        camera_points, depth, fade = camera_points[visible], depth[visible], fade[visible]
        behind = depth <= near
        if behind.any():
            with np.errstate(divide="ignore", invalid="ignore"):  # rows without a crossing are not used
                t = (near - depth[:, 0]) / (depth[:, 1] - depth[:, 0])  # where the segment crosses the near plane
            crossing = camera_points[:, 0] + t[:, None] * (camera_points[:, 1] - camera_points[:, 0])
            camera_points[:, 0] = np.where(behind[:, :1], crossing, camera_points[:, 0])
            camera_points[:, 1] = np.where(behind[:, 1:], crossing, camera_points[:, 1])
        pixels = _camera_to_pixels(camera_points, self._draw_camera)  # (S, 2, 2)
        width = max(1, round(self.ss * 1.0))
        for (a, b), level in zip(pixels.tolist(), fade.tolist()):
            draw.line([tuple(a), tuple(b)], fill=self._grid_palette[level], width=width)

    def _draw_floor_marks(self, draw: ImageDraw.ImageDraw, frame: int) -> None:
        style, ss = self.style, self.ss
        root = self._floor_trail[frame]
        shadow = self._project(self._shadow_circle + root, frame)
        if np.isfinite(shadow).all():
            draw.polygon([tuple(p) for p in shadow.tolist()], fill=style.shadow_color)
        if frame > 0 and style.trail_width > 0:
            # Only the recent part of the path that lies on the drawn floor disc (a trail running off
            # beyond the grid would seem to float); at most ~64 points, as it is smooth.
            target = np.asarray(self.cameras[frame].target)[[0, 2]]
            outside = np.hypot(*(self._floor_trail[: frame + 1, [0, 2]] - target).T) > style.grid_radius
            start = int(np.nonzero(outside)[0][-1]) + 1 if outside.any() else 0
            stride = max(1, (frame - start) // 64)
            indices = np.unique(np.append(np.arange(start, frame + 1, stride), frame))
            trail = self._project(self._floor_trail[indices], frame)
            trail = trail[np.isfinite(trail).all(1)]
            if len(trail) > 1:
                draw.line([tuple(p) for p in trail.tolist()], fill=style.trail_color,
                          width=max(1, round(style.trail_width * ss)))

    def _draw_figure(self, draw: ImageDraw.ImageDraw, frame: int) -> None:
        style, ss = self.style, self.ss
        pixels = self._joints_px[frame]  # (J, 2)
        depth = -self._joints_camera[frame, :, 2]  # (J,)
        width = max(1, round(style.line_width * ss))
        cap = width / 2.0
        items = []  # (depth, kind, payload); drawn far to near so nearer limbs cover farther ones
        for parent, child, side in self.bones:
            items.append(((depth[parent] + depth[child]) / 2, 0, (parent, child, self._side_colors[side])))
        items.append((depth[self.head] - 1e-3, 1, None))
        for _, kind, payload in sorted(items, key=lambda item: -item[0]):
            if kind == 0:
                parent, child, color = payload
                a, b = pixels[parent], pixels[child]
                if not (np.isfinite(a).all() and np.isfinite(b).all()):
                    continue
                draw.line([tuple(a), tuple(b)], fill=color, width=width)
                for x, y in (a, b):  # round caps
                    draw.ellipse([x - cap, y - cap, x + cap, y + cap], fill=color)
            else:
                x, y = pixels[self.head]
                if np.isfinite([x, y]).all():
                    r = style.head_radius * ss
                    draw.ellipse([x - r, y - r, x + r, y + r], fill=style.centre_color)

    def draw(self, frame: int) -> Image.Image:
        """The scene of ``frame`` (clamped to the last frame: shorter clips hold their end) at output size."""
        frame = min(max(frame, 0), self.num_frames - 1)
        ss = self.ss
        image = Image.new("RGB", (self.width * ss, self.height * ss), self.style.background)
        draw = ImageDraw.Draw(image)
        self._draw_grid(draw, frame)
        self._draw_floor_marks(draw, frame)
        self._draw_figure(draw, frame)
        return image.reduce(ss) if ss > 1 else image


class _Layout:
    """Text bands of one output image: a wrapped title across the top, then a label per panel."""

    def __init__(self, *, total_width: int, title: str | None, labels: Sequence[str | None], style: SkeletonStyle):
        self.style = style
        self.title_font = _font(style.title_font_size)
        self.label_font = _font(style.label_font_size)
        self.counter_font = _font(style.counter_font_size)
        self.title_lines = (
            _wrap_text(title, self.title_font, total_width - 2 * style.margin, style.max_title_lines) if title else []
        )
        self.title_height = (len(self.title_lines) * _line_height(self.title_font) + style.margin) if self.title_lines else 0
        self.has_labels = any(labels)
        self.label_height = (_line_height(self.label_font) + style.margin) if self.has_labels else 0

    @property
    def top_band(self) -> int:
        return self.title_height + self.label_height + (self.style.margin if (self.title_height or self.label_height) else 0)

    def draw_title(self, canvas: Image.Image) -> None:
        y = self.style.margin
        for line in self.title_lines:
            x = (canvas.width - _text_width(line, self.style.title_font_size)) / 2
            _stamp_text(canvas, (x, y), line, self.style.title_font_size, self.style.text_color)
            y += _line_height(self.title_font)

    def draw_label(self, canvas: Image.Image, label: str | None, x0: int, panel_width: int) -> None:
        if not label:
            return
        x = x0 + (panel_width - _text_width(label, self.style.label_font_size)) / 2
        y = self.style.margin + self.title_height
        _stamp_text(canvas, (x, y), label, self.style.label_font_size, self.style.text_color)

    def draw_counter(self, canvas: Image.Image, frame: int, total: int, x0: int, panel_width: int) -> None:
        text = f"{min(frame, total - 1) + 1}/{total}"
        x = x0 + panel_width - self.style.margin - _text_width(text, self.style.counter_font_size)
        y = canvas.height - self.style.margin - _line_height(self.counter_font)
        _stamp_text(canvas, (x, y), text, self.style.counter_font_size, self.style.text_color)


@functools.lru_cache(maxsize=2048)
def _text_width(text: str, font_size: int) -> float:
    return _font(font_size).getlength(text)


@functools.lru_cache(maxsize=2048)
def _text_stamp(text: str, font_size: int, color: RGB) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """Rasterise ``text`` once: (solid colour image, anti-aliased alpha mask, offset from the text origin)."""
    font = _font(font_size)
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255)
    return Image.new("RGB", mask.size, color), mask, (left, top)


def _stamp_text(canvas: Image.Image, origin: tuple[float, float], text: str, font_size: int, color: RGB) -> None:
    """Paste cached text at ``origin`` (same placement as ``ImageDraw.text(origin, ...)``)."""
    solid, mask, (dx, dy) = _text_stamp(text, font_size, tuple(color))
    canvas.paste(solid, (int(round(origin[0])) + dx, int(round(origin[1])) + dy), mask)


def _compose_frames(clips: Sequence[np.ndarray], *, labels: Sequence[str | None], size: tuple[int, int],
                    skeleton: Skeleton, style: SkeletonStyle, title: str | None,
                    show_frame_counter: bool) -> tuple[list[_Panel], _Layout, Iterator[np.ndarray]]:
    width, height = size
    layout = _Layout(total_width=width * len(clips), title=title, labels=labels, style=style)
    panels = [_Panel(c, size=size, skeleton=skeleton, style=style, top_band=layout.top_band) for c in clips]
    num_frames = max(p.num_frames for p in panels)

    def frames() -> Iterator[np.ndarray]:
        for k in range(num_frames):
            if len(panels) == 1:
                canvas = panels[0].draw(k)
            else:
                canvas = Image.new("RGB", (width * len(panels), height), style.background)
                for i, panel in enumerate(panels):
                    canvas.paste(panel.draw(k), (i * width, 0))
            layout.draw_title(canvas)
            for i, (panel, label) in enumerate(zip(panels, labels)):
                layout.draw_label(canvas, label, i * width, width)
                if show_frame_counter:
                    layout.draw_counter(canvas, k, panel.num_frames, i * width, width)
            yield np.asarray(canvas)

    return panels, layout, frames()


# ============================================================================================ public API
def frame_cameras(joints, *, size: tuple[int, int] = (640, 480), skeleton: Skeleton,
                  style: SkeletonStyle = SkeletonStyle(), title: str | None = None,
                  labels: Sequence[str | None] | None = None, num_panels: int = 1) -> list[Camera]:
    """The per-frame cameras :func:`render_video` (or one panel of :func:`render_side_by_side`) uses.

    Pass the same ``title``/``labels``/``num_panels`` as the render call: they decide the text band and
    so the principal point. ``project_points(joints[k], cameras[k])`` is where frame k is drawn (in the
    panel's own pixel coordinates).
    """
    joints = _check_joints(joints, skeleton)
    size = _check_size(size)
    layout = _Layout(total_width=size[0] * num_panels, title=title, labels=labels or [None], style=style)
    return _Panel(joints, size=size, skeleton=skeleton, style=style, top_band=layout.top_band).cameras


def render_frames(joints, *, size: tuple[int, int] = (640, 480), skeleton: Skeleton,
                  style: SkeletonStyle = SkeletonStyle(), title: str | None = None,
                  show_frame_counter: bool = False) -> Iterator[np.ndarray]:
    """Yield the (H, W, 3) uint8 frames :func:`render_video` would encode (for previews or other sinks)."""
    joints = _check_joints(joints, skeleton)
    _, _, frames = _compose_frames([joints], labels=[None], size=_check_size(size), skeleton=skeleton,
                                   style=style, title=title, show_frame_counter=show_frame_counter)
    return frames


def render_video(joints, path: str | os.PathLike, *, fps: float | None = None, title: str | None = None,
                 size: tuple[int, int] = (640, 480), skeleton: Skeleton,
                 style: SkeletonStyle = SkeletonStyle(), show_frame_counter: bool = False,
                 fmt: str | None = None) -> Path:
    """Render a (T, J, 3) joint-position motion as a stick-figure video.

    The camera follows the smoothed root over a fading floor grid; the root's trajectory is drawn on
    the floor; left/right chains use ``style.left_color``/``style.right_color``; ``title`` (e.g. the
    caption) is wrapped across the top. ``fps`` defaults to ``skeleton.fps`` (20 for HumanML3D). The
    format follows the suffix of ``path`` (``.mp4``, ``.webm``, ``.gif``) unless ``fmt`` is given. The file
    appears atomically. Returns the path.
    """
    return render_side_by_side([joints], [None], path, fps=fps, title=title, size=size, skeleton=skeleton,
                               style=style, show_frame_counter=show_frame_counter, fmt=fmt)


def render_side_by_side(clips: Sequence, labels: Sequence[str | None] | None, path: str | os.PathLike, *,
                        fps: float | None = None, title: str | None = None, size: tuple[int, int] = (640, 480),
                        skeleton: Skeleton, style: SkeletonStyle = SkeletonStyle(),
                        show_frame_counter: bool = False, fmt: str | None = None,
                        panel_paths: Sequence[str | os.PathLike | None] | None = None) -> Path:
    """N synchronised panels (e.g. "AdaCLIP" vs "vanilla"), each ``size``, side by side.

    The output is ``(N * width, height)``. A label is written at the top of each panel; shorter clips
    hold their last frame until the longest one ends, so the video has ``max(T_i)`` frames.

    ``panel_paths`` (one entry per clip, ``None`` to skip) also writes each panel as its own video with the
    title and its label, from the *same* drawn frames: every scene is drawn once for all outputs, and the
    encoders run side by side in their own ffmpeg processes (the app's three videos cost about one render).
    """
    if len(clips) == 0:
        raise ValueError("render_side_by_side needs at least one clip")
    labels = list(labels) if labels is not None else [None] * len(clips)
    if len(labels) != len(clips):
        raise ValueError(f"got {len(clips)} clips but {len(labels)} labels")
    panel_paths = list(panel_paths) if panel_paths is not None else [None] * len(clips)
    if len(panel_paths) != len(clips):
        raise ValueError(f"got {len(clips)} clips but {len(panel_paths)} panel paths")
    clips = [_check_joints(c, skeleton, name=f"clip {i}") for i, c in enumerate(clips)]
    size = _check_size(size)
    fps = float(fps or skeleton.fps)
    started = time.perf_counter()
    if not any(panel_paths):
        panels, _, frames = _compose_frames(clips, labels=labels, size=size, skeleton=skeleton, style=style,
                                            title=title, show_frame_counter=show_frame_counter)
        with VideoWriter(path, fps=fps, fmt=fmt) as writer:
            writer.extend(frames)
        frames_written = writer.frames_written
    else:
        frames_written = _render_with_panel_videos(clips, labels, path, panel_paths, fps=fps, title=title, size=size,
                                                   skeleton=skeleton, style=style, fmt=fmt,
                                                   show_frame_counter=show_frame_counter)
        panels = clips
    elapsed = time.perf_counter() - started
    logger.info("rendered %d frames x %d panel(s) to %s in %.2f s (%.0f frames/s)", frames_written,
                len(panels), path, elapsed, frames_written / max(elapsed, 1e-9))
    return Path(path)


def _render_with_panel_videos(clips, labels, path, panel_paths, *, fps, title, size, skeleton, style, fmt,
                              show_frame_counter) -> int:
    width, height = size
    side_layout = _Layout(total_width=width * len(clips), title=title, labels=labels, style=style)
    own_layouts = [_Layout(total_width=width, title=title, labels=[label], style=style) for label in labels]
    # One text band tall enough for the side-by-side and every single-panel title: the figure sits at the
    # same place in all outputs.
    top_band = max([side_layout.top_band] + [layout.top_band for layout in own_layouts])
    panels = [_Panel(c, size=size, skeleton=skeleton, style=style, top_band=top_band) for c in clips]
    num_frames = max(panel.num_frames for panel in panels)
    with contextlib.ExitStack() as stack:
        side_writer = stack.enter_context(VideoWriter(path, fps=fps, fmt=fmt))
        own_writers = {i: stack.enter_context(VideoWriter(p, fps=fps, fmt=fmt))
                       for i, p in enumerate(panel_paths) if p is not None}
        for k in range(num_frames):
            drawn = [panel.draw(k) for panel in panels]  # each scene drawn once per frame
            canvas = Image.new("RGB", (width * len(panels), height), style.background)
            for i, image in enumerate(drawn):
                canvas.paste(image, (i * width, 0))
            side_layout.draw_title(canvas)
            for i, (panel, label) in enumerate(zip(panels, labels)):
                side_layout.draw_label(canvas, label, i * width, width)
                if show_frame_counter:
                    side_layout.draw_counter(canvas, k, panel.num_frames, i * width, width)
            side_writer.append(np.asarray(canvas))
            for i, writer in own_writers.items():
                own = drawn[i]  # not reused after this: text goes straight onto it
                own_layouts[i].draw_title(own)
                own_layouts[i].draw_label(own, labels[i], 0, width)
                if show_frame_counter:
                    own_layouts[i].draw_counter(own, k, panels[i].num_frames, 0, width)
                writer.append(np.asarray(own))
        return side_writer.frames_written


def render_keyframe_strip(joints, path_png: str | os.PathLike, n: int = 8, *, panel_size: tuple[int, int] = (200, 280),
                          title: str | None = None, skeleton: Skeleton,
                          style: SkeletonStyle = SkeletonStyle(), fps: float | None = None) -> Path:
    """A PNG of ``n`` evenly spaced keyframes side by side, each labelled with its time in seconds.

    The image is ``(n * panel_width, panel_height)``; ``n`` is capped at the clip length. Written atomically.
    """
    joints = _check_joints(joints, skeleton)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    panel_size = _check_size(panel_size)
    fps = float(fps or skeleton.fps)
    n = min(n, len(joints))
    indices = np.unique(np.round(np.linspace(0, len(joints) - 1, n)).astype(int))
    width, height = panel_size
    labels = [f"{k / fps:.1f} s" for k in indices]
    layout = _Layout(total_width=width * len(indices), title=title, labels=labels, style=style)
    panel = _Panel(joints, size=panel_size, skeleton=skeleton, style=style, top_band=layout.top_band)
    strip = Image.new("RGB", (width * len(indices), height), style.background)
    for i, k in enumerate(indices):
        strip.paste(panel.draw(int(k)), (i * width, 0))
    layout.draw_title(strip)
    draw = ImageDraw.Draw(strip)
    for i, label in enumerate(labels):
        layout.draw_label(strip, label, i * width, width)
        if i:  # thin separators between panels
            draw.line([(i * width, layout.top_band), (i * width, height)], fill=style.grid_color, width=1)
    with atomic_file(path_png, suffix=".partial.png") as tmp:
        strip.save(tmp, format="PNG")
    return Path(path_png)


# ========================================================================================= naive baseline
def render_naive_matplotlib(joints, path: str | os.PathLike, *, fps: float | None = None, title: str | None = None,
                            size: tuple[int, int] = (640, 480), skeleton: Skeleton,
                            style: SkeletonStyle = SkeletonStyle(), dpi: int = 100) -> Path:
    """The plain matplotlib ``FuncAnimation`` 3D renderer of the same clip (benchmark baseline only).

    Redraws a 3D axes per frame and pipes the canvas through matplotlib's ``FFMpegWriter`` (H.264,
    yuv420p). Correct but slow; use :func:`render_video` in the product.
    """
    import imageio_ffmpeg
    import matplotlib
    from matplotlib import animation
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    joints = _check_joints(joints, skeleton)
    fps = float(fps or skeleton.fps)
    matplotlib.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
    bones, _ = _skeleton_drawing(skeleton)
    colors = {side: np.array(getattr(style, f"{side}_color")) / 255.0 for side in ("left", "right", "centre")}
    width, height = _check_size(size)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.add_subplot(projection="3d")
    half = 1.2  # metres shown around the root

    def update(frame: int):
        axes.cla()
        root = joints[frame, 0]
        # matplotlib's 3D axes are z-up: plot (x, z, y)
        axes.set_xlim(root[0] - half, root[0] + half)
        axes.set_ylim(root[2] - half, root[2] + half)
        axes.set_zlim(0, 2 * half)
        axes.view_init(elev=style.elevation_deg, azim=style.azimuth_deg + 90)
        if title:
            axes.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=9)
        axes.plot(joints[: frame + 1, 0, 0], joints[: frame + 1, 0, 2], np.zeros(frame + 1), color=np.array(style.trail_color) / 255)
        for parent, child, side in bones:
            segment = joints[frame, [parent, child]]
            axes.plot(segment[:, 0], segment[:, 2], segment[:, 1], color=colors[side], linewidth=3)
        return []

    anim = animation.FuncAnimation(fig, update, frames=len(joints), interval=1000 / fps, blit=False)
    with atomic_file(path, suffix=".partial.mp4") as tmp:
        writer = animation.FFMpegWriter(fps=fps, codec="libx264", extra_args=["-pix_fmt", "yuv420p"])
        anim.save(str(tmp), writer=writer, dpi=dpi)
    return Path(path)
