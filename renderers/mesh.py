"""Shaded body videos through pyrender's offscreen renderer (OSMesa on CPU, EGL on request).

Two bodies:

* **capsule body** (default, always available, torch-free): one capsule per bone (radius by chain
  kind: torso, leg, arm) and a sphere for the head. The capsule meshes are built once per video, at
  the clip's median bone lengths (a unit capsule cannot be stretched without distorting its round
  caps); each frame only the nodes' rigid poses change, so nothing is re-uploaded to OpenGL.
* **SMPL body**, when the licensed SMPL files are found (``smpl_dir`` or ``$ADAMOTION_SMPL_DIR``): the
  joints are fitted with :func:`renderers.smpl_fit.fit_smpl_to_joints` (torch + smplx, imported only
  then) and the skinned mesh is drawn.

Frame = floor layer + body layer. The checkerboard floor plane (fading with distance) and the body's
planar shadow (bones projected onto y = 0 along the key light) are drawn with Pillow through the same
:class:`~renderers.skeleton.Camera`; pyrender draws only the lit body (key directional light + fill
point light following the camera) with a transparent background, and the body is composited over the
floor. On a CPU (OSMesa) this is ~4x faster than shading a floor mesh and a shadow map in OpenGL.

OpenGL platform: pyrender reads ``PYOPENGL_PLATFORM`` when OpenGL is first imported. If it is unset
this module sets ``osmesa`` (software rendering, works on any CPU machine, needs ``libosmesa6``) before
importing pyrender. Set ``PYOPENGL_PLATFORM=egl`` yourself to render on a GPU.

Threads: every call creates its own ``OffscreenRenderer`` and destroys it before returning; all
OpenGL work (create, render, delete) runs under one module-level lock, so calls from several threads
(e.g. Gradio workers) are safe with OSMesa and EGL alike. Floor drawing and video encoding of one call
overlap with another call's OpenGL work.

Camera and framing are shared with the skeleton renderer (:func:`renderers.skeleton.follow_cameras`),
so :func:`renderers.skeleton.project_points` with :func:`mesh_cameras` tells where a joint is drawn.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from adamotion.motion import rotations as R
from adamotion.motion.skeleton import Skeleton
from renderers.skeleton import (
    Camera,
    _camera_to_pixels,
    _check_joints,
    _check_size,
    _Layout,
    _skeleton_drawing,
    _to_camera_space,
    follow_cameras,
)
from renderers.smpl_fit import SmplModel, SmplModelError, fit_smpl_to_joints, load_smpl_model, smpl_vertices
from renderers.video import VideoWriter

logger = logging.getLogger(__name__)

__all__ = [
    "MeshStyle",
    "SMPL_DIR_ENV",
    "SMPL_DOWNLOAD_URL",
    "SmplModelError",
    "find_smpl_model",
    "fit_smpl_to_joints",
    "load_smpl_model",
    "mesh_cameras",
    "render_mesh_frames",
    "render_mesh_video",
]

SMPL_DIR_ENV = "ADAMOTION_SMPL_DIR"
SMPL_DOWNLOAD_URL = "https://smpl.is.tue.mpg.de"
# Looked for, in order, inside the SMPL folder (the smplx package layout puts them under smpl/).
SMPL_FILE_NAMES = (
    "SMPL_NEUTRAL.pkl", "SMPL_NEUTRAL.npz", "smpl/SMPL_NEUTRAL.pkl", "smpl/SMPL_NEUTRAL.npz",
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
)

_EDGE_SOFTEN = ImageFilter.BoxBlur(0.6)
_GL_LOCK = threading.RLock()  # serialises every OpenGL call of this process
_NOTICES_GIVEN: set[str] = set()  # "SMPL not found" is said once per folder, not per video


# ================================================================================================ style
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class MeshStyle:
    """Look and camera of the mesh renderer. Colours are RGB 0..255 (converted to pyrender's 0..1)."""

    background: RGB = (236, 239, 244)
    floor_colors: tuple[RGB, RGB] = ((212, 216, 224), (190, 196, 207))  # checkerboard tiles
    floor_tile: float = 0.5  # metres
    floor_radius: float = 5.0  # metres of floor drawn around the camera target (it fades out)
    floor_fade_levels: int = 4
    shadows: bool = True  # planar shadow of the bones on the floor (a few Pillow lines per frame)
    shadow_color: RGB = (160, 165, 177)
    light_direction: tuple[float, float, float] = (-0.35, -1.0, -0.45)  # key light travel direction (world)
    left_color: RGB = (215, 80, 70)
    right_color: RGB = (60, 120, 210)
    centre_color: RGB = (226, 204, 168)  # torso and head: warm, distinct from the bluish floor
    smpl_color: RGB = (226, 204, 168)  # SMPL body; the left/right sides are tinted with the colours above
    torso_radius: float = 0.075  # capsule radii in metres, by chain kind
    leg_radius: float = 0.06
    arm_radius: float = 0.042
    head_radius: float = 0.105
    capsule_sections: int = 18  # around the axis
    capsule_rings: int = 8  # per hemisphere
    key_light_intensity: float = 1.8
    fill_light_intensity: float = 2.0
    ambient: float = 0.25
    azimuth_deg: float = 35.0  # camera, as in SkeletonStyle
    elevation_deg: float = 15.0
    fov_deg: float = 40.0
    view_height: float | None = None
    follow_sigma_frames: float = 6.0
    title_font_size: int = 17
    label_font_size: int = 19
    counter_font_size: int = 13
    text_color: RGB = (30, 30, 35)
    max_title_lines: int = 3
    margin: int = 8


def _unit(color: RGB, alpha: float = 1.0) -> list[float]:
    return [c / 255.0 for c in color] + [alpha]


# ============================================================================================= platform
def _import_pyrender():
    """Import pyrender after choosing the OpenGL platform (OSMesa unless the user chose one)."""
    if "PYOPENGL_PLATFORM" not in os.environ:
        if "OpenGL" in sys.modules:
            logger.warning("OpenGL was imported before renderers.mesh could select OSMesa; offscreen rendering "
                           "may fail without a display. Set PYOPENGL_PLATFORM=osmesa (or egl) before starting.")
        else:
            os.environ["PYOPENGL_PLATFORM"] = "osmesa"
            logger.info("PYOPENGL_PLATFORM not set; using OSMesa software rendering (set it to 'egl' for a GPU)")
    try:
        import pyrender
    except Exception as err:  # missing libOSMesa, wrong PyOpenGL
        raise RuntimeError(
            f"pyrender could not be imported with PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM')!r}: {err}. "
            "On CPU machines install the OSMesa library (Debian: apt-get install libosmesa6) and PyOpenGL>=3.1.10 "
            "(pyrender pins 3.1.0, which cannot use OSMesa: install 3.1.10 in a separate pip command afterwards)."
        ) from err
    return pyrender


def _context_id() -> int | object:
    """A hashable, stable identifier of the current OpenGL context."""
    import ctypes

    import OpenGL.contextdata

    context = OpenGL.contextdata.getContext()
    try:
        return ctypes.cast(context, ctypes.c_void_p).value
    except (TypeError, ctypes.ArgumentError):
        return context


def _stable_program_cache(pyrender):
    """A pyrender shader-program cache whose keys do not change between calls.

    pyrender keys its cache with ``OpenGL.contextdata.getContext()``, which with PyOpenGL 3.1.10 on
    OSMesa returns a *new* ctypes pointer object on every call. Every draw call then misses the cache
    and compiles (and leaks) a fresh shader program: ~5 ms and ~3 MB per draw, i.e. seconds and GBs for
    a capsule body. This cache looks programs up by the context's address instead.
    """
    from pyrender.shader_program import ShaderProgramCache

    class StableShaderProgramCache(ShaderProgramCache):
        def __init__(self):
            super().__init__()
            self._by_stable_key = {}

        def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
            defines = defines or {}
            key = (_context_id(), vertex_shader, fragment_shader, geometry_shader, tuple(sorted(defines.items())))
            program = self._by_stable_key.get(key)
            if program is None:
                program = super().get_program(vertex_shader, fragment_shader, geometry_shader, defines)
                self._by_stable_key[key] = program
            return program

        def clear(self):
            super().clear()
            self._by_stable_key = {}

    return StableShaderProgramCache()


def _new_offscreen_renderer(pyrender, width: int, height: int):
    """An ``OffscreenRenderer`` with the stable program cache installed (call under ``_GL_LOCK``)."""
    renderer = pyrender.OffscreenRenderer(viewport_width=width, viewport_height=height)
    inner = getattr(renderer, "_renderer", None)
    if inner is not None and hasattr(inner, "_program_cache"):
        inner._program_cache = _stable_program_cache(pyrender)
    else:  # a pyrender that changed its internals: still works, maybe slowly
        logger.warning("pyrender internals changed; cannot install the stable shader cache (rendering may be slow)")
    return renderer


# ================================================================================================= SMPL
def find_smpl_model(smpl_dir: str | os.PathLike | None = None) -> Path | None:
    """The SMPL model file in ``smpl_dir`` (or ``$ADAMOTION_SMPL_DIR``), or None. A file path is accepted too."""
    folder = smpl_dir if smpl_dir is not None else os.environ.get(SMPL_DIR_ENV)
    if not folder:
        return None
    folder = Path(folder).expanduser()
    if folder.is_file():
        return folder
    for name in SMPL_FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def _smpl_notice(smpl_dir: str | os.PathLike | None) -> None:
    folder = smpl_dir if smpl_dir is not None else os.environ.get(SMPL_DIR_ENV)
    where = str(folder) if folder else f"(no --smpl-dir or ${SMPL_DIR_ENV} given)"
    if where in _NOTICES_GIVEN:
        return
    _NOTICES_GIVEN.add(where)
    logger.warning("SMPL model files not found in %s; rendering a capsule body. Download SMPL_NEUTRAL.pkl from "
                   "%s and pass --smpl-dir", where, SMPL_DOWNLOAD_URL)


# ================================================================================================ scene
def _pyrender_mesh(pyrender, trimesh_mesh, **kwargs):
    """``pyrender.Mesh.from_trimesh`` with its bounds filled in.

    pyrender 0.1.45 computes ``Mesh.bounds`` with ``np.infty``, which numpy 2 removed; the scene needs
    the bounds for shadow maps. Pre-filling the mesh's bounds cache from its primitives avoids that path.
    """
    mesh = pyrender.Mesh.from_trimesh(trimesh_mesh, **kwargs)
    bounds = np.array([p.bounds for p in mesh.primitives])  # (P, 2, 3)
    mesh._bounds = np.stack([bounds[:, 0].min(0), bounds[:, 1].max(0)])
    return mesh


def _rotation_z_to(directions: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations taking +z onto each (N, 3) unit direction."""
    return R.matrix_between(np.broadcast_to(np.array([0.0, 0.0, 1.0]), directions.shape), directions)


def _bone_kinds(skeleton: Skeleton) -> dict[tuple[int, int], tuple[str, str]]:
    """(parent, child) -> (side, kind) with kind torso / leg / arm, from the chains (no joint numbers).

    Centre chains are torso; side chains that start at the root are legs; other side chains are arms.
    """
    bones, _ = _skeleton_drawing(skeleton)
    root = skeleton.parents.index(-1)
    chain_start = {}
    for chain in skeleton.chains:
        for parent, child in zip(chain[:-1], chain[1:]):
            chain_start[(parent, child)] = chain[0]
    kinds = {}
    for parent, child, side in bones:
        if side == "centre":
            kind = "torso"
        else:
            kind = "leg" if chain_start.get((parent, child), root) == root else "arm"
        kinds[(parent, child)] = (side, kind)
    return kinds


class _FloorPainter:
    """Draws the floor layer with Pillow: fading checkerboard on y = 0 plus the body's planar shadow."""

    def __init__(self, style: MeshStyle, size: tuple[int, int]):
        self.style = style
        self.size = size
        levels = max(1, style.floor_fade_levels)
        self.levels = levels

        def fade(color: RGB, level: int) -> RGB:
            return tuple(int(round(c + (b - c) * level / levels)) for c, b in zip(color, style.background))

        self.palette = [[fade(color, level) for level in range(levels)] for color in style.floor_colors]  # [2][L]
        light = np.asarray(style.light_direction, np.float64)
        if light[1] >= 0:
            raise ValueError(f"light_direction must point downwards (negative y), got {style.light_direction}")
        self.light = light / np.linalg.norm(light)
        angles = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        self.unit_circle = np.stack([np.cos(angles), np.zeros_like(angles), np.sin(angles)], -1)  # (72, 3)

    def draw(self, camera: Camera, shadow_segments: list[tuple[np.ndarray, np.ndarray, float]]) -> Image.Image:
        style = self.style
        image = Image.new("RGB", self.size, style.background)
        draw = ImageDraw.Draw(image)
        target = np.array([camera.target[0], 0.0, camera.target[2]])
        radius, tile = style.floor_radius, style.floor_tile

        # Everything on the floor is projected in one batch: ring outlines, tile corners, shadow ends.
        rings = target + self.unit_circle[None] * (radius * np.arange(1, self.levels + 1) / self.levels)[:, None, None]  # (L, C, 3)
        first = np.floor((target[[0, 2]] - radius) / tile).astype(int)
        last = np.ceil((target[[0, 2]] + radius) / tile).astype(int)
        ii, kk = np.meshgrid(np.arange(first[0], last[0]), np.arange(first[1], last[1]), indexing="ij")
        odd = (ii + kk) % 2 == 1  # tiles of the second colour (checkerboard parity)
        ii, kk = ii[odd], kk[odd]
        distance = np.hypot((ii + 0.5) * tile - target[0], (kk + 0.5) * tile - target[2])  # (N,) tile centre
        inside = distance < radius
        ii, kk, distance = ii[inside], kk[inside], distance[inside]
        corners = np.zeros((len(ii), 4, 3))  # (N, 4, 3) counter-clockwise seen from above
        for index, (dx, dz) in enumerate(((0, 0), (0, 1), (1, 1), (1, 0))):
            corners[:, index, 0] = (ii + dx) * tile
            corners[:, index, 2] = (kk + dz) * tile
        if style.shadows and shadow_segments:
            ends = np.array([[a, b] for a, b, _ in shadow_segments], np.float64).reshape(-1, 3)  # (2S, 3)
            shadows = ends - self.light[None] * (ends[:, 1:2] / self.light[1])  # along the light onto y = 0
            shadows[:, 1] = 0.0
        else:
            shadows = np.zeros((0, 3))
        points = np.concatenate([rings.reshape(-1, 3), corners.reshape(-1, 3), shadows])  # (P, 3)
        camera_points = _to_camera_space(points[None], camera.eye[None], camera.rotation)[0]
        # near plane 0.3 m: anything closer to the eye is far below the image for usual cameras
        pixels = _camera_to_pixels(camera_points, dataclasses.replace(camera, near=0.3))  # (P, 2)
        depth = -camera_points[:, 2]
        ring_px, rest = np.split(pixels, [rings.shape[0] * rings.shape[1]])
        tile_px, shadow_px = np.split(rest, [len(corners) * 4])
        shadow_depth = depth[len(points) - len(shadows):]

        # 1. discs of the first tile colour, outermost (most faded) first
        for level in reversed(range(self.levels)):
            ring = ring_px.reshape(self.levels, -1, 2)[level]
            ring = ring[np.isfinite(ring).all(-1)]
            if len(ring) > 2:
                draw.polygon([tuple(p) for p in ring.tolist()], fill=self.palette[0][level])
        # 2. tiles of the second colour, faded by distance; tiles reaching behind the near plane are
        #    below the image and skipped rather than clipped
        tile_px = tile_px.reshape(-1, 4, 2)
        visible = np.isfinite(tile_px).all((-1, -2))
        levels = np.minimum((distance / radius * self.levels).astype(int), self.levels - 1)
        for quad, level in zip(tile_px[visible].tolist(), levels[visible].tolist()):
            draw.polygon([tuple(p) for p in quad], fill=self.palette[1][level])
        # 3. planar shadow: each bone is a capsule of its radius; width in pixels at its depth
        for index, (_, _, bone_radius) in enumerate(shadow_segments if len(shadows) else []):
            (x0, y0), (x1, y1) = shadow_px[2 * index: 2 * index + 2].tolist()
            if not np.isfinite([x0, y0, x1, y1]).all():
                continue
            width = 2 * bone_radius * camera.focal_px / float(shadow_depth[2 * index: 2 * index + 2].mean())
            cap = width / 2
            draw.line([(x0, y0), (x1, y1)], fill=style.shadow_color, width=max(1, int(round(width))))
            for x, y in ((x0, y0), (x1, y1)):
                draw.ellipse([x - cap, y - cap, x + cap, y + cap], fill=style.shadow_color)
        return image


class _BodyScene:
    """The pyrender scene: lights, camera and a transparent background (the floor is composited later)."""

    def __init__(self, pyrender, *, style: MeshStyle):
        import trimesh

        self.pyrender = pyrender
        self.trimesh = trimesh
        self.style = style
        # clear to the mid floor colour: the softened silhouette blends a little of it into the floor
        clear = tuple(int(np.mean(c)) for c in zip(*style.floor_colors))
        self.scene = pyrender.Scene(bg_color=_unit(clear, alpha=0.0), ambient_light=[style.ambient] * 3)
        key = np.eye(4)  # a directional light shines along its node's -z axis
        key[:3, :3] = _rotation_z_to(-np.asarray(style.light_direction, np.float64)[None]
                                     / np.linalg.norm(style.light_direction))[0]
        self.scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=style.key_light_intensity), pose=key)
        self.fill_light = self.scene.add(pyrender.PointLight(color=np.ones(3), intensity=style.fill_light_intensity))
        self.camera_node = None

    def place(self, camera: Camera) -> None:
        """Per frame: the camera and the fill light follow the camera target (only poses change)."""
        if self.camera_node is None:
            cx, cy = camera.center
            gl_camera = self.pyrender.IntrinsicsCamera(fx=camera.focal_px, fy=camera.focal_px, cx=cx, cy=cy,
                                                       znear=0.05, zfar=100.0)
            self.camera_node = self.scene.add(gl_camera, pose=camera.pose_matrix)
        else:
            self.scene.set_pose(self.camera_node, camera.pose_matrix)
        fill = np.eye(4)
        fill[:3, 3] = camera.eye + np.array([0.0, 1.0, 0.0])
        self.scene.set_pose(self.fill_light, fill)


class _CapsuleBody:
    """One capsule per bone plus a head sphere; meshes built once, rigid node poses set per frame."""

    def __init__(self, body_scene: _BodyScene, joints: np.ndarray, skeleton: Skeleton, style: MeshStyle):
        pyrender, trimesh = body_scene.pyrender, body_scene.trimesh
        self.scene = body_scene.scene
        colors = {"left": style.left_color, "right": style.right_color, "centre": style.centre_color}
        materials = {side: pyrender.MetallicRoughnessMaterial(baseColorFactor=_unit(color), metallicFactor=0.0,
                                                              roughnessFactor=0.6) for side, color in colors.items()}
        radius_of_kind = {"torso": style.torso_radius, "leg": style.leg_radius, "arm": style.arm_radius}
        kinds = _bone_kinds(skeleton)
        self.bones = list(kinds)  # (parent, child)
        self.parents = np.array([p for p, _ in self.bones])
        self.children = np.array([c for _, c in self.bones])
        self.radii = np.array([radius_of_kind[kinds[b][1]] for b in self.bones])  # (B,)
        # (B,) median length of each bone over the clip: generated motions jitter a little; the caps
        # (radius >= 4 cm) cover the difference at the joints.
        lengths = np.median(np.linalg.norm(joints[:, self.children] - joints[:, self.parents], axis=-1), axis=0)
        self.nodes = []
        for (parent, child), radius, length in zip(self.bones, self.radii, lengths):
            capsule = trimesh.creation.capsule(height=max(float(length), 1e-4), radius=float(radius),
                                               count=[style.capsule_sections, style.capsule_rings])
            capsule.apply_translation([0.0, 0.0, float(length) / 2])  # from the parent joint (z=0) to the child (z=L)
            self.nodes.append(self.scene.add(_pyrender_mesh(pyrender, capsule, material=materials[kinds[(parent, child)][0]])))
        _, self.head = _skeleton_drawing(skeleton)
        self.head_radius = style.head_radius
        head = trimesh.creation.icosphere(subdivisions=2, radius=style.head_radius)
        self.head_node = self.scene.add(_pyrender_mesh(pyrender, head, material=materials["centre"]))

    def pose(self, joints: np.ndarray) -> None:
        """Move every node to the (J, 3) joint positions of one frame (rigid transforms only)."""
        vectors = joints[self.children] - joints[self.parents]  # (B, 3)
        directions = vectors / np.maximum(np.linalg.norm(vectors, axis=-1), 1e-9)[:, None]
        poses = np.zeros((len(self.bones), 4, 4))
        poses[:, :3, :3] = _rotation_z_to(directions)  # (B, 3, 3)
        poses[:, :3, 3] = joints[self.parents]
        poses[:, 3, 3] = 1.0
        for node, pose in zip(self.nodes, poses):
            self.scene.set_pose(node, pose)
        head = np.eye(4)
        head[:3, 3] = joints[self.head]
        self.scene.set_pose(self.head_node, head)

    def shadow_segments(self, joints: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        segments = [(joints[p], joints[c], r) for p, c, r in zip(self.parents, self.children, self.radii)]
        segments.append((joints[self.head], joints[self.head], self.head_radius))
        return segments


class _SmplBody:
    """The fitted SMPL mesh; its vertices change per frame, so its mesh node is replaced per frame."""

    def __init__(self, body_scene: _BodyScene, model: SmplModel, vertices: np.ndarray, skeleton: Skeleton,
                 style: MeshStyle):
        self.pyrender, self.trimesh = body_scene.pyrender, body_scene.trimesh
        self.scene = body_scene.scene
        self.faces = model.faces
        self.vertices = vertices  # (T, V, 3)
        # tint each vertex by the side of its dominant skinning joint (left/right/centre)
        dominant = np.argmax(model.weights, axis=1)  # (V,)
        left, right = set(skeleton.mirror_left), set(skeleton.mirror_right)
        base, tint_left, tint_right = (np.array(c, float) for c in (style.smpl_color, style.left_color, style.right_color))
        colors = np.repeat(base[None], len(dominant), 0)
        for joint in range(model.num_joints):
            ancestor = joint  # joints beyond the skeleton (hands) take their nearest skeleton ancestor's side
            while ancestor >= skeleton.num_joints:
                ancestor = int(model.parents[ancestor])
            tint = tint_left if ancestor in left else tint_right if ancestor in right else None
            if tint is not None:
                colors[dominant == joint] = 0.6 * base + 0.4 * tint
        self.colors = np.concatenate([colors, np.full((len(colors), 1), 255.0)], 1).astype(np.uint8)
        self.material = self.pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                                metallicFactor=0.0, roughnessFactor=0.7)
        self.node = None
        kinds = _bone_kinds(skeleton)
        radius_of_kind = {"torso": 1.4 * style.torso_radius, "leg": style.leg_radius, "arm": style.arm_radius}
        self.shadow_bones = [(p, c, radius_of_kind[kinds[(p, c)][1]]) for p, c in kinds]

    def pose(self, frame: int) -> None:
        # A primitive built directly: pyrender.Mesh.from_trimesh ignores vertex colours when a material
        # is given (and switches to alpha blending when none is).
        mesh = self.trimesh.Trimesh(vertices=self.vertices[frame], faces=self.faces, process=False)
        primitive = self.pyrender.Primitive(positions=mesh.vertices, normals=mesh.vertex_normals, indices=self.faces,
                                            color_0=self.colors / 255.0, material=self.material)
        body = self.pyrender.Mesh([primitive])
        body._bounds = np.stack([mesh.vertices.min(0), mesh.vertices.max(0)])  # see _pyrender_mesh
        if self.node is not None:
            self.scene.remove_node(self.node)
        self.node = self.scene.add(body)

    def shadow_segments(self, joints: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, float]]:
        return [(joints[p], joints[c], r) for p, c, r in self.shadow_bones]


# ============================================================================================ public API
def mesh_cameras(joints, *, size: tuple[int, int] = (640, 480), skeleton: Skeleton,
                 style: MeshStyle = MeshStyle(), title: str | None = None) -> list[Camera]:
    """The per-frame cameras :func:`render_mesh_video` uses (same ``title`` -> same framing)."""
    joints = _check_joints(joints, skeleton)
    size = _check_size(size)
    layout = _Layout(total_width=size[0], title=title, labels=[None], style=style)
    return follow_cameras(joints, size=size, skeleton=skeleton, top_band=layout.top_band, azimuth_deg=style.azimuth_deg,
                          elevation_deg=style.elevation_deg, fov_deg=style.fov_deg, view_height=style.view_height,
                          follow_sigma_frames=style.follow_sigma_frames)


def render_mesh_frames(joints, *, smpl_dir: str | os.PathLike | None = None, size: tuple[int, int] = (640, 480),
                       title: str | None = None, skeleton: Skeleton, style: MeshStyle = MeshStyle(),
                       show_frame_counter: bool = False) -> Iterator[np.ndarray]:
    """Yield (H, W, 3) uint8 frames of the shaded body (see :func:`render_mesh_video`).

    The SMPL model is looked up, loaded and fitted before the first frame is yielded, so a bad model
    file raises :class:`SmplModelError` here rather than mid-video.
    """
    joints = _check_joints(joints, skeleton)
    size = _check_size(size)
    if style.fov_deg is None:
        raise ValueError("the mesh renderer needs a perspective camera (MeshStyle.fov_deg)")
    smpl_path = find_smpl_model(smpl_dir)
    body_vertices, model = None, None
    if smpl_path is None:
        _smpl_notice(smpl_dir)
    else:
        model = load_smpl_model(smpl_path)  # raises SmplModelError with an explanation
        poses, trans = fit_smpl_to_joints(joints, model, skeleton=skeleton)
        body_vertices = smpl_vertices(model, poses, trans)
        logger.info("rendering the SMPL body from %s", smpl_path)
    return _render_frames(joints, size=size, title=title, skeleton=skeleton, style=style, model=model,
                          body_vertices=body_vertices, show_frame_counter=show_frame_counter)


def _render_frames(joints: np.ndarray, *, size, title, skeleton, style, model, body_vertices,
                   show_frame_counter: bool) -> Iterator[np.ndarray]:
    pyrender = _import_pyrender()
    layout = _Layout(total_width=size[0], title=title, labels=[None], style=style)
    cameras = follow_cameras(joints, size=size, skeleton=skeleton, top_band=layout.top_band, azimuth_deg=style.azimuth_deg,
                             elevation_deg=style.elevation_deg, fov_deg=style.fov_deg, view_height=style.view_height,
                             follow_sigma_frames=style.follow_sigma_frames)
    floor = _FloorPainter(style, size)
    body_scene = _BodyScene(pyrender, style=style)
    if body_vertices is None:
        body = _CapsuleBody(body_scene, joints, skeleton, style)
        pose_frame = lambda k: body.pose(joints[k])  # noqa: E731
    else:
        body = _SmplBody(body_scene, model, body_vertices, skeleton, style)
        pose_frame = body.pose
    # The body layer's mask comes from the depth buffer (0 where nothing was drawn): pyrender returns
    # no alpha channel on OSMesa (it reads the window framebuffer, without the RGBA path).
    flags = pyrender.RenderFlags.NONE
    with _GL_LOCK:
        renderer = _new_offscreen_renderer(pyrender, size[0], size[1])
    try:
        for k in range(len(joints)):
            pose_frame(k)
            body_scene.place(cameras[k])
            with _GL_LOCK:
                color, depth = renderer.render(body_scene.scene, flags=flags)  # (H, W, 3) uint8, (H, W) float
            canvas = floor.draw(cameras[k], body.shadow_segments(joints[k]))
            # a slightly blurred coverage mask softens the body's silhouette against the floor
            mask = Image.fromarray(((depth > 0) * 255).astype(np.uint8)).filter(_EDGE_SOFTEN)
            canvas.paste(Image.fromarray(np.ascontiguousarray(color)), (0, 0), mask)
            layout.draw_title(canvas)
            if show_frame_counter:
                layout.draw_counter(canvas, k, len(joints), 0, size[0])
            yield np.asarray(canvas)
    finally:
        with _GL_LOCK:
            renderer.delete()


def render_mesh_video(joints, path: str | os.PathLike, *, smpl_dir: str | os.PathLike | None = None,
                      fps: float | None = None, size: tuple[int, int] = (640, 480), title: str | None = None,
                      skeleton: Skeleton, style: MeshStyle = MeshStyle(),
                      show_frame_counter: bool = False, fmt: str | None = None) -> Path:
    """Render (T, J, 3) joints as a shaded body over a checkerboard floor, the camera following the root.

    Uses the SMPL body when an SMPL model is found in ``smpl_dir`` (default ``$ADAMOTION_SMPL_DIR``),
    otherwise logs a one-line notice (once per folder) and renders the capsule body. ``fps`` defaults to
    ``skeleton.fps``; the format follows the suffix of ``path``. The file appears atomically. Thread-safe.
    """
    started = time.perf_counter()
    fps = float(fps or skeleton.fps)
    frames = render_mesh_frames(joints, smpl_dir=smpl_dir, size=size, title=title, skeleton=skeleton, style=style,
                                show_frame_counter=show_frame_counter)
    with VideoWriter(path, fps=fps, fmt=fmt) as writer:
        writer.extend(frames)
    elapsed = time.perf_counter() - started
    logger.info("rendered %d mesh frames to %s in %.2f s (%.0f frames/s)", writer.frames_written, path, elapsed,
                writer.frames_written / max(elapsed, 1e-9))
    return Path(path)
