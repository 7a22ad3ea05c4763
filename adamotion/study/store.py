"""A study folder and its responses database.

Layout of a study folder (made by :func:`adamotion.study.build.build_study`)::

    manifest.json        study id, consent text, methods (hidden from participants), trials with video paths
    videos/*.mp4         one rendered video per (trial, method), under an opaque random name (blinding)
    secret.key           signs participant ids so that a tampered id is refused
    responses.sqlite     answers (WAL journal; one transaction per trial answer)

Participants see videos labelled A, B, C… in a per-participant, counter-balanced order. A trial's answer ranks
the videos for every criterion; it is validated whole and written in one transaction, so it is stored whole or
not at all. Answering the same trial again is a no-op (idempotent: first answer wins).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adamotion.utils.files import read_json

log = logging.getLogger(__name__)

CRITERIA = ("realism", "alignment")
CRITERION_QUESTIONS = {
    "realism": "Rank the videos by how realistic and natural the motion looks (1 = most realistic).",
    "alignment": "Rank the videos by how well the motion matches the text (1 = best match).",
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS participants (
    participant_id TEXT PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,      -- registration order, drives the counter-balancing
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    participant_id TEXT NOT NULL REFERENCES participants(participant_id),
    trial_id TEXT NOT NULL,
    criterion TEXT NOT NULL,
    ranking TEXT NOT NULL,               -- JSON list of method keys, best first
    created REAL NOT NULL,
    PRIMARY KEY (participant_id, trial_id, criterion)
);
"""


class StudyError(ValueError):
    """Bad study input (unknown study, tampered participant id, invalid ranking): the message says what to do."""


@dataclass(frozen=True)
class Trial:
    trial_id: str
    prompt: str
    videos: dict[str, str]  # method key -> video path relative to the study folder


@dataclass(frozen=True)
class PresentedTrial:
    """One trial as a participant sees it: videos in a counter-balanced order, method names hidden."""
    trial_id: str
    prompt: str
    labels: list[str]  # "A", "B", ...
    video_paths: list[Path]
    method_keys: list[str]  # hidden: method of each shown video, same order as labels
    index: int  # 0-based position in this participant's sequence
    total: int
    answered: dict[str, list[str]]  # criterion -> ranking already stored (method keys)


class StudyStore:
    def __init__(self, folder: Path, manifest: dict, secret: bytes):
        self.folder = Path(folder)
        self.manifest = manifest
        self.study_id: str = manifest["study_id"]
        self.methods: list[dict] = manifest["methods"]
        self.method_keys: list[str] = [m["key"] for m in self.methods]
        self.trials: list[Trial] = [Trial(t["trial_id"], t["prompt"], dict(t["videos"])) for t in manifest["trials"]]
        self._trial_by_id = {t.trial_id: t for t in self.trials}
        self._secret = secret
        self._db_path = self.folder / "responses.sqlite"
        self._local = threading.local()
        self._sync = None
        with self._connect() as db:
            db.executescript(_SCHEMA)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, folder: str | Path) -> "StudyStore":
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise StudyError(f"{folder}: not a study folder (no manifest.json); build one with `adamotion study build`")
        manifest = read_json(manifest_path, what="study manifest", error=StudyError, fix="rebuild the study")
        for key in ("study_id", "methods", "trials"):
            if key not in manifest:
                raise StudyError(f"{manifest_path}: missing {key!r}; rebuild the study")
        missing = [v for t in manifest["trials"] for v in t["videos"].values() if not (folder / v).is_file()]
        if missing:
            raise StudyError(f"{folder}: {len(missing)} video(s) missing, e.g. {missing[0]}; rebuild the study")
        key_path = folder / "secret.key"
        if not key_path.is_file():
            raise StudyError(f"{key_path}: missing; the study folder is incomplete")
        return cls(folder, manifest, key_path.read_bytes())

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._db_path, timeout=30, isolation_level=None)  # autocommit; explicit BEGIN
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # an answer acknowledged is an answer on disk
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ------------------------------------------------------------------ participants
    def _sign(self, token: str) -> str:
        return hmac.new(self._secret, f"{self.study_id}:{token}".encode(), hashlib.sha256).hexdigest()[:16]

    def new_participant(self) -> str:
        """Register an anonymous participant; returns their id (keep it to resume later)."""
        token = secrets.token_hex(6)
        participant_id = f"{token}-{self._sign(token)}"
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            number = db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM participants").fetchone()[0]
            db.execute("INSERT INTO participants VALUES (?, ?, ?)", (participant_id, number, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return participant_id

    def check_participant(self, participant_id) -> int:
        """Validate an id (signature and registration); returns the participant's registration number."""
        if not isinstance(participant_id, str) or participant_id.count("-") != 1:
            raise StudyError("That participant id is not valid; start a new session or paste the id you were given.")
        token, signature = participant_id.strip().split("-")
        if not hmac.compare_digest(signature, self._sign(token)):
            raise StudyError("That participant id is not valid for this study; start a new session.")
        row = self._connect().execute("SELECT number FROM participants WHERE participant_id = ?",
                                      (participant_id.strip(),)).fetchone()
        if row is None:
            raise StudyError("That participant id is not registered in this study; start a new session.")
        return int(row[0])

    # ------------------------------------------------------------------ ordering
    def order_for(self, participant_id: str) -> list[tuple[Trial, list[str]]]:
        """The participant's trial sequence, each with its video order (method keys), counter-balanced.

        Trials are shuffled per participant. Video positions rotate a per-trial base order by
        (participant number + trial position) so that across participants every method is shown in every
        position equally often (a Latin-square rotation).
        """
        number = self.check_participant(participant_id)
        digest = hashlib.sha256(f"{self.study_id}:{participant_id}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        trial_order = rng.permutation(len(self.trials))
        sequence = []
        for position, trial_index in enumerate(trial_order):
            trial = self.trials[int(trial_index)]
            keys = [k for k in self.method_keys if k in trial.videos]
            shift = (number + position) % len(keys)
            sequence.append((trial, keys[shift:] + keys[:shift]))
        return sequence

    def answers(self, participant_id: str) -> dict[tuple[str, str], list[str]]:
        rows = self._connect().execute(
            "SELECT trial_id, criterion, ranking FROM responses WHERE participant_id = ?", (participant_id,)).fetchall()
        return {(t, c): json.loads(r) for t, c, r in rows}

    def progress(self, participant_id: str) -> tuple[int, int]:
        """(trials fully answered, total trials)."""
        done = self.answers(participant_id)
        complete = sum(all((t.trial_id, c) in done for c in CRITERIA) for t in self.trials)
        return complete, len(self.trials)

    def next_trial(self, participant_id: str) -> PresentedTrial | None:
        """The first trial of the participant's sequence not fully answered (None when finished)."""
        sequence = self.order_for(participant_id)
        done = self.answers(participant_id)
        for index, (trial, keys) in enumerate(sequence):
            answered = {c: done[(trial.trial_id, c)] for c in CRITERIA if (trial.trial_id, c) in done}
            if len(answered) < len(CRITERIA):
                return PresentedTrial(
                    trial_id=trial.trial_id, prompt=trial.prompt, labels=[chr(ord("A") + i) for i in range(len(keys))],
                    video_paths=[self.folder / trial.videos[k] for k in keys], method_keys=keys, index=index,
                    total=len(sequence), answered=answered)
        return None

    # ------------------------------------------------------------------ answers
    def submit_trial(self, participant_id: str, trial_id: str, ranks: dict[str, dict[str, int]]) -> bool:
        """Store one trial's answer: ``ranks`` maps every criterion to {shown label ("A", "B", …): rank 1..N}.

        Every criterion is validated before anything is written, then all are written in one transaction:
        a trial is stored whole or not at all. Returns True when stored, False when this trial was already
        answered (idempotent: the first answer wins).
        """
        trial = self._trial_by_id.get(trial_id)
        if trial is None:
            raise StudyError(f"Unknown trial {trial_id!r} in study {self.study_id}.")
        unknown = sorted(set(ranks) - set(CRITERIA)) if isinstance(ranks, dict) else ["(not a mapping)"]
        if unknown:
            raise StudyError(f"Unknown criterion {unknown[0]!r}; expected {', '.join(CRITERIA)}.")
        missing = [c for c in CRITERIA if c not in ranks]
        if missing:
            raise StudyError(f"Please rank every video for {missing[0]}.")
        keys = {t.trial_id: k for t, k in self.order_for(participant_id)}[trial_id]  # shown order; validates the id
        rankings = {criterion: self._ranking(keys, criterion, ranks[criterion]) for criterion in CRITERIA}
        now = time.time()
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            stored = 0
            for criterion, ranking in rankings.items():
                stored += db.execute(
                    "INSERT INTO responses VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (participant_id, trial_id, criterion, json.dumps(ranking), now)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if stored and self._sync is not None:
            self._sync.notify()
        return stored > 0

    @staticmethod
    def _ranking(keys: list[str], criterion: str, ranks_by_label) -> list[str]:
        """Validated ranks for one criterion → method keys, best first."""
        labels = [chr(ord("A") + i) for i in range(len(keys))]
        try:
            ranks = {label: int(ranks_by_label[label]) for label in labels}
        except (KeyError, TypeError, ValueError):
            raise StudyError(f"Please rank every video ({', '.join(labels)}) for {criterion} "
                             f"with a rank from 1 to {len(labels)}.") from None
        if sorted(ranks.values()) != list(range(1, len(labels) + 1)):
            raise StudyError(f"For {criterion}, each rank 1–{len(labels)} must be used exactly once (got {ranks}).")
        return [keys[labels.index(label)] for label in sorted(labels, key=lambda lab: ranks[lab])]

    def all_responses(self) -> list[dict]:
        rows = self._connect().execute(
            "SELECT participant_id, trial_id, criterion, ranking, created FROM responses ORDER BY created").fetchall()
        return [{"participant_id": p, "trial_id": t, "criterion": c, "ranking": json.loads(r), "created": ts}
                for p, t, c, r, ts in rows]

    # ------------------------------------------------------------------ optional hub sync
    def enable_hub_sync(self, repo_id: str, every_minutes: float = 5.0) -> None:
        """Mirror the database to a Hugging Face dataset repo (off by default; needs a token and a network)."""
        from huggingface_hub import CommitScheduler

        scheduler = CommitScheduler(repo_id=repo_id, repo_type="dataset", folder_path=self.folder,
                                    allow_patterns=["responses.sqlite*", "manifest.json"], every=every_minutes)

        class _Notify:
            def notify(self_inner):  # the scheduler commits on its own timer; nothing to do per answer
                return scheduler

        self._sync = _Notify()
