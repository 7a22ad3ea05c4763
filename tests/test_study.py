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
        for criterion in CRITERIA:
            if criterion not in trial.answered:
                assert store.submit(pid, trial.trial_id, criterion, ranks)


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
    ranks = {"A": 1, "B": 2}
    assert store.submit(pid, trial.trial_id, "realism", ranks) is True
    assert store.submit(pid, trial.trial_id, "realism", ranks) is False  # duplicate: no new row
    with pytest.raises(StudyError, match="exactly once"):
        store.submit(pid, trial.trial_id, "alignment", {"A": 1, "B": 1})
    with pytest.raises(StudyError, match="Unknown trial"):
        store.submit(pid, "nope", "alignment", ranks)
    # Resume: a fresh store object on the same folder continues at the same trial.
    again = StudyStore.open(tmp_path / "s")
    assert again.next_trial(pid).trial_id == trial.trial_id
    assert again.next_trial(pid).answered == {"realism": [trial.method_keys[0], trial.method_keys[1]]}
    answer_all(again, pid, best_method="m1")
    assert again.progress(pid) == (2, 2) and again.next_trial(pid) is None
    summary = summarize(again)
    # m1 was ranked first on every answer except the first realism answer (which ranked shown order).
    assert summary["alignment"]["method1"]["mean_rank"] == 1.0
    assert summary["alignment"]["method0"]["mean_rank"] == 2.0
    paths = export_results(again, tmp_path / "out")
    rows = paths["csv"].read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2 * 2  # header + trials x criteria x methods
    assert json.loads(paths["summary"].read_text())["responses"] == 4
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
        for c in CRITERIA:
            store.submit(pid, trial.trial_id, c, {{"A": 2, "B": 1}})
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
