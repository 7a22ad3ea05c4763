"""The Study tab: consent, anonymous participant ids, counter-balanced trials, rankings, admin results."""
from __future__ import annotations

import functools
import hmac
import logging
import tempfile

import gradio as gr

from adamotion.study.export import export_results, summarize, summary_markdown
from adamotion.study.store import CRITERIA, CRITERION_QUESTIONS, StudyError, StudyStore

log = logging.getLogger(__name__)
MAX_VIDEOS = 4


def _study_errors(fn):
    @functools.wraps(fn)  # keeps the signature: Gradio names the API parameters after it
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StudyError as exc:
            raise gr.Error(str(exc)) from None
    return wrapper


def build_study_tab(store: StudyStore, admin_token: str | None) -> None:
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
        id_box = gr.Markdown()
        progress = gr.Markdown()
        prompt_md = gr.Markdown()
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
                raise gr.Error("Please tick the consent box to take part.")
            return show(store.new_participant())

        @_study_errors
        def on_resume(participant_id):
            participant_id = (participant_id or "").strip()
            store.check_participant(participant_id)
            return show(participant_id)

        @_study_errors
        def on_submit(participant_id, trial_id, *ranks):
            if not participant_id or not trial_id:
                raise gr.Error("Start or resume a session first.")
            labels = [chr(ord("A") + i) for i in range(n_videos)]
            for c, criterion in enumerate(CRITERIA):
                values = ranks[c * MAX_VIDEOS: c * MAX_VIDEOS + n_videos]
                if any(v in (None, "") for v in values):
                    raise gr.Error(f"Please rank every video for {criterion}.")
                store.submit(participant_id, trial_id, criterion, dict(zip(labels, values)))
            return show(participant_id)

        start.click(on_start, [consent], outputs, api_name="study_start")
        resume.click(on_resume, [resume_id], outputs, api_name="study_resume")
        all_ranks = [d for c in CRITERIA for d in rank_inputs[c]]
        submit.click(on_submit, [participant, current_trial, *all_ranks], outputs, api_name="study_submit").then(
            lambda: [gr.update(value=None) for _ in all_ranks], None, all_ranks, api_name=False)

        if admin_token:
            with gr.Accordion("Results (admin)", open=False):
                token = gr.Textbox(label="Admin token", type="password")
                show_results = gr.Button("Show results")
                table = gr.Markdown()
                plot = gr.Image(label="Mean rank per method", type="filepath")
                files = gr.File(label="Export", file_count="multiple")

                def on_results(given):
                    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), admin_token.encode()):
                        raise gr.Error("Wrong admin token.")
                    paths = export_results(store, tempfile.mkdtemp(prefix="study-export-"))
                    return summary_markdown(summarize(store)), str(paths["plot"]), [str(p) for p in paths.values()]

                show_results.click(on_results, [token], [table, plot, files], api_name="study_results")
