"""The Study tab: consent, anonymous participant ids, counter-balanced trials, rankings, admin results."""
from __future__ import annotations

import base64
import functools
import hmac
import html
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr

from adamotion.study.export import export_results, summarize, summary_figure, summary_markdown
from adamotion.study.store import CRITERIA, CRITERION_QUESTIONS, StudyError, StudyStore

log = logging.getLogger(__name__)
MAX_VIDEOS = 4


class AdminGate:
    """Checks the admin token; every wrong token in a row doubles a wait before the next check.

    The wait (``base_delay_s`` · 2^(failures-1), at most ``max_delay_s``) is shared by all sessions, so
    guessing tokens from many tabs is as slow as from one; a right token resets it.
    """

    def __init__(self, token: str, base_delay_s: float = 0.25, max_delay_s: float = 4.0, sleep=time.sleep):
        self._token = token.encode()
        self.base_delay_s, self.max_delay_s = base_delay_s, max_delay_s
        self.failures = 0
        self._sleep = sleep
        self._lock = threading.Lock()

    def delay_s(self) -> float:
        return 0.0 if self.failures == 0 else min(self.max_delay_s, self.base_delay_s * 2 ** (self.failures - 1))

    def check(self, given) -> bool:
        with self._lock:  # one check at a time: parallel guesses queue behind the wait
            delay = self.delay_s()
            if delay:
                self._sleep(delay)
            ok = isinstance(given, str) and hmac.compare_digest(given.encode(), self._token)
            self.failures = 0 if ok else self.failures + 1
        if not ok:
            log.warning("wrong admin token (%d in a row; next check waits %.2f s)", self.failures, self.delay_s())
        return ok


def export_links_html(paths: dict[str, Path]) -> str:
    """Download links that carry the files' bytes inline (data: URLs), for the admin's page only.

    Nothing is copied into Gradio's file cache, so no URL can fetch the export without the token.
    """
    links = []
    for path in paths.values():
        mime = {".csv": "text/csv", ".json": "application/json", ".png": "image/png"}.get(path.suffix,
                                                                                          "application/octet-stream")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        links.append(f'<a download="{html.escape(path.name)}" href="data:{mime};base64,{data}">'
                     f'{html.escape(path.name)}</a>')
    return "<p>Export (downloads from this page only): " + " · ".join(links) + "</p>"


def _study_errors(fn):
    @functools.wraps(fn)  # keeps the signature: Gradio names the API parameters after it
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StudyError as exc:
            log.info("refused %s: %s", fn.__name__, exc)  # the participant's to fix: one line, no traceback
            raise gr.Error(str(exc), print_exception=False) from None
    return wrapper


def build_study_tab(store: StudyStore, admin_token: str | None) -> AdminGate | None:
    """The Study tab inside the current Blocks; returns the admin token gate (None without a token)."""
    n_videos = len(store.method_keys)
    if n_videos > MAX_VIDEOS:
        raise ValueError(f"the Study tab shows at most {MAX_VIDEOS} videos per trial; this study has {n_videos} methods")
    rank_choices = [str(i) for i in range(1, n_videos + 1)]

    with gr.Tab("Study"):
        gr.Markdown(f"## {store.manifest.get('title', 'Study')}\n{store.manifest.get('consent', '')}")
        participant = gr.State(None)
        current_trial = gr.State(None)
        with gr.Row():
            consent = gr.Checkbox(label="I have read the above and agree to take part", elem_id="study-consent")
            start = gr.Button("Start", variant="primary")
        with gr.Row():
            resume_id = gr.Textbox(label="Resume: paste your participant id", scale=3)
            resume = gr.Button("Resume", scale=1)
        id_box = gr.Markdown(label="Participant id")
        progress = gr.Markdown(label="Progress")
        prompt_md = gr.Markdown(label="Text")
        with gr.Row():
            videos = [gr.Video(label=chr(ord("A") + i), autoplay=True, loop=True, visible=False, interactive=False)
                      for i in range(MAX_VIDEOS)]
        rank_inputs: dict[str, list[gr.Dropdown]] = {}
        for criterion in CRITERIA:
            gr.Markdown(CRITERION_QUESTIONS[criterion])
            with gr.Row():
                rank_inputs[criterion] = [gr.Dropdown(rank_choices, label=f"{chr(ord('A') + i)}", visible=i < n_videos)
                                          for i in range(MAX_VIDEOS)]
        submit = gr.Button("Submit and continue", variant="primary")

        def show(participant_id):
            trial = store.next_trial(participant_id)
            done, total = store.progress(participant_id)
            id_text = f"Your anonymous participant id: `{participant_id}` (keep it to resume later)."
            if trial is None:
                hidden = [gr.update(value=None, visible=False) for _ in range(MAX_VIDEOS)]
                return (participant_id, None, id_text, f"**Finished: {done}/{total} trials. Thank you!**", "", *hidden)
            shown = [gr.update(value=str(trial.video_paths[i]), visible=True, label=trial.labels[i])
                     if i < len(trial.video_paths) else gr.update(value=None, visible=False) for i in range(MAX_VIDEOS)]
            return (participant_id, trial.trial_id, id_text, f"Trial {done + 1} of {total}",
                    f"### Text: “{trial.prompt}”", *shown)

        outputs = [participant, current_trial, id_box, progress, prompt_md, *videos]

        @_study_errors
        def on_start(agreed):
            if not agreed:
                raise gr.Error("Please tick the consent box to take part.", print_exception=False)
            return show(store.new_participant())

        @_study_errors
        def on_resume(participant_id):
            participant_id = (participant_id or "").strip()
            store.check_participant(participant_id)
            return show(participant_id)

        @_study_errors
        def on_submit(participant_id, trial_id, *ranks):
            if not participant_id or not trial_id:
                raise gr.Error("Start or resume a session first.", print_exception=False)
            labels = [chr(ord("A") + i) for i in range(n_videos)]
            answer = {}
            for c, criterion in enumerate(CRITERIA):
                values = ranks[c * MAX_VIDEOS: c * MAX_VIDEOS + n_videos]
                if any(v in (None, "") for v in values):
                    raise gr.Error(f"Please rank every video for {criterion}.", print_exception=False)
                answer[criterion] = dict(zip(labels, values))
            store.submit_trial(participant_id, trial_id, answer)  # validated whole, written whole
            return show(participant_id)

        start.click(on_start, [consent], outputs, api_name="study_start")
        resume.click(on_resume, [resume_id], outputs, api_name="study_resume")
        all_ranks = [d for c in CRITERIA for d in rank_inputs[c]]
        submit.click(on_submit, [participant, current_trial, *all_ranks], outputs, api_name="study_submit").then(
            lambda: [gr.update(value=None) for _ in all_ranks], None, all_ranks, api_name=False)

        if admin_token:
            gate = AdminGate(admin_token)
            with gr.Accordion("Results (admin)", open=False):
                token = gr.Textbox(label="Admin token", type="password")
                show_results = gr.Button("Show results")
                table = gr.Markdown(label="Mean rank per method")
                plot = gr.Plot(label="Mean rank plot")
                downloads = gr.HTML(label="Export links")

                def on_results(given):
                    if not gate.check(given):
                        raise gr.Error("Wrong admin token.", print_exception=False)
                    # Exported into a private folder, sent inline to this admin, then removed: never
                    # placed where Gradio serves files by URL.
                    folder = Path(tempfile.mkdtemp(prefix="study-export-"))
                    try:
                        paths = export_results(store, folder)
                        links = export_links_html(paths)
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
                    summary = summarize(store)
                    return summary_markdown(summary), summary_figure(summary), links

                show_results.click(on_results, [token], [table, plot, downloads], api_name="study_results")
            return gate
    return None
