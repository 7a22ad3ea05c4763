"""Behavioural tests of the torch-free renderers (renderers/): videos are decoded and their pixels checked.

Clips are small (tens of frames, 160..320 px wide) so the whole file runs in well under a minute on
two shared cores.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adamotion.motion import rotations as R
from adamotion.motion.skeleton import HUMANML3D
from renderers import bench, mesh, skeleton, smpl_fit, video
from renderers.bench import synthetic_walk

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAD = HUMANML3D.index("head")
ROOT = HUMANML3D.parents.index(-1)


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    """(40, 22, 3) procedural walk on a curve (moves > 2 m)."""
    return synthetic_walk(40, skeleton=HUMANML3D)


def color_distance(pixel, color) -> float:
    return float(np.abs(np.asarray(pixel, float) - np.asarray(color, float)).max())


def count_pixels_near(frame: np.ndarray, color, tolerance: float = 40) -> int:
    return int((np.abs(frame.astype(int) - np.asarray(color)[None, None]).max(-1) < tolerance).sum())


# ================================================================================================ video
def test_video_writer_mp4_is_browser_ready_and_even_sized(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (7, 41, 63, 3), dtype=np.uint8)  # odd size
    path = video.write_video(frames, tmp_path / "clip.mp4", fps=20)
    info = video.probe_video(path)
    assert (info.frames, info.fps, info.codec, info.pix_fmt) == (7, 20.0, "h264", "yuv420p")
    assert info.size == (64, 42)  # padded to even dimensions for 4:2:0
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "+faststart must put the index before the media data"
    assert video.read_video_frames(path).shape == (7, 42, 64, 3)


def test_video_writer_is_atomic_on_failure(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous video")
    with pytest.raises(RuntimeError, match="boom"):
        with video.VideoWriter(target, fps=20) as writer:
            writer.append(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert target.read_bytes() == b"previous video", "a failed render must not touch the destination"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"], "temporary files must be removed"
    with pytest.raises(ValueError, match="unsupported video format"):
        video.VideoWriter(tmp_path / "clip.avi")


# ============================================================================================ projection
def test_project_points_perspective_and_orthographic():
    camera = skeleton.Camera(target=(1.0, 0.8, -2.0), azimuth_deg=30, elevation_deg=20, distance=4, width=200, height=100)
    assert np.allclose(skeleton.project_points(camera.target, camera), (100, 50))
    right, up, _ = camera.rotation  # world directions of the image's x and y axes
    moved = skeleton.project_points(np.asarray(camera.target) + 0.5 * right + 0.2 * up, camera)
    assert moved[0] > 100 and moved[1] < 50, "camera-right goes right, camera-up goes up (smaller row)"
    behind = camera.eye + (camera.eye - np.asarray(camera.target))
    assert np.isnan(skeleton.project_points(behind, camera)).all()
    ortho = skeleton.Camera(target=(0, 1, 0), azimuth_deg=0, elevation_deg=0, width=200, height=100,
                            fov_deg=None, ortho_height=2.0)
    near, far = skeleton.project_points([[0.5, 1, 1.0], [0.5, 1, -3.0]], ortho)
    assert np.allclose(near, far) and np.allclose(near, (125, 50)), "orthographic: 50 px per metre, no depth"


# ========================================================================================= skeleton video
def test_render_video_stream_and_pixels_follow_projection(tmp_path, walk):
    style = skeleton.SkeletonStyle()
    size = (320, 240)
    path = skeleton.render_video(walk, tmp_path / "walk.mp4", size=size, skeleton=HUMANML3D)
    info = video.probe_video(path)
    assert (info.frames, info.fps, info.size, info.codec, info.pix_fmt) == (len(walk), 20.0, size, "h264", "yuv420p")

    frames = video.read_video_frames(path)
    cameras = skeleton.frame_cameras(walk, size=size, skeleton=HUMANML3D)
    for k in (5, 25):
        column, row = np.round(skeleton.project_points(walk[k, HEAD], cameras[k])).astype(int)
        assert color_distance(frames[k, row, column], style.centre_color) < 45, f"head of frame {k} not drawn at its projection"
        assert color_distance(frames[k, 4:14, 4:14].mean((0, 1)), style.background) < 6, "far from the figure is background"
        assert count_pixels_near(frames[k], style.left_color) > 40, "left chains use the left colour"
        assert count_pixels_near(frames[k], style.right_color) > 40, "right chains use the right colour"
    # the head of frame 25 is not where frame 5's head was drawn: the drawing changes with the motion
    column, row = np.round(skeleton.project_points(walk[25, HEAD], cameras[25])).astype(int)
    assert color_distance(frames[5, row, column], style.centre_color) > 45 or \
        np.abs(frames[5].astype(int) - frames[25].astype(int)).mean() > 1

    # the camera follows the root: the root moves > 2 m but stays near the image centre
    assert np.linalg.norm(walk[-1, ROOT, [0, 2]] - walk[0, ROOT, [0, 2]]) > 2.0
    roots = np.array([skeleton.project_points(walk[k, ROOT], cameras[k]) for k in range(len(walk))])
    assert np.abs(roots[:, 0] - size[0] / 2).max() < 0.15 * size[0]


def test_render_video_title_counter_and_input_validation(tmp_path, walk):
    size = (320, 240)
    plain = next(skeleton.render_frames(walk[:2], size=size, skeleton=HUMANML3D))
    titled = next(skeleton.render_frames(walk[:2], size=size, title="a person walks forward and turns left",
                                         show_frame_counter=True, skeleton=HUMANML3D))
    band = slice(0, 30)
    assert np.abs(titled[band].astype(int) - plain[band].astype(int)).max() > 100, "title text is drawn at the top"
    assert titled[-20:, -60:].min() < 120, "frame counter is drawn bottom right"

    def text_rows(frame: np.ndarray) -> int:  # number of separate runs of rows holding dark text pixels
        dark = (frame[:70] < 120).all(-1).any(-1).astype(int)
        return int((np.diff(np.concatenate([[0], dark])) == 1).sum())

    one_line = next(skeleton.render_frames(walk[:1], size=size, title="AdaCLIP walks", skeleton=HUMANML3D))
    two_lines = next(skeleton.render_frames(walk[:1], size=size, title="AdaCLIP\nwalks", skeleton=HUMANML3D))
    assert (text_rows(one_line), text_rows(two_lines)) == (1, 2), "explicit line breaks in the title are kept"
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        skeleton.render_video(walk[:, :21], tmp_path / "bad.mp4", skeleton=HUMANML3D)
    broken = walk.copy()
    broken[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        skeleton.render_video(broken, tmp_path / "bad.mp4", skeleton=HUMANML3D)
    assert not (tmp_path / "bad.mp4").exists()


def test_side_by_side_labels_width_and_padding(tmp_path, walk):
    size = (240, 180)
    long_clip, short_clip = walk[:30], walk[10:28]  # 30 and 18 frames
    labelled = skeleton.render_side_by_side([long_clip, short_clip], ["AdaCLIP", "vanilla"], tmp_path / "ab.mp4", size=size, skeleton=HUMANML3D)
    unlabelled = skeleton.render_side_by_side([long_clip, short_clip], None, tmp_path / "plain.mp4", size=size, skeleton=HUMANML3D)
    info = video.probe_video(labelled)
    assert info.size == (2 * size[0], size[1])
    assert info.frames == 30, "the shorter clip is padded to the longer one"

    frames, plain = video.read_video_frames(labelled), video.read_video_frames(unlabelled)
    for panel in range(2):  # label area: top rows around each panel's centre
        centre = panel * size[0] + size[0] // 2
        area = (slice(4, 30), slice(centre - 40, centre + 40))
        assert frames[0][area].min() < 100, f"label of panel {panel} is drawn"
        assert color_distance(plain[0][area].mean((0, 1)), skeleton.SkeletonStyle().background) < 8
    right, left = (slice(None), slice(size[0], None)), (slice(None), slice(0, size[0]))
    held = np.abs(frames[20][right].astype(int) - frames[29][right].astype(int)).mean()
    moving = np.abs(frames[20][left].astype(int) - frames[29][left].astype(int)).mean()
    assert held < 1.0 < moving, f"the short clip holds its last frame (diff {held:.2f}) while the long one moves ({moving:.2f})"


def test_side_by_side_panel_videos_show_the_same_scenes(tmp_path, walk):
    size = (240, 180)
    clips, labels = [walk[:30], walk[10:28]], ["AdaCLIP", "vanilla"]
    panel_paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    side = skeleton.render_side_by_side(clips, labels, tmp_path / "ab.mp4", size=size, title="a person walks",
                                        panel_paths=panel_paths, skeleton=HUMANML3D)
    both = video.read_video_frames(side)
    assert both.shape == (30, size[1], 2 * size[0], 3)
    for i, path in enumerate(panel_paths):
        own = video.read_video_frames(path)
        assert own.shape == (30, size[1], size[0], 3)  # padded like the side-by-side
        scene = (slice(60, None), slice(None))  # below the text band: the very same drawing
        crop = both[:, :, i * size[0]:(i + 1) * size[0]]
        assert np.abs(own[:, scene[0]].astype(int) - crop[:, scene[0]].astype(int)).mean() < 3.0
        centre = size[0] // 2
        assert own[0][4:50, centre - 50:centre + 50].min() < 100, "each panel video carries the title and its label"
    assert np.abs(video.read_video_frames(panel_paths[0])[5].astype(int)
                  - video.read_video_frames(panel_paths[1])[5].astype(int)).mean() > 0.5  # two different clips
    with pytest.raises(ValueError, match="panel paths"):
        skeleton.render_side_by_side(clips, labels, tmp_path / "x.mp4", panel_paths=[tmp_path / "only.mp4"], skeleton=HUMANML3D)


@pytest.mark.parametrize("suffix, codec", [(".gif", "gif"), (".webm", "vp9")])
def test_gif_and_webm_outputs_decode(tmp_path, walk, suffix, codec):
    path = skeleton.render_video(walk[:12], tmp_path / f"walk{suffix}", size=(160, 120), skeleton=HUMANML3D)
    info = video.probe_video(path)
    assert (info.codec, info.frames, info.size) == (codec, 12, (160, 120))
    frames = video.read_video_frames(path)
    assert frames.shape == (12, 120, 160, 3) and frames.std() > 5


def test_keyframe_strip_png(tmp_path, walk):
    style = skeleton.SkeletonStyle()
    path = skeleton.render_keyframe_strip(walk, tmp_path / "strip.png", n=5, panel_size=(120, 160), title="walking", skeleton=HUMANML3D)
    strip = np.asarray(Image.open(path).convert("RGB"))
    assert strip.shape == (160, 5 * 120, 3)
    for panel in range(5):
        assert count_pixels_near(strip[:, panel * 120:(panel + 1) * 120], style.centre_color) > 15, f"figure in panel {panel}"


def test_naive_matplotlib_baseline_writes_h264(tmp_path, walk):
    path = skeleton.render_naive_matplotlib(walk[:4], tmp_path / "naive.mp4", size=(160, 120), skeleton=HUMANML3D)
    info = video.probe_video(path)
    assert (info.frames, info.codec, info.pix_fmt, info.size) == (4, "h264", "yuv420p", (160, 120))


# ============================================================================================= mesh video
def test_mesh_capsule_body_is_drawn_where_projected(tmp_path, walk, caplog):
    style = mesh.MeshStyle()
    size = (320, 240)
    clip = walk[:6]
    with caplog.at_level("WARNING", logger="renderers.mesh"):
        path = mesh.render_mesh_video(clip, tmp_path / "body.mp4", size=size, smpl_dir=tmp_path / "no-smpl-here", skeleton=HUMANML3D)
    assert "SMPL model files not found in" in caplog.text and "https://smpl.is.tue.mpg.de" in caplog.text
    info = video.probe_video(path)
    assert (info.frames, info.size, info.codec) == (6, size, "h264")
    frame = video.read_video_frames(path)[3]
    camera = mesh.mesh_cameras(clip, size=size, skeleton=HUMANML3D)[3]
    # every bone's midpoint (and the head) lands on the body, never on the floor, its shadow or the sky
    targets = {f"bone {p}-{c}": (clip[3, p] + clip[3, c]) / 2 for c, p in enumerate(HUMANML3D.parents) if p >= 0}
    targets["head"] = clip[3, HEAD]
    for name, point in targets.items():
        column, row = np.round(skeleton.project_points(point, camera)).astype(int)
        pixel = frame[row, column]
        for surface in (style.background, style.shadow_color, *style.floor_colors):
            assert color_distance(pixel, surface) > 15, f"{name}: pixel {pixel} looks like the surface {surface}"
    assert color_distance(frame[4:14, 4:14].mean((0, 1)), style.background) < 6
    reddish = ((frame[..., 0].astype(int) - frame[..., 2]) > 40).sum()
    bluish = ((frame[..., 2].astype(int) - frame[..., 0]) > 40).sum()
    assert reddish > 30 and bluish > 30, "left and right limbs have their colours"


def test_mesh_renders_from_four_threads(tmp_path, walk):
    size = (160, 120)
    clips = [walk[3 * i: 3 * i + 5] for i in range(4)]
    errors: list[str] = []

    def work(i: int) -> None:
        try:
            mesh.render_mesh_video(clips[i], tmp_path / f"thread{i}.mp4", size=size, skeleton=HUMANML3D)
        except Exception as err:  # reported below
            errors.append(f"thread {i}: {err!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    first_frames = []
    for i in range(4):
        assert video.probe_video(tmp_path / f"thread{i}.mp4").frames == 5
        first_frames.append(video.read_video_frames(tmp_path / f"thread{i}.mp4")[0].astype(int))
    # each thread drew its own clip: equal to a render of the same clip made alone, unlike the others
    alone = next(mesh.render_mesh_frames(clips[2], size=size, skeleton=HUMANML3D)).astype(int)
    assert np.abs(first_frames[2] - alone).mean() < 2.0
    assert min(np.abs(first_frames[i] - alone).mean() for i in (0, 1, 3)) > 2 * np.abs(first_frames[2] - alone).mean()


def test_renderers_never_import_torch(tmp_path):
    script = f"""
import sys, numpy as np
import renderers, renderers.video, renderers.skeleton, renderers.mesh, renderers.bench, renderers.smpl_fit
from renderers.bench import synthetic_walk
from adamotion.motion.skeleton import HUMANML3D
walk = synthetic_walk(3, skeleton=HUMANML3D)
renderers.render_video(walk, r"{tmp_path / 'a.mp4'}", size=(64, 48), skeleton=HUMANML3D)
renderers.render_mesh_video(walk, r"{tmp_path / 'b.mp4'}", size=(64, 48), smpl_dir=None, skeleton=HUMANML3D)
assert "torch" not in sys.modules, "torch was imported"
print("TORCH-FREE")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("ADAMOTION_SMPL_DIR", "PYOPENGL_PLATFORM")}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TORCH-FREE" in result.stdout


# ================================================================================================== SMPL
def _fake_smpl_model(skeleton=HUMANML3D) -> tuple[dict, np.ndarray]:
    """A tiny SMPL-format model: one 8-vertex cube per joint, skinned rigidly to it.

    Its rest pose is a T-pose with HumanML3D's target bone lengths (arms along +-x) plus two hand
    joints, so HumanML3D joint positions can be fitted exactly.
    """
    parents = list(skeleton.parents) + [skeleton.index("left_wrist"), skeleton.index("right_wrist")]
    num_joints = len(parents)
    left = set(skeleton.mirror_left)
    arm_joints = {j for chain in skeleton.chains if chain[0] != ROOT for j in chain[2:]}  # below the collars
    offsets = np.zeros((num_joints, 3))
    for joint in range(1, num_joints):
        if joint >= skeleton.num_joints:  # hands continue their wrist's direction
            offsets[joint] = offsets[parents[joint]] / np.linalg.norm(offsets[parents[joint]]) * 0.08
        elif joint in arm_joints:
            offsets[joint] = (1.0 if joint in left else -1.0) * np.array([1.0, 0, 0]) * skeleton.bone_lengths[joint]
        else:
            offsets[joint] = skeleton.target_offsets[joint]
    rest = np.zeros((num_joints, 3))
    rest[ROOT] = (0, 0.9, 0)
    for joint in range(1, num_joints):
        rest[joint] = rest[parents[joint]] + offsets[joint]
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * 0.03
    vertices = np.concatenate([rest[j] + cube for j in range(num_joints)])  # (8K, 3)
    cube_faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                           [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    weights = np.kron(np.eye(num_joints), np.ones((8, 1)))  # (8K, K)
    model = {
        "v_template": vertices,
        "shapedirs": np.zeros((len(vertices), 3, 10)),
        "posedirs": np.zeros((len(vertices), 3, 9 * (num_joints - 1))),
        "J_regressor": weights.T / 8.0,
        "weights": weights,
        "kintree_table": np.array([[2**32 - 1] + parents[1:], list(range(num_joints))], np.int64),
        "f": np.concatenate([cube_faces + 8 * j for j in range(num_joints)]),
    }
    return model, rest


class _ChumpyLikeArray:
    """Pickles like a chumpy ``Ch`` object: class chumpy.ch.Ch, state dict with the array under 'x'."""

    def __init__(self, array):
        self.x = np.asarray(array)

    def __getstate__(self):
        return {"x": self.x, "_dirty_vars": set()}


def _write_chumpy_style_pickle(model: dict, path: Path) -> None:
    """Write ``model`` the way official SMPL files are stored: chumpy objects + a scipy sparse regressor."""
    import scipy.sparse

    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    _ChumpyLikeArray.__module__, _ChumpyLikeArray.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = _ChumpyLikeArray
    stored = dict(model)
    for key in ("v_template", "shapedirs", "posedirs", "weights"):
        stored[key] = _ChumpyLikeArray(model[key])
    stored["J_regressor"] = scipy.sparse.csc_matrix(model["J_regressor"])
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": chumpy_ch})
    try:
        with open(path, "wb") as handle:
            pickle.dump(stored, handle, protocol=2)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        _ChumpyLikeArray.__module__, _ChumpyLikeArray.__qualname__ = __name__, "_ChumpyLikeArray"


def test_fake_smpl_pickle_with_chumpy_objects_loads(tmp_path):
    model, rest = _fake_smpl_model()
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    _write_chumpy_style_pickle(model, path)
    assert b"chumpy.ch" in path.read_bytes(), "the test file really references chumpy classes"
    assert "chumpy" not in sys.modules
    loaded = smpl_fit.load_smpl_model(path)
    assert np.allclose(loaded.v_template, model["v_template"]) and np.allclose(loaded.J_regressor, model["J_regressor"])
    assert loaded.parents[0] == -1 and loaded.parents[1:].tolist() == model["kintree_table"][0, 1:].tolist()
    assert np.allclose(loaded.rest_joints(), rest)
    assert mesh.find_smpl_model(tmp_path) == path

    np.savez(tmp_path / "plain.npz", **model)
    assert np.allclose(smpl_fit.load_smpl_model(tmp_path / "plain.npz").weights, model["weights"])
    broken = dict(model)
    del broken["weights"]
    with open(tmp_path / "broken.pkl", "wb") as handle:
        pickle.dump(broken, handle)
    with pytest.raises(smpl_fit.SmplModelError, match="missing SMPL keys.*weights"):
        smpl_fit.load_smpl_model(tmp_path / "broken.pkl")


def test_initial_smpl_pose_reproduces_joints_without_torch(walk):
    model_dict, _ = _fake_smpl_model()
    model = smpl_fit.SmplModel(v_template=model_dict["v_template"], shapedirs=model_dict["shapedirs"],
                               posedirs=model_dict["posedirs"], J_regressor=model_dict["J_regressor"],
                               weights=model_dict["weights"], parents=np.array([-1, *model_dict["kintree_table"][0, 1:]]),
                               faces=model_dict["f"])
    poses, trans = smpl_fit.fit_smpl_to_joints(walk, model, iterations=0, skeleton=HUMANML3D)
    assert poses.shape == (len(walk), 3 * model.num_joints) and trans.shape == (len(walk), 3)
    rotations = R.axis_angle_to_matrix(poses.reshape(len(walk), -1, 3).astype(np.float64))
    fitted = smpl_fit.posed_joints(rotations, model.rest_joints(), model.parents, trans.astype(np.float64))
    error = np.linalg.norm(fitted[:, :HUMANML3D.num_joints] - walk, axis=-1)
    assert error.mean() < 0.005, f"swing-initialised SMPL joints are {error.mean() * 1000:.1f} mm off"


def test_smpl_body_fit_and_render_with_fake_model(tmp_path, walk):
    pytest.importorskip("torch")
    pytest.importorskip("smplx")
    model_dict, _ = _fake_smpl_model()
    _write_chumpy_style_pickle(model_dict, tmp_path / "SMPL_NEUTRAL.pkl")
    model = smpl_fit.load_smpl_model(tmp_path / "SMPL_NEUTRAL.pkl")

    def mean_error(poses, trans) -> float:
        rotations = R.axis_angle_to_matrix(poses.reshape(len(walk), -1, 3).astype(np.float64))
        fitted = smpl_fit.posed_joints(rotations, model.rest_joints(), model.parents, trans.astype(np.float64))
        return float(np.linalg.norm(fitted[:, :HUMANML3D.num_joints] - walk, axis=-1).mean())

    initial = mean_error(*smpl_fit.fit_smpl_to_joints(walk, model, iterations=0, skeleton=HUMANML3D))
    refined = mean_error(*smpl_fit.fit_smpl_to_joints(walk, model, iterations=15, skeleton=HUMANML3D))
    assert refined <= initial + 1e-4 and refined < 0.005

    size = (320, 240)
    path = mesh.render_mesh_video(walk[:3], tmp_path / "smpl.mp4", size=size, smpl_dir=tmp_path, skeleton=HUMANML3D)
    assert video.probe_video(path).frames == 3
    frame = video.read_video_frames(path)[1]
    style = mesh.MeshStyle()
    camera = mesh.mesh_cameras(walk[:3], size=size, skeleton=HUMANML3D)[1]
    for joint in (HEAD, ROOT):  # the fake body is a 6 cm cube per joint: ~6 px here
        column, row = np.round(skeleton.project_points(walk[1, joint], camera)).astype(int)
        for surface in (style.background, *style.floor_colors):
            assert color_distance(frame[row, column], surface) > 20, f"SMPL cube of joint {joint} not drawn where projected"


# ================================================================================================= bench
def test_benchmark_reports_every_renderer(tmp_path, capsys):
    summary = bench.benchmark_renderers(frames=4, size=(96, 72), out_dir=tmp_path)
    names = set(summary["results"])
    assert names == {"skeleton (Pillow)", "skeleton (matplotlib FuncAnimation)", "mesh (capsule body, pyrender)"}
    for name, row in summary["results"].items():  # each timed renderer really rendered the whole clip
        assert video.read_video_frames(row["path"]).shape == (4, 72, 96, 3), name
    assert "frames/s" in capsys.readouterr().out
