"""User-study store: counter-balancing, tamper checks, idempotent answers, crash safety, export."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from adamotion.study.export import export_results, summarize
from adamotion.study.store import CRITERIA, StudyError, StudyStore

REPO = Path(__file__).resolve().parents[1]


def make_study(folder: Path, n_trials=4, n_methods=3) -> Path:
    """A study folder as `adamotion study build` writes it, with placeholder video files."""
    (folder / "videos").mkdir(parents=True)
    methods = [{"key": f"m{i}", "name": f"method{i}", "checkpoint": f"ckpt{i}", "encoder": "ada"} for i in range(n_methods)]
    trials = []
    for t in range(n_trials):
        videos = {}
        for m in methods:
            rel = f"videos/t{t}-{m['key']}.mp4"
            (folder / rel).write_bytes(b"\x00")
            videos[m["key"]] = rel
        trials.append({"trial_id": f"t{t}", "prompt": f"prompt {t}", "videos": videos})
    manifest = {"study_id": "s1", "title": "t", "consent": "c", "methods": methods, "trials": trials}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "secret.key").write_bytes(b"k" * 32)
    return folder


def answer_all(store: StudyStore, pid: str, best_method="m0"):
    """Rank `best_method` first, then the rest in shown order, for every trial."""
    while (trial := store.next_trial(pid)) is not None:
        order = sorted(trial.method_keys, key=lambda k: (k != best_method, k))
        ranks = {label: order.index(key) + 1 for label, key in zip(trial.labels, trial.method_keys)}
        assert store.submit_trial(pid, trial.trial_id, {criterion: ranks for criterion in CRITERIA})


def test_open_rejects_non_study(tmp_path):
    with pytest.raises(StudyError, match="not a study folder"):
        StudyStore.open(tmp_path)
    make_study(tmp_path / "s")
    (tmp_path / "s" / "videos" / "t0-m0.mp4").unlink()
    with pytest.raises(StudyError, match="missing"):
        StudyStore.open(tmp_path / "s")


def test_tampered_participant_id_is_refused(tmp_path):
    store = StudyStore.open(make_study(tmp_path / "s"))
    pid = store.new_participant()
    store.check_participant(pid)
    token, sig = pid.split("-")
    forged = f"{token[:-1]}{'0' if token[-1] != '0' else '1'}-{sig}"
    for bad in (forged, "nonsense", "", None, pid + "x"):
        with pytest.raises(StudyError):
            store.check_participant(bad)


def test_counterbalanced_positions_and_random_trial_order(tmp_path):
    store = StudyStore.open(make_study(tmp_path / "s", n_trials=3, n_methods=3))
    positions = Counter()
    orders = set()
    for _ in range(6):
        pid = store.new_participant()
        sequence = store.order_for(pid)
        orders.add(tuple(t.trial_id for t, _ in sequence))
        assert store.order_for(pid) == sequence  # stable for resuming
        for trial, keys in sequence:
            for position, key in enumerate(keys):
                positions[(key, position)] += 1
    # 6 participants x 3 trials = 18 presentations: each method in each position exactly 6 times.
    assert set(positions.values()) == {6} and len(positions) == 9
    assert len(orders) > 1


def test_answers_idempotent_resume_and_export(tmp_path):
    store = StudyStore.open(make_study(tmp_path / "s", n_trials=2, n_methods=2))
    pid = store.new_participant()
    trial = store.next_trial(pid)
    shown_order = {"realism": {"A": 1, "B": 2}, "alignment": {"A": 2, "B": 1}}
    assert store.submit_trial(pid, trial.trial_id, shown_order) is True
    assert store.submit_trial(pid, trial.trial_id, shown_order) is False  # duplicate: no new row
    with pytest.raises(StudyError, match="Unknown trial"):
        store.submit_trial(pid, "nope", shown_order)
    # Resume: a fresh store object on the same folder continues at the next trial.
    again = StudyStore.open(tmp_path / "s")
    assert again.progress(pid) == (1, 2)
    assert again.next_trial(pid).trial_id != trial.trial_id
    assert again.answers(pid)[(trial.trial_id, "realism")] == trial.method_keys
    assert again.answers(pid)[(trial.trial_id, "alignment")] == trial.method_keys[::-1]
    answer_all(again, pid, best_method="m1")
    assert again.progress(pid) == (2, 2) and again.next_trial(pid) is None
    summary = summarize(again)
    # m1 was ranked first in the second trial for both criteria; the first trial ranked in shown order
    # for realism and reversed for alignment, so m1's alignment rank is 1 in both trials.
    assert summary["alignment"]["method1"]["mean_rank"] == 1.0
    assert summary["alignment"]["method0"]["mean_rank"] == 2.0
    paths = export_results(again, tmp_path / "out")
    rows = paths["csv"].read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2 * 2  # header + trials x criteria x methods
    assert json.loads(paths["summary"].read_text())["responses"] == 4
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bad_alignment,message", [
    ({"A": 1, "B": 1}, "exactly once"),
    ({"A": 1}, "rank every video"),
    ({"A": "x", "B": 2}, "rank every video"),
    (None, "rank every video"),
], ids=["repeated rank", "missing video", "not a number", "missing criterion"])
def test_a_trial_answer_is_stored_whole_or_not_at_all(tmp_path, bad_alignment, message):
    """A valid realism ranking with an invalid alignment ranking stores nothing; the corrected resubmit stores both."""
    store = StudyStore.open(make_study(tmp_path / "s", n_trials=2, n_methods=2))
    pid = store.new_participant()
    trial = store.next_trial(pid)
    answer = {"realism": {"A": 2, "B": 1}}
    if bad_alignment is not None:
        answer["alignment"] = bad_alignment
    with pytest.raises(StudyError, match=message):
        store.submit_trial(pid, trial.trial_id, answer)
    assert store.answers(pid) == {} and store.all_responses() == []
    assert store.next_trial(pid).trial_id == trial.trial_id  # the same trial is shown again

    assert store.submit_trial(pid, trial.trial_id, {"realism": {"A": 2, "B": 1}, "alignment": {"A": 1, "B": 2}})
    answers = store.answers(pid)
    assert answers == {(trial.trial_id, "realism"): trial.method_keys[::-1],
                       (trial.trial_id, "alignment"): trial.method_keys}
    assert store.progress(pid) == (1, 2)


def test_built_study_video_names_carry_no_method_information(tmp_path, monkeypatch):
    """File names (and so URLs) are opaque: neither the method key, its name, its position nor the trial."""
    import numpy as np

    import adamotion.pipeline
    import renderers.skeleton
    from adamotion.study.build import build_study

    class FakePipeline:  # the study builder only needs joints and an fps; no model is loaded here
        skeleton = type("S", (), {"fps": 20.0})()

        @classmethod
        def from_pretrained(cls, folder, device="cpu"):
            return cls()

        def __call__(self, prompts, **kwargs):
            return type("Out", (), {"joints": [np.zeros((40, 22, 3), np.float32)]})()

    monkeypatch.setattr(adamotion.pipeline, "MotionPipeline", FakePipeline)
    monkeypatch.setattr(renderers.skeleton, "render_video", lambda joints, path, **kw: Path(path).write_bytes(b"\0"))
    out = build_study(["a person walks", "a person jumps", "a person waves"],
                      [f"alpha={tmp_path / 'ckA'}", f"beta={tmp_path / 'ckB'}"], tmp_path / "study")
    manifest = json.loads((out / "manifest.json").read_text())
    names = [Path(rel).stem for t in manifest["trials"] for rel in t["videos"].values()]
    assert len(names) == 6 and len(set(names)) == 6
    for trial in manifest["trials"]:
        for key, rel in trial["videos"].items():
            stem = Path(rel).stem
            method = next(m for m in manifest["methods"] if m["key"] == key)
            assert key not in stem and method["name"] not in stem and trial["trial_id"] not in stem, stem
    assert sorted(p.stem for p in (out / "videos").iterdir()) == sorted(names)
    assert all(len(n) >= 16 and int(n, 16) >= 0 for n in names)  # random hex, nothing derived from the inputs
    store = StudyStore.open(out)
    trial = store.next_trial(store.new_participant())
    assert [p.name for p in trial.video_paths] == [Path(trial_video).name for trial_video in
                                                   (manifest["trials"][[t["trial_id"] for t in manifest["trials"]]
                                                    .index(trial.trial_id)]["videos"][k] for k in trial.method_keys)]


def test_answers_survive_a_killed_server(tmp_path):
    """A process that answers then dies by SIGKILL loses nothing it acknowledged."""
    folder = make_study(tmp_path / "s", n_trials=3, n_methods=2)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from adamotion.study.store import StudyStore, CRITERIA
        store = StudyStore.open({str(folder)!r})
        pid = store.new_participant()
        trial = store.next_trial(pid)
        store.submit_trial(pid, trial.trial_id, {{c: {{"A": 2, "B": 1}} for c in CRITERIA}})
        print(pid, trial.trial_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid, trial_id = proc.stdout.split()
    store = StudyStore.open(folder)
    answers = store.answers(pid)
    assert set(answers) == {(trial_id, c) for c in CRITERIA}
    assert store.progress(pid) == (1, 3)
