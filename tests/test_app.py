"""The served app end to end: the real Gradio server, in-process, driven through gradio_client like a remote user.

One tiny trained checkpoint (conftest ``tiny_checkpoint``) and one small study built from it serve every test
here. Generation uses 2-second motions and a handful of sampling steps to keep the file short on 2 CPU cores.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

# Offline and private before gradio is imported (it reads some of these at import time).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")  # as `python -m app` does: mesh rendering without a display

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from app.config import DEFAULT_CHECKPOINT, AppConfig, parse_args  # noqa: E402
from app.server import create_app  # noqa: E402
from app.workspace import Workspaces  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FPS = 20
SECONDS = 2  # every generation here: 2 s = 40 frames
STEPS = 5
STUDY_PROMPTS = ["a person walks forward", "a person jumps in place"]
ADMIN_TOKEN = "secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def study_dir(tiny_checkpoint, tmp_path_factory):
    """A two-prompt study comparing the tiny adaqf and baseline pipelines (as `adamotion study build` makes it)."""
    from adamotion.study.build import build_study

    out = tmp_path_factory.mktemp("study") / "study"
    return build_study(STUDY_PROMPTS, [f"adaqf={tiny_checkpoint / 'adaqf'}", f"baseline={tiny_checkpoint / 'baseline'}"],
                       out, seconds=SECONDS, steps=3, sampler="ddim", title="Test study")


@pytest.fixture(scope="module")
def server(tiny_checkpoint, study_dir, tmp_path_factory):
    """The app with the Study tab and admin results, launched on a free local port."""
    tmp = tmp_path_factory.mktemp("app")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp / "gradio"))
        port = free_port()
        config = AppConfig(checkpoint=tiny_checkpoint, workdir=tmp / "requests", port=port, study=study_dir,
                           admin_token=ADMIN_TOKEN)
        demo = create_app(config)
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                    show_error=True, **demo.launch_options)
        try:
            yield demo
        finally:
            demo.close()
            demo.studio.workspaces.close()


def connect(server, download_dir: Path) -> Client:
    """A new client = a new browser session (its own gr.State values)."""
    return Client(server.local_url, download_files=str(download_dir), verbose=False)


@pytest.fixture
def client(server, tmp_path):
    return connect(server, tmp_path / "downloads")


def generate(client: Client, prompt: str = "a person walks forward and waves", *, length=str(SECONDS), seed=0,
             guidance=2.5, steps=STEPS, samples=1, style="skeleton"):
    """/generate → (side_by_side, adapted_video, vanilla_video, adapted_scores, vanilla_scores, downloads, coverage)."""
    return client.predict(prompt=prompt, length=length, seed=seed, guidance=guidance, steps=steps, samples=samples,
                          style=style, api_name="/generate")


def video_path(value) -> Path | None:
    """A Video output's file: gradio_client gives {"video": path, "subtitles": ...}, or for a gr.update
    {"__type__": "update", "value": <that>, "visible": ...}; None when it holds no video."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        value = value.get("value")
    if isinstance(value, dict):
        value = value.get("video")
    return Path(value) if value else None


def by_name(files) -> dict[str, Path]:
    paths = [Path(f) for f in files]
    names = {p.name: p for p in paths}
    assert len(names) == len(paths), f"two downloads share a name: {sorted(p.name for p in paths)}"
    return names


def table_rows(markdown: str) -> list[list[str]]:
    """Body rows of the first markdown table whose first cell is a number."""
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells and cells[0].isdigit():
            rows.append(cells)
    return rows


def assert_playable(path: Path, frames: int | None = None):
    from renderers.video import probe_video

    info = probe_video(path)
    assert info.frames > 0, path
    assert info.codec == "h264" and info.pix_fmt == "yuv420p", (path, info)  # plays in every browser
    if frames is not None:
        assert info.frames == frames, (path, info)
    return info


# ----------------------------------------------------------------------------- generate
def test_generate_gives_playable_videos_scores_and_downloads(client):
    from adamotion.io.bvh import parse_bvh
    from adamotion.io.export import load_bundle

    frames = SECONDS * FPS
    side, adapted, vanilla, ada_md, van_md, files, coverage = generate(client, seed=3)

    ada_info = assert_playable(video_path(adapted), frames)
    van_info = assert_playable(video_path(vanilla), frames)
    side_info = assert_playable(video_path(side), frames)
    assert side_info.width == ada_info.width + van_info.width and side_info.height == ada_info.height
    assert (ada_info.width, ada_info.height) == AppConfig().video_size  # the app's panel size reaches the renderer
    assert "AdaQF" in ada_md and "vanilla" in van_md
    assert "R-precision rank (of 32)*: the prompt's place" in ada_md  # the one-line help under the table
    assert "Nearest known actions" in coverage and "outside what the model was trained on" not in coverage
    for md in (ada_md, van_md):
        (row,) = table_rows(md)
        assert -1.0 <= float(row[1]) <= 1.0 and 1 <= int(row[2]) <= 32  # evaluator cosine, R-precision rank
        # physical readings of the clip next to real motion's (the evaluator folder's real_motion.json)
        physical = next(line for line in md.splitlines() if line.startswith("sample 1: "))
        assert "jitter " in physical and " m/s² · real motion " in physical and "bone-length variation" in physical

    downloads = by_name(files)
    for tag in ("adapted", "vanilla"):
        assert {f"{tag}.mp4", f"{tag}_sample1_joints.npy", f"{tag}_sample1_features.npy", f"{tag}_sample1.bvh",
                f"{tag}_bundle.npz"} <= set(downloads), sorted(downloads)
        joints = np.load(downloads[f"{tag}_sample1_joints.npy"])
        features = np.load(downloads[f"{tag}_sample1_features.npy"])
        assert joints.shape == (frames, 22, 3) and np.isfinite(joints).all()
        assert features.shape == (frames, 263) and np.isfinite(features).all()
        assert parse_bvh(downloads[f"{tag}_sample1.bvh"]).num_frames == frames
        bundle = load_bundle(downloads[f"{tag}_bundle.npz"])
        assert bundle["prompt"] == "a person walks forward and waves" and bundle["seed"] == 3 and bundle["steps"] == STEPS
        assert bundle["extra"] == {"sampler": "ddim", "postprocess": "none"}  # 5 steps: DDIM; raw model output
        assert ("AdaQF" in bundle["encoder"]) == (tag == "adapted")
        np.testing.assert_allclose(bundle["joints"].reshape(-1, frames, 22, 3)[0], joints, atol=1e-5)
    assert "side_by_side.mp4" in downloads


def test_concurrent_encoders_match_the_pipelines_and_a_restart_reuses_the_indexes(server, tiny_checkpoint,
                                                                                   tmp_path, caplog):
    import logging

    from app.service import Studio
    from adamotion.utils.paths import index_cache_dir

    studio = server.studio
    prompt, frames = "a person jumps forward", SECONDS * FPS
    result = studio.generate(prompt, seconds=SECONDS, seed=5, steps=STEPS)  # both samplers run in parallel threads
    ada = studio.adapted([prompt], lengths=frames, seed=5, steps=STEPS, sampler="ddim", encoder="ada")
    van = studio.vanilla([prompt], lengths=frames, seed=5, steps=STEPS, sampler="ddim", encoder="vanilla")
    np.testing.assert_array_equal(result.adapted.features[0], ada.features[0])
    np.testing.assert_array_equal(result.vanilla.features[0], van.features[0])
    assert not np.allclose(ada.features[0], van.features[0])
    from app.service import UserInputError

    with pytest.raises(UserInputError, match="DDPM sampler runs all 50 steps; choose DDIM"):
        studio.generate(prompt, seconds=SECONDS, seed=5, steps=STEPS, sampler="ddpm")

    assert any(index_cache_dir(tiny_checkpoint).glob("index-*"))  # persistent, under $ADAMOTION_CACHE
    with caplog.at_level(logging.INFO, logger="adamotion.retrieval.index"):
        again = Studio(AppConfig(checkpoint=tiny_checkpoint, workdir=tmp_path / "requests"))
    again.workspaces.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "adamotion.retrieval.index"]
    assert sum("loaded embedding index" in m for m in messages) == 2, messages
    assert not any("built" in m for m in messages), messages


def test_same_seed_same_motion_and_another_seed_another(client):
    def joints(seed):
        files = by_name(generate(client, "someone jumps forward twice", seed=seed)[5])
        return np.load(files["adapted_sample1_joints.npy"]), np.load(files["vanilla_sample1_joints.npy"])

    first, again, other = joints(11), joints(11), joints(12)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
    assert not np.allclose(first[0], first[1])  # the adapted and the vanilla encoder really differ


def test_eight_concurrent_generations_all_finish_with_their_own_files(server, tmp_path):
    root = server.studio.workspaces.root
    before = set(root.glob("generate-*"))

    def one(i):
        started = time.perf_counter()
        result = generate(connect(server, tmp_path / f"client{i}"), "a person walks in a circle", seed=100 + i)
        return result, time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(one, range(8)))

    joints = []
    for result, _seconds in outcomes:
        for video in result[:3]:
            assert_playable(video_path(video))
        joints.append(np.load(by_name(result[5])["adapted_sample1_joints.npy"]))
    videos = [video_path(result[1]) for result, _ in outcomes]
    assert len(set(videos)) == 8, videos
    assert len({j.tobytes() for j in joints}) == 8  # eight seeds, eight motions: nothing crossed over
    new = set(root.glob("generate-*")) - before
    assert len(new) == 8, sorted(p.name for p in new)  # one private output folder per request
    for folder in new:
        assert {"adapted.mp4", "vanilla.mp4", "side_by_side.mp4"} <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("prompt", [
    "a person 🏃 runs forward then stops 🛑",  # emoji mixed with words
    "一个人向前走然后挥手",  # Chinese
    "человек идёт вперёд и машет рукой",  # Russian
], ids=["emoji+words", "chinese", "russian"])
def test_non_latin_and_mixed_emoji_prompts_generate(client, prompt):
    side, adapted, vanilla, *_, coverage = generate(client, prompt, steps=2)
    assert_playable(video_path(adapted), SECONDS * FPS)
    english = prompt.startswith("a person")
    assert ("Prompts should be in English" in coverage) != english, coverage


def test_mesh_style_renders_a_body(client):
    _, adapted, vanilla, *_ = generate(client, "a person squats down and stands back up", style="mesh", steps=2)
    assert_playable(video_path(adapted), SECONDS * FPS)
    assert_playable(video_path(vanilla), SECONDS * FPS)


BAD_INPUTS = [
    ("empty prompt", dict(prompt=""), "Please type a prompt"),
    ("whitespace prompt", dict(prompt="  \n\t  "), "Please type a prompt"),
    ("10,000-char prompt", dict(prompt="w" * 10_000), r"10,000 characters long; please keep it under 500"),
    ("emoji-only prompt", dict(prompt="🏃‍♂️💨🔥"), "no words"),
    ("length 1 s", dict(length="1"), r"Length must be between 2 and 9.8 seconds"),
    ("length 20 s", dict(length="20"), r"Length must be between 2 and 9.8 seconds"),
    ("length abc", dict(length="abc"), r"Length must be a number of seconds or 'auto'"),
    ("seed abc", dict(seed="abc"), "Seed must be a whole number"),
    ("negative seed", dict(seed="-5"), "Seed must be between 0 and"),
    ("steps 0", dict(steps=0), "less than minimum value 1"),  # refused by Gradio's own slider check
    ("unknown style", dict(style="cartoon"), "cartoon"),  # refused by Gradio's own radio check
    ("4 x 9.8 s", dict(samples=4, length="9.8"), r"at most 20 s of motion per encoder .* at most 2 sample"),
    ("3 x auto", dict(samples=3, length="auto"), r"3 samples × up to 9.8 s \('auto'\) is more"),
]


@pytest.mark.parametrize("kwargs,message", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_generate_inputs_give_a_clear_message(client, kwargs, message, capfd, caplog):
    import logging

    capfd.readouterr()
    call = {"prompt": "a person walks forward", **kwargs}
    with caplog.at_level(logging.INFO, logger="app.ui"), pytest.raises(AppError, match=message) as caught:
        generate(client, call.pop("prompt"), **call)
    assert "Traceback" not in str(caught.value) and "went wrong" not in str(caught.value)
    server_log = capfd.readouterr()
    if "steps" not in kwargs and "style" not in kwargs:  # Gradio's own component checks print their traceback
        assert "Traceback" not in server_log.err + server_log.out  # a refused input is not a server fault
        refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
        assert len(refused) == 1 and "\n" not in refused[0], refused
    # the server keeps answering, in the same session
    ada_md, _, van_md, _ = client.predict("a person jumps", 1, True, api_name="/retrieve")
    assert len(table_rows(van_md)) == len(table_rows(ada_md)) == 1


# ----------------------------------------------------------------------------- retrieval
def test_retrieval_ranks_test_motions_with_both_encoders(client, server):
    gallery = server.studio.gallery
    k = 3
    ada_md, ada_top, van_md, van_top = client.predict("a person jumps", k, True, api_name="/retrieve")
    for md, label in ((van_md, "vanilla"), (ada_md, "AdaQF")):
        assert label in md
        rows = table_rows(md)
        assert [int(r[0]) for r in rows] == list(range(1, k + 1))
        scores = [float(r[1]) for r in rows]
        assert scores == sorted(scores, reverse=True)
        ids = [r[3].strip("`") for r in rows]
        assert all(gallery.data.splits[i] == "test" for i in ids), ids
    assert_playable(video_path(van_top))
    assert_playable(video_path(ada_top))

    every = client.predict("a person jumps", 10, False, api_name="/retrieve")
    assert len(table_rows(every[0])) == len(table_rows(every[2])) == min(10, len(gallery.motion_ids()))


def test_retrieval_thumbnails_are_not_covered_by_their_caption(server):
    """A long caption is not burned into the 320x240 thumbnail: the picture is the bare motion."""
    from renderers.skeleton import render_frames
    from renderers.video import iter_video_frames

    studio = server.studio
    motion_id = max(studio.gallery.motion_ids(), key=lambda i: len(studio.gallery.caption_of(i)))
    first = next(iter_video_frames(studio.thumbnail(motion_id))).astype(float)  # (H, W, 3)
    bare = next(iter(render_frames(studio.gallery.joints_of(motion_id), size=(320, 240),
                                     skeleton=studio.skeleton))).astype(float)
    assert first.shape == bare.shape == (240, 320, 3)
    assert np.abs(first - bare).mean() < 3.0  # codec noise only; a text band would shift the whole figure


def test_motion_to_text_for_a_gallery_motion_and_the_last_generated_one(client, server):
    motion_id = server.studio.gallery.motion_ids(split="test")[0]
    ada_md, van_md = client.predict(motion_id, False, 4, api_name="/motion_to_text")
    assert len(table_rows(van_md)) == len(table_rows(ada_md)) == 4

    with pytest.raises(AppError, match="Generate a motion first"):
        client.predict(motion_id, True, 4, api_name="/motion_to_text")
    generate(client, "a person kicks with the right leg", steps=2)
    ada_md, van_md = client.predict(None, True, 2, api_name="/motion_to_text")  # this session's last motion
    assert len(table_rows(van_md)) == len(table_rows(ada_md)) == 2
    with pytest.raises(AppError, match="Pick a gallery motion"):
        client.predict(None, False, 2, api_name="/motion_to_text")


# ----------------------------------------------------------------------------- study
def _participant_id(markdown: str) -> str:
    match = re.search(r"`([0-9a-f]+-[0-9a-f]+)`", markdown)
    assert match, markdown
    return match.group(1)


def test_a_participant_runs_the_whole_study_and_export_reads_the_answers(server, study_dir, tmp_path):
    from adamotion.study.export import export_results
    from adamotion.study.store import StudyStore

    client = connect(server, tmp_path / "participant")
    with pytest.raises(AppError, match="consent"):
        client.predict(False, api_name="/study_start")
    id_md, progress, prompt_md, *videos = client.predict(True, api_name="/study_start")
    pid = _participant_id(id_md)
    assert progress == f"Trial 1 of {len(STUDY_PROMPTS)}"
    shown = [video_path(v) for v in videos if video_path(v)]
    assert len(shown) == 2  # adaqf and baseline, as A and B
    for video in shown:
        assert_playable(video, SECONDS * FPS)
        # blinding: nothing in the served file name tells the methods apart
        assert not re.search(r"(^|[-_])m\d($|[-_.])", video.stem) and not {"adaqf", "baseline"} & set(
            re.split(r"[-_.]", video.stem)), video.name

    with pytest.raises(AppError, match="Please rank every video"):
        client.predict("1", None, None, None, "1", "2", None, None, api_name="/study_submit")
    with pytest.raises(AppError, match="exactly once"):
        client.predict("1", "1", None, None, "1", "2", None, None, api_name="/study_submit")
    # a valid realism ranking with an invalid alignment ranking stores nothing (not even the realism half)
    with pytest.raises(AppError, match="exactly once"):
        client.predict("1", "2", None, None, "1", "1", None, None, api_name="/study_submit")
    half = StudyStore.open(study_dir)
    try:
        assert half.answers(pid) == {}
    finally:
        half.close()
    trials = 0
    while not progress.startswith("**Finished"):
        trials += 1
        assert trials <= len(STUDY_PROMPTS)
        # realism: A best; alignment: B best
        _, progress, prompt_md, *videos = client.predict("1", "2", None, None, "2", "1", None, None,
                                                         api_name="/study_submit")
    assert trials == len(STUDY_PROMPTS)
    assert progress == f"**Finished: {trials}/{trials} trials. Thank you!**"

    # a later visit with the id shows the finished state
    resumed = connect(server, tmp_path / "resume").predict(f"  {pid} ", api_name="/study_resume")
    assert resumed[1].startswith("**Finished")

    store = StudyStore.open(study_dir)
    try:
        names = {m["key"]: m["name"] for m in store.methods}
        mine = [r for r in store.all_responses() if r["participant_id"] == pid]
        assert len(mine) == 2 * len(STUDY_PROMPTS)
        shown_order = {trial.trial_id: keys for trial, keys in store.order_for(pid)}
        for response in mine:
            keys = shown_order[response["trial_id"]]  # keys[0] was shown as A
            expected = keys if response["criterion"] == "realism" else keys[::-1]
            assert response["ranking"] == expected
        paths = export_results(store, tmp_path / "export")
    finally:
        store.close()
    exported = [r for r in json.loads(paths["json"].read_text()) if r["participant_id"] == pid]
    assert sorted(r["trial_id"] for r in exported) == sorted(r["trial_id"] for r in mine)
    assert all(set(r["ranking"]) == set(names.values()) for r in exported)
    csv_lines = paths["csv"].read_text().splitlines()
    assert sum(pid in line for line in csv_lines) == 2 * 2 * len(STUDY_PROMPTS)  # one line per (answer, method)


def test_study_refuses_unknown_or_tampered_participant_ids(server, tmp_path):
    client = connect(server, tmp_path / "d")
    id_md, *_ = client.predict(True, api_name="/study_start")
    pid = _participant_id(id_md)
    tampered = pid[:-1] + ("0" if pid[-1] != "0" else "1")
    for bad, message in [("nope", "not valid"), ("", "not valid"), (tampered, "not valid for this study"),
                         ("abc-" + pid.split("-")[1], "not valid for this study")]:
        with pytest.raises(AppError, match=message):
            client.predict(bad, api_name="/study_resume")
    with pytest.raises(AppError, match="Start or resume"):
        connect(server, tmp_path / "fresh").predict("1", "2", None, None, "1", "2", None, None,
                                                    api_name="/study_submit")
    assert client.predict(pid, api_name="/study_resume")[1].startswith("Trial 1 of")  # the real one still works


def test_study_results_need_the_admin_token_and_leave_no_file_behind(server, client):
    import base64

    gate = server.admin_gate
    gate.failures = 0
    for count, wrong in enumerate(("wrong", "", "secret "), start=1):
        with pytest.raises(AppError, match="Wrong admin token"):
            client.predict(wrong, api_name="/study_results")
        assert gate.failures == count  # every wrong token in a row lengthens the wait before the next check
    assert gate.delay_s() == 4 * gate.base_delay_s  # 0.25 s, 0.5 s, then 1 s before the next check
    import tempfile

    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    before = {p for p in cache.rglob("*") if p.is_file()}
    exports_before = set(Path(tempfile.gettempdir()).glob("study-export-*"))
    table, plot, links = client.predict(ADMIN_TOKEN, api_name="/study_results")
    assert gate.failures == 0 and gate.delay_s() == 0  # the right token resets the back-off
    assert "adaqf" in table and "baseline" in table
    assert plot and "mean_rank.png" not in json.dumps(plot)  # the plot travels inline, not as a served file
    exported = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', links))
    assert set(exported) == {"responses.csv", "responses.json", "summary.json", "mean_rank.png"}
    assert base64.b64decode(exported["responses.csv"]).decode().startswith("participant_id,trial_id,prompt")
    assert base64.b64decode(exported["mean_rank.png"])[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing of the export was copied where Gradio serves files by URL, and no temporary export is left
    new = {p for p in cache.rglob("*") if p.is_file()} - before
    assert not [p for p in new if p.name.startswith(("responses", "summary", "mean_rank"))], sorted(new)
    assert set(Path(tempfile.gettempdir()).glob("study-export-*")) == exports_before


def test_admin_gate_backs_off_on_wrong_tokens():
    from app.study_tab import AdminGate

    waits = []
    gate = AdminGate("tok", base_delay_s=0.5, max_delay_s=2.0, sleep=waits.append)
    assert [gate.check(t) for t in ("a", "b", None, "c", "d")] == [False] * 5
    assert waits == [0.5, 1.0, 2.0, 2.0]  # none before the first try, then doubling up to the cap
    assert gate.check("tok") and waits[-1] == 2.0 and gate.failures == 0
    assert gate.check("tok") and len(waits) == 5  # no wait after a success


def test_gradio_file_routes_refuse_private_files(server, study_dir, tiny_checkpoint):
    import urllib.error
    import urllib.request

    for private in (Path("/etc/passwd"), study_dir / "responses.sqlite", study_dir / "secret.key",
                    study_dir / "manifest.json", tiny_checkpoint / "adaqf" / "denoiser" / "model.safetensors",
                    REPO / "app" / "service.py"):
        assert private.exists(), private
        url = f"{server.local_url}gradio_api/file={private}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=30)
        assert refused.value.code in (403, 404), (private, refused.value.code)


def test_a_non_study_folder_fails_at_start_up(tiny_checkpoint, tmp_path):
    from adamotion.study.store import StudyError

    with pytest.raises(StudyError, match="not a study folder"):
        create_app(AppConfig(checkpoint=tiny_checkpoint, workdir=tmp_path / "w", study=tmp_path))
    # from the command line: one clear line, no traceback, before any model is loaded
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    proc = subprocess.run([sys.executable, "-m", "app", "--checkpoint", str(tiny_checkpoint), "--study", str(tmp_path),
                           "--port", str(free_port())], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "not a study folder" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_a_missing_checkpoint_fails_at_start_up_with_one_line(tmp_path):
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    proc = subprocess.run([sys.executable, "-m", "app", "--checkpoint", str(tmp_path / "nowhere"),
                           "--port", str(free_port())], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "nowhere" in proc.stderr and "not found" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def _run_main(argv, monkeypatch, *, forbid_loading=False) -> str:
    """``python -m app`` in-process; returns its one-line exit message."""
    import app.__main__ as entry
    import app.server

    if forbid_loading:
        monkeypatch.setattr(app.server, "create_app", lambda config: pytest.fail("models loaded before the check"))
    with pytest.raises(SystemExit) as stopped:
        entry.main(argv)
    return str(stopped.value.code)


def test_a_busy_port_is_refused_before_any_model_loads(tiny_checkpoint, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message = _run_main(["--checkpoint", str(tiny_checkpoint), "--port", str(port)], monkeypatch,
                            forbid_loading=True)
    assert f"port {port} on 127.0.0.1 is not available" in message and "--port" in message
    assert "\n" not in message


@pytest.mark.parametrize("flag", ["--concurrency", "--max-queue"])
def test_zero_concurrency_or_queue_is_refused(flag, capsys):
    with pytest.raises(SystemExit):
        parse_args([flag, "0"])
    err = capsys.readouterr().err
    assert f"{flag}: must be at least 1, got 0" in err and "Traceback" not in err


def test_a_truncated_gallery_fails_at_start_up_with_one_line(tiny_checkpoint, tmp_path, monkeypatch):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, broken)
    features = broken / "gallery" / "features.safetensors"
    features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])
    message = _run_main(["--checkpoint", str(broken), "--port", str(free_port()),
                         "--workdir", str(tmp_path / "w")], monkeypatch)
    assert str(features) in message and "truncated" in message and "rebuild the gallery with" in message, message
    assert "\n" not in message and "Traceback" not in message


def test_gradio_cached_outputs_expire_like_request_folders(server, client):
    config = server.studio.config
    assert server.delete_cache == (config.cleanup_every_s, config.cleanup_after_s)
    assert server.studio.workspaces.max_age_s == config.cleanup_after_s
    generate(client, "a person jumps in place", steps=2)
    cache = Path(os.environ["GRADIO_TEMP_DIR"])
    cached = {str(p) for p in cache.rglob("*.mp4")}
    tracked = set().union(*server.temp_file_sets)
    assert cached and cached <= tracked  # every cached copy is one Gradio's delete_cache sweep will remove


def _components(demo) -> list[dict]:
    """Components of the served page in layout order (depth-first through rows, columns and tabs)."""
    by_id = {c["id"]: c for c in demo.config["components"]}
    ordered = []

    def walk(node):
        if node["id"] in by_id:
            ordered.append(by_id[node["id"]])
        for child in node.get("children", []):
            walk(child)

    walk(demo.config["layout"])
    return ordered


def _by_elem_id(demo, elem_id: str) -> dict:
    (found,) = [c for c in demo.config["components"] if c["props"].get("elem_id") == elem_id]
    return found


def test_first_use_layout(server):
    import unicodedata

    from app.ui import APP_CSS
    from renderers.skeleton import SkeletonStyle

    order = [c["props"].get("elem_id") for c in _components(server)]
    # Retrieve tab: adapted left (first), vanilla right, as in the header and the Generate tab
    assert order.index("ranking-adapted") < order.index("ranking-vanilla")
    assert order.index("thumb-adapted") < order.index("thumb-vanilla")
    assert order.index("video-adapted") < order.index("video-vanilla")
    dice = _by_elem_id(server, "random-seed")["props"]["value"]
    assert dice and all(unicodedata.category(ch).startswith(("L", "Z")) for ch in dice), dice  # no emoji glyph
    for elem_id in ("video-adapted", "video-vanilla", "side-by-side"):  # no label chip over the burned-in title
        assert _by_elem_id(server, elem_id)["props"]["show_label"] is False
    infos = {str(c["props"].get("label")).split(" (")[0]: c["props"].get("info") for c in server.config["components"]}
    for label, words in [("Guidance scale", "follow the text"), ("Sampling steps", "faster"),
                         ("Test split only", "held-out test motions"), ("Samples", "at most 20 s of motion")]:
        assert infos.get(label) and words in infos[label], (label, infos.get(label))
    assert "white-space: nowrap" in APP_CSS and ".ranking" in APP_CSS
    assert "ranking" in _by_elem_id(server, "ranking-adapted")["props"]["elem_classes"]
    legend = [c["props"]["value"] for c in server.config["components"]
              if "skeleton-legend" in str(c["props"].get("value"))]
    style = SkeletonStyle()
    assert legend and "#{:02x}{:02x}{:02x}".format(*style.left_color) in legend[0]
    assert "#{:02x}{:02x}{:02x}".format(*style.right_color) in legend[0] and "figure's <b>right</b>" in legend[0]
    (dropdown,) = [c for c in server.config["components"] if c["props"].get("label") == "Gallery motion"]
    gallery = server.studio.gallery
    for caption_text, value in dropdown["props"]["choices"][:5]:
        assert caption_text.startswith(gallery.caption_of(value)) and value in gallery.motion_ids()
    known = [c["props"]["value"] for c in server.config["components"]
             if "actions (and sequences" in str(c["props"].get("value"))]
    assert known and all(f"**{name}**" in known[0] for name in server.studio.coverage.actions)


def test_api_names_every_output_and_exposes_one_endpoint_per_action(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    expected = {"/generate", "/retrieve", "/motion_to_text", "/study_start", "/study_resume", "/study_submit",
                "/study_results"}
    assert set(api) == expected, sorted(api)
    for name, endpoint in api.items():
        labels = [r["label"] for r in endpoint["returns"]]
        assert all(label and not re.fullmatch(r"value_\d+", label) for label in labels), (name, labels)
        assert f"`{name}`" in readme, f"README does not document {name}"
    assert [r["label"] for r in api["/generate"]["returns"]][-1] == "Coverage"


def test_coverage_knows_the_training_actions_and_flags_the_rest(server, tiny_corpus):
    from adamotion.data.humanml3d import load_split_ids, read_captions
    from adamotion.text.coverage import language_warning

    studio = server.studio
    motions = json.loads((tiny_corpus / "corpus.json").read_text())["motions"]
    train = [i for i in load_split_ids(tiny_corpus, "train") if not i.startswith("M")]
    single = {i: motions[i]["actions"][0]["family"] for i in train if len({a["family"] for a in motions[i]["actions"]}) == 1}
    # the known actions are read from the corpus the checkpoint was trained on, not from a list in the code
    assert set(studio.coverage.actions) == {f.replace("_", " ") for f in single.values()}
    motion_id, family = next(iter(single.items()))
    caption = read_captions(tiny_corpus / "texts" / f"{motion_id}.txt")[0]["caption"]
    report = studio.check_coverage(caption)
    assert report.in_domain and report.best > 0.99 and report.nearest[0][0] == family.replace("_", " ")
    assert report.language_warning is None
    for outside in ("a chef chops onions in a kitchen", "a man plays the cello"):
        report = studio.check_coverage(outside)
        assert not report.in_domain and report.best < report.threshold, report
    calibration = studio.coverage.config["calibration"]
    # 95% of the held-out captions pass, up to one caption of rounding on the tiny test split
    assert calibration["in_domain_passed"] >= 0.95 - 1 / calibration["in_domain_n"]
    assert calibration["threshold"] == studio.coverage.threshold
    for text, warned in [("一个人向前走然后挥手", True), ("شخص يمشي إلى الأمام", True),
                         ("una persona camina hacia adelante y saluda", True),
                         ("a person walks forward and waves", False), ("someone jumps", False)]:
        assert (language_warning(text) is not None) == warned, text


def test_shipped_coverage_threshold_is_documented(tmp_path):
    config = json.loads((DEFAULT_CHECKPOINT / "coverage" / "config.json").read_text())
    calibration = config["calibration"]
    assert config["threshold"] == calibration["threshold"] and calibration["in_domain_n"] >= 500
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{config['threshold']:.2f}" in readme and f"{calibration['out_of_domain_flagged']:.1%}" in readme


def test_about_tab_names_both_encoders_and_the_checkpoint(server):
    about = server.studio.about_markdown()
    ada_label, van_label = server.studio.labels
    assert ada_label in about and van_label in about and f"`{server.studio.config.checkpoint}`" in about
    backbone = server.studio.adapted.text_encoder.backbone_name
    assert f"text backbone: {backbone}" in about and backbone in ada_label and backbone in van_label
    assert "trained:" in about and "CPU cores" in about.split("trained:")[1]  # from training_summary.json
    assert "retrieval gallery: " in about and "motions" in about
    assert "models and training data: Apache-2.0" in about  # procedural-only training data (saved dataset meta)
    # which network judges, and which network the generators were trained against
    from adamotion.utils.serialization import weights_fingerprint

    checkpoint = Path(server.studio.config.checkpoint)
    assert "independent evaluator" in about and weights_fingerprint(checkpoint / "evaluator")[:12] in about
    assert "trained against a different network, the quality-feedback extractors" in about


# ----------------------------------------------------------------------------- units: workspaces, config
def test_workspaces_sweep_removes_only_expired_request_folders(tmp_path):
    spaces = Workspaces(tmp_path, max_age_s=60, sweep_every_s=3600)
    try:
        old, young = spaces.new("generate"), spaces.new("generate")
        assert old != young and old.parent == young.parent == tmp_path
        (old / "adapted.mp4").write_bytes(b"x")
        caches = [tmp_path / "thumbnails", tmp_path / "index-cache"]
        for cache in caches:
            cache.mkdir()
        stray = tmp_path / "notes.txt"
        stray.write_text("keep")
        now = time.time()
        for path in (old, *caches, stray):
            os.utime(path, (now - 120, now - 120))

        assert spaces.sweep(now=now) == 1
        assert not old.exists() and young.exists()
        assert all(c.exists() for c in caches) and stray.exists()  # caches are not request folders
        assert spaces.sweep(now=now) == 0
        assert spaces.sweep(now=now + 3600) == 1 and not young.exists()
        assert len({spaces.new("generate") for _ in range(50)}) == 50
    finally:
        spaces.close()


def test_workspaces_sweep_on_a_schedule(tmp_path):
    spaces = Workspaces(tmp_path, max_age_s=0, sweep_every_s=0.05)
    try:
        folder = spaces.new("generate")
        os.utime(folder, (time.time() - 10, time.time() - 10))
        deadline = time.monotonic() + 5
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not folder.exists()
    finally:
        spaces.close()
    private = Workspaces(None)  # no root given: a private temporary folder
    try:
        assert private.root.is_dir() and private.root.name.startswith("adamotion-app-")
    finally:
        private.close()
        shutil.rmtree(private.root, ignore_errors=True)


def test_parse_args_reads_environment_and_flags_win(monkeypatch, tmp_path, capsys):
    for name in list(os.environ):
        if name.startswith(("ADAMOTION_", "GRADIO_SERVER_")):
            monkeypatch.delenv(name)
    config = parse_args([])
    assert config.checkpoint == DEFAULT_CHECKPOINT and config.port == 7860 and config.host == "127.0.0.1"
    assert config.study is None and config.admin_token is None and config.workdir is None and not config.share
    assert (config.device, config.concurrency, config.max_queue) == ("cpu", 2, 32)
    assert config.video_size == (480, 360) and config.index_cache is None

    env = {"ADAMOTION_CHECKPOINT": str(tmp_path / "ckpt"), "ADAMOTION_PORT": "9001", "GRADIO_SERVER_NAME": "0.0.0.0",
           "ADAMOTION_STUDY": str(tmp_path / "study"), "ADAMOTION_ADMIN_TOKEN": "tok", "ADAMOTION_CONCURRENCY": "3",
           "ADAMOTION_WORKDIR": str(tmp_path / "work"), "ADAMOTION_MAX_QUEUE": "5", "ADAMOTION_DEVICE": "cuda",
           "ADAMOTION_SMPL_DIR": str(tmp_path / "smpl"), "ADAMOTION_VIDEO_SIZE": "640x480",
           "ADAMOTION_INDEX_CACHE": str(tmp_path / "indexes")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = parse_args([])
    assert config.checkpoint == tmp_path / "ckpt" and config.port == 9001 and config.host == "0.0.0.0"
    assert config.study == tmp_path / "study" and config.admin_token == "tok" and config.workdir == tmp_path / "work"
    assert (config.concurrency, config.max_queue, config.device) == (3, 5, "cuda")
    assert config.smpl_dir == str(tmp_path / "smpl")
    assert config.video_size == (640, 480) and config.index_cache == tmp_path / "indexes"

    config = parse_args(["--checkpoint", "other", "--port", "9100", "--host", "127.0.0.1", "--admin-token", "flag",
                         "--concurrency", "1", "--share"])
    assert config.checkpoint == Path("other") and config.port == 9100 and config.host == "127.0.0.1"
    assert config.admin_token == "flag" and config.concurrency == 1 and config.share
    assert config.study == tmp_path / "study"  # not overridden: still from the environment

    monkeypatch.delenv("ADAMOTION_PORT")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "9200")  # Gradio's own variable is honoured too
    assert parse_args([]).port == 9200
    monkeypatch.setenv("ADAMOTION_PORT", "9300")  # ... but ours wins
    assert parse_args([]).port == 9300
    monkeypatch.setenv("ADAMOTION_STUDY", "")  # empty = unset
    assert parse_args([]).study is None

    monkeypatch.setenv("ADAMOTION_PORT", "eighty")
    with pytest.raises(SystemExit):
        parse_args([])
    assert "invalid int value: 'eighty'" in capsys.readouterr().err
    monkeypatch.delenv("ADAMOTION_PORT")
    for bad in ("640", "big", "10x10"):
        with pytest.raises(SystemExit):
            parse_args(["--video-size", bad])
        assert "video size" in capsys.readouterr().err


def test_bench_app_times_fresh_starts_and_clicks(tiny_checkpoint, tmp_path, capsys):
    from app.bench import main

    out = tmp_path / "bench.json"
    code = main(["app", "--checkpoint", str(tiny_checkpoint), "--seconds", "2", "--repeats", "1",
                 "--no-reference", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "app start, first time" in printed and "click to playable videos (2 s motion, 50 ddpm steps" in printed
    app = json.loads(out.read_text())["app"]
    assert 0 < app["model_load_s"] < app["load_s"] and app["cold_load_s"] > app["model_load_s"]
    assert [(c["seconds"], c["steps"], c["sampler"]) for c in app["click_to_video_by_case"]] == [(2, 50, "ddpm"), (2, 25, "ddim")]
    assert app["click_to_video_s"] == app["click_to_video_by_case"][0]["median_s"] > 0
    assert [row[0] for row in app["rows"]][:2] == ["app start, first time (imports + models + builds the retrieval "
                                                    "indexes)", "app start (imports + 2 pipelines, evaluator, cached "
                                                    "gallery index)"]


def test_coverage_text_warns_in_plain_words():
    from adamotion.text.coverage import CoverageReport
    from app.ui import coverage_markdown

    near = [("spin", 0.46), ("sway", 0.41)]
    unseen = coverage_markdown(CoverageReport("someone does a cartwheel", near, 0.46, 0.45, None, ["cartwheel"]))
    assert "“cartwheel”" in unseen and "nearest known action (spin)" in unseen and "outside" not in unseen
    outside = coverage_markdown(CoverageReport("a man plays the cello", near, 0.30, 0.45, None, ["cello"]))
    assert "outside what the model was trained on" in outside and "0.30" in outside and "spin (0.46)" in outside
    known = coverage_markdown(CoverageReport("a person spins", near, 0.9, 0.45, None, []))
    assert "Warning" not in known and "Check the result" not in known and "spin (0.46)" in known


def test_a_full_queue_refuses_with_a_clear_message(tiny_checkpoint, tmp_path, monkeypatch):
    # one worker, one waiting place: of six simultaneous requests some must be refused as "Queue is full"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    port = free_port()
    config = AppConfig(checkpoint=tiny_checkpoint, workdir=tmp_path / "requests", port=port, concurrency=1,
                       max_queue=1)
    demo = create_app(config)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                show_error=True, **demo.launch_options)
    try:
        def one(i):
            try:
                generate(connect(demo, tmp_path / f"c{i}"), "a person walks forward", seed=i)
                return "ok"
            except Exception as exc:  # gradio_client raises for a refused request
                return str(exc)

        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(one, range(6)))
    finally:
        demo.close()
        demo.studio.workspaces.close()
    assert "ok" in outcomes, outcomes  # the queue still serves
    refused = [o for o in outcomes if o != "ok"]
    assert refused and all("queue is full" in o.lower() for o in refused), outcomes
