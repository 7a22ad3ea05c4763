"""Gradio layout and event wiring. Handlers only translate between widgets and :class:`app.service.Studio`."""
from __future__ import annotations

import functools
import logging
import random

import gradio as gr

from adamotion.motion.postprocess import POSTPROCESS_OPTIONS
from app.service import MAX_MOTION_SECONDS, MAX_SAMPLES, Studio, UserInputError
from renderers.skeleton import SkeletonStyle

log = logging.getLogger(__name__)

EXAMPLES = [
    "a person walks forward, then turns left and waves",
    "someone jumps forward twice",
    "a person squats down and stands back up",
    "a person kicks with the right leg",
    "a person waves with both hands",
    "someone walks in a circle",
]

try:  # Hugging Face ZeroGPU: request a GPU per call when the `spaces` package exists; a no-op elsewhere.
    import spaces  # type: ignore

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - depends on the hosting environment
    def gpu(fn=None, **_kwargs):
        return fn if fn is not None else (lambda f: f)


def _user_errors(fn):
    """Turn UserInputError into gr.Error (a message in the UI, an error through the API) and hide tracebacks.

    ``functools.wraps`` keeps ``fn``'s signature visible to Gradio: its parameter names become the API's
    keyword arguments and its ``progress=gr.Progress()`` default enables the progress bar.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserInputError as exc:
            # A refused input is the user's to fix: one log line, no traceback in the server log.
            log.info("refused %s: %s", fn.__name__, exc)
            raise gr.Error(str(exc), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the server must survive any single request
            log.exception("request failed")
            raise gr.Error(f"Something went wrong on the server ({type(exc).__name__}); please try again.") from None

    return wrapper


# Layout fixes Gradio's defaults need: table headers such as "score" stay on one line.
APP_CSS = """
.ranking table th, .ranking table td:nth-child(-n+2) { white-space: nowrap; }
.legend-swatch { display: inline-block; width: 1.6em; height: 0.35em; vertical-align: middle; border-radius: 2px; }
"""
RPRECISION_HELP = ("*R-precision rank (of 32)*: the prompt's place when the evaluator ranks it against 31 other "
                   "gallery captions for this motion; 1 = the motion matches its own prompt best, 32 = worst.")
GUIDANCE_HELP = "How closely to follow the text: 0 ignores it, 2.5 is the trained setting, high values look stiff."
STEPS_HELP = "Denoising steps: fewer is faster, more is smoother and closer to how the model was trained."
TEST_ONLY_HELP = "Search only the held-out test motions, which none of the models saw in training."
SAMPLES_HELP = (f"Motions per encoder. One request renders at most {MAX_MOTION_SECONDS:g} s of motion per encoder "
                "(samples × length; 'auto' counts as 9.8 s).")


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def skeleton_legend_html(style: SkeletonStyle = SkeletonStyle()) -> str:
    """What the stick figure's colours mean, with the renderer's own colours."""
    def swatch(rgb, text):
        return f'<span class="legend-swatch" style="background:{_hex(rgb)}"></span> {text}'

    items = [swatch(style.left_color, "the figure's <b>left</b> arm and leg"),
             swatch(style.right_color, "the figure's <b>right</b> arm and leg"),
             swatch(style.centre_color, "spine and head"),
             swatch(style.trail_color, "path of the hips on the floor")]
    return ('<div id="skeleton-legend"><b>Colours:</b> ' + " &nbsp;·&nbsp; ".join(items)
            + " &nbsp;(facing you, the figure's left is on your right)</div>")


def _score_markdown(result) -> str:
    lines = [f"**{result.label}**", "", "| sample | evaluator similarity ↑ | R-precision rank (of 32) ↓ |", "|---|---|---|"]
    for i, (sim, rank) in enumerate(zip(result.similarity, result.rprecision_rank), start=1):
        rank_text = str(rank) if rank else "–"
        lines.append(f"| {i} | {sim:.3f} | {rank_text} |")
    lines += ["", *(f"sample {i}: {text}" for i, text in enumerate(result.physical, start=1))]
    lines += ["", RPRECISION_HELP]
    return "\n".join(lines)


def _ranking_markdown(title: str, hits) -> str:
    lines = [f"**{title}**", "", "| # | score | caption | id |", "|---|---|---|---|"]
    for i, hit in enumerate(hits, start=1):
        source = " (motion capture)" if hit.source == "motion capture" else ""
        lines.append(f"| {i} | {hit.score:.3f} | {hit.caption}{source} | `{hit.motion_id}` |")
    return "\n".join(lines)


def coverage_markdown(report) -> str:
    """The prompt against the training data: nearest known actions, and a plain warning when far from all."""
    if report is None:
        return "*This checkpoint has no coverage data: prompts are not checked against what it was trained on.*"
    nearest = ", ".join(f"{name} ({sim:.2f})" for name, sim in report.nearest)
    lines = []
    if report.language_warning:
        lines.append(f"**Warning:** {report.language_warning}")
    if not report.in_domain:
        lines.append(f"**Warning: this prompt is outside what the model was trained on** (best similarity "
                     f"{report.best:.2f}, below {report.threshold:.2f}). The model will still produce a motion, "
                     "but it will not show what you asked for, and its scores do not mean it matches.")
    elif report.unseen_words:
        words = ", ".join(f"“{w}”" for w in report.unseen_words)
        lines.append(f"**Check the result:** no training caption uses {words}. If that word names the action, "
                     f"the model cannot perform it and will show the nearest known action "
                     f"({report.nearest[0][0]}) instead.")
    lines.append(f"Nearest known actions (similarity, 1 = same meaning): {nearest}.")
    return "\n\n".join(lines)


def known_actions_markdown(coverage) -> str:
    if coverage is None:
        return "This checkpoint does not list the actions it was trained on."
    calibration = coverage.config.get("calibration") or {}
    lines = [f"The generator was trained on the `{coverage.config.get('dataset', '?')}` corpus, which holds these "
             f"{len(coverage.actions)} actions (and sequences of up to three of them):", "",
             ", ".join(f"**{name}**" for name in coverage.actions), ""]
    if calibration:
        lines.append(f"A prompt whose best similarity to the training captions is below {coverage.threshold:.2f} "
                     f"gets a warning; on held-out test captions {calibration['in_domain_passed']:.0%} pass, and "
                     f"{calibration['out_of_domain_flagged']:.0%} of {calibration['out_of_domain_n']} clearly "
                     "out-of-domain prompts are flagged. Prompts should be in English.")
    return "\n".join(lines)


def build_demo(studio: Studio, study_store=None, delete_cache: tuple[int, int] | None = None) -> gr.Blocks:
    """The layout; ``delete_cache`` = (every_s, max_age_s) for Gradio's own cached copies of outputs."""
    ada_label, van_label = studio.labels
    with gr.Blocks(title="AdaMotion Studio", delete_cache=delete_cache) as demo:
        gr.Markdown(
            "# AdaMotion Studio\n"
            f"Text → human motion with a motion-aware text encoder. Left: **{ada_label}**, right: **{van_label}** "
            f"(checkpoint `{studio.checkpoint_id}`). Same prompt, same seed, same noise."
        )
        last_motion = gr.State(None)  # features of the latest generated adapted sample (for motion → text)
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column(scale=2):
                    prompt = gr.Textbox(label="Prompt", placeholder="a person walks forward and waves", lines=2,
                                        elem_id="prompt", info="Describe one to three body movements, in English.")
                    gr.Examples(EXAMPLES, inputs=prompt)
                    with gr.Accordion("What this model knows", open=False, elem_id="known-actions"):
                        gr.Markdown(known_actions_markdown(studio.coverage))
                with gr.Column(scale=1):
                    length = gr.Textbox(value="auto", label="Length (seconds 2–9.8, or auto)", elem_id="length")
                    with gr.Row():
                        # Text, not gr.Number: a non-numeric seed sent through the API then reaches Studio's
                        # validation (a clear message) instead of failing in Gradio's preprocessing.
                        seed = gr.Textbox(value="0", label="Seed", max_lines=1, elem_id="seed")
                        dice = gr.Button("Random", scale=0, min_width=80, elem_id="random-seed")
                    guidance = gr.Slider(0.0, 10.0, value=2.5, step=0.1, label="Guidance scale", info=GUIDANCE_HELP)
                    max_steps = studio.adapted.scheduler.num_train_timesteps
                    steps = gr.Slider(1, max_steps, value=min(50, max_steps), step=1,
                                      label=f"Sampling steps ({max_steps} = DDPM, fewer = DDIM)", elem_id="steps",
                                      info=STEPS_HELP)
                    samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples", info=SAMPLES_HELP)
                    style = gr.Radio(["skeleton", "mesh"], value="skeleton", label="Render style")
                    cleanup = gr.Radio(list(POSTPROCESS_OPTIONS), value="none", elem_id="cleanup",
                                       label="Clean-up after the model (none = raw model output; smooth = temporal "
                                             "filter; rigid = fixed bone lengths from the rotations)")
            run = gr.Button("Generate", variant="primary", elem_id="generate")
            coverage = gr.Markdown(label="Coverage", elem_id="coverage")
            # The burned-in title and labels name everything: no label chip over the video's first letters.
            side = gr.Video(label="Side by side (in sync)", show_label=False, autoplay=True, loop=True,
                            elem_id="side-by-side")
            gr.HTML(skeleton_legend_html())
            with gr.Row():
                with gr.Column():
                    ada_video = gr.Video(label=ada_label, show_label=False, autoplay=True, loop=True,
                                         elem_id="video-adapted")
                    ada_scores = gr.Markdown(label="Adapted scores")
                with gr.Column():
                    van_video = gr.Video(label=van_label, show_label=False, autoplay=True, loop=True,
                                         elem_id="video-vanilla")
                    van_scores = gr.Markdown(label="Vanilla scores")
            files = gr.File(label="Downloads (mp4, joints/features .npy, BVH, reproducibility bundle)",
                            file_count="multiple", interactive=False, elem_id="downloads")

            @_user_errors
            def on_generate(prompt, length, seed, guidance, steps, samples, style, cleanup="none",
                            progress=gr.Progress()):
                result = gpu(studio.generate)(prompt, seconds=length, seed=seed, guidance_scale=guidance,
                                              steps=steps, num_samples=samples, style=style, progress=progress,
                                              postprocess=cleanup)
                return (str(result.side_by_side), str(result.adapted.video), str(result.vanilla.video),
                        _score_markdown(result.adapted), _score_markdown(result.vanilla),
                        [str(p) for p in result.downloads], coverage_markdown(result.coverage),
                        result.adapted.features[0])

            # One endpoint for both triggers (button and Enter in the prompt box).
            gr.on([run.click, prompt.submit], on_generate, [prompt, length, seed, guidance, steps, samples, style, cleanup],
                  [side, ada_video, van_video, ada_scores, van_scores, files, coverage, last_motion],
                  api_name="generate", concurrency_limit=studio.config.concurrency)
            dice.click(lambda: str(random.randint(0, 2**31 - 1)), None, seed, api_visibility="private")

        with gr.Tab("Retrieve"):
            if studio.gallery is None:
                gr.Markdown("Retrieval is unavailable: the checkpoint has no gallery.")
            else:
                with gr.Row():
                    query = gr.Textbox(label="Text query", value="a person waves with the left hand", scale=3)
                    top_k = gr.Slider(1, 10, value=5, step=1, label="Top-k", scale=1)
                    test_only = gr.Checkbox(value=True, label="Test split only", scale=1, info=TEST_ONLY_HELP)
                search = gr.Button("Search motions", variant="primary")
                with gr.Row():  # adapted left, vanilla right: as in the header and the Generate tab
                    with gr.Column():
                        ada_rank = gr.Markdown(label="Adapted ranking", elem_id="ranking-adapted",
                                               elem_classes="ranking")
                        ada_thumb = gr.Video(label="adapted: top hit", autoplay=True, loop=True,
                                             elem_id="thumb-adapted")
                    with gr.Column():
                        van_rank = gr.Markdown(label="Vanilla ranking", elem_id="ranking-vanilla",
                                               elem_classes="ranking")
                        van_thumb = gr.Video(label="vanilla: top hit", autoplay=True, loop=True,
                                             elem_id="thumb-vanilla")

                @_user_errors
                def on_search(query, k, test_only):
                    both = studio.retrieve(query, k=k, test_only=test_only)
                    return (_ranking_markdown(studio.gallery.label("ada"), both["ada"]),
                            str(studio.thumbnail(both["ada"][0].motion_id)),
                            _ranking_markdown(studio.gallery.label("vanilla"), both["vanilla"]),
                            str(studio.thumbnail(both["vanilla"][0].motion_id)))

                search.click(on_search, [query, top_k, test_only], [ada_rank, ada_thumb, van_rank, van_thumb],
                             api_name="retrieve")

                gr.Markdown("### Motion → captions")
                with gr.Row():
                    motion_id = gr.Dropdown(
                        [(f"{studio.gallery.caption_of(i)} ({i})", i) for i in studio.gallery.motion_ids(split="test")[:200]],
                        label="Gallery motion", info="Test motions, shown by caption; the value is the motion id.")
                    use_generated = gr.Checkbox(value=False, label="Use the motion I just generated")
                caption_search = gr.Button("Find captions")
                with gr.Row():
                    ada_caps = gr.Markdown(label="Adapted captions", elem_classes="ranking")
                    van_caps = gr.Markdown(label="Vanilla captions", elem_classes="ranking")

                @_user_errors
                def on_caption_search(motion_id, use_generated, last, k):
                    feats = last if use_generated else None
                    if use_generated and last is None:
                        raise UserInputError("Generate a motion first (Generate tab), or untick the box.")
                    both = studio.motion_to_text(motion_id=motion_id, features=feats, k=k)
                    return (_ranking_markdown(studio.gallery.label("ada"), both["ada"]),
                            _ranking_markdown(studio.gallery.label("vanilla"), both["vanilla"]))

                caption_search.click(on_caption_search, [motion_id, use_generated, last_motion, top_k],
                                     [ada_caps, van_caps], api_name="motion_to_text")

        admin_gate = None
        if study_store is not None:
            from app.study_tab import build_study_tab

            admin_gate = build_study_tab(study_store, admin_token=studio.config.admin_token)

        with gr.Tab("About"):
            gr.Markdown(studio.about_markdown())
    demo.admin_gate = admin_gate  # for tests: the admin token's back-off state
    return demo
