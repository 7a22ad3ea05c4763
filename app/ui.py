"""Gradio layout and event wiring. Handlers only translate between widgets and :class:`app.service.Studio`."""
from __future__ import annotations

import functools
import logging
import random

import gradio as gr

from adamotion.motion.postprocess import POSTPROCESS_OPTIONS
from app.service import MAX_SAMPLES, Studio, UserInputError

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
            raise gr.Error(str(exc)) from None
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the server must survive any single request
            log.exception("request failed")
            raise gr.Error(f"Something went wrong on the server ({type(exc).__name__}); please try again.") from None

    return wrapper


def _score_markdown(result) -> str:
    lines = [f"**{result.label}**", "", "| sample | evaluator similarity ↑ | R-precision rank (of 32) ↓ |", "|---|---|---|"]
    for i, (sim, rank) in enumerate(zip(result.similarity, result.rprecision_rank), start=1):
        rank_text = str(rank) if rank else "–"
        lines.append(f"| {i} | {sim:.3f} | {rank_text} |")
    lines += ["", *(f"sample {i}: {text}" for i, text in enumerate(result.physical, start=1))]
    return "\n".join(lines)


def _ranking_markdown(title: str, hits) -> str:
    lines = [f"**{title}**", "", "| # | score | caption | id |", "|---|---|---|---|"]
    for i, hit in enumerate(hits, start=1):
        source = " (motion capture)" if hit.source == "motion capture" else ""
        lines.append(f"| {i} | {hit.score:.3f} | {hit.caption}{source} | `{hit.motion_id}` |")
    return "\n".join(lines)


def build_demo(studio: Studio, study_store=None) -> gr.Blocks:
    ada_label, van_label = studio.labels
    with gr.Blocks(title="AdaMotion Studio") as demo:
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
                                        elem_id="prompt")
                    gr.Examples(EXAMPLES, inputs=prompt)
                with gr.Column(scale=1):
                    length = gr.Textbox(value="auto", label="Length (seconds 2–9.8, or auto)", elem_id="length")
                    with gr.Row():
                        # Text, not gr.Number: a non-numeric seed sent through the API then reaches Studio's
                        # validation (a clear message) instead of failing in Gradio's preprocessing.
                        seed = gr.Textbox(value="0", label="Seed", max_lines=1, elem_id="seed")
                        dice = gr.Button("🎲", scale=0, min_width=40)
                    guidance = gr.Slider(0.0, 10.0, value=2.5, step=0.1, label="Guidance scale")
                    max_steps = studio.adapted.scheduler.num_train_timesteps
                    steps = gr.Slider(1, max_steps, value=min(50, max_steps), step=1,
                                      label=f"Sampling steps ({max_steps} = DDPM, fewer = DDIM)", elem_id="steps")
                    samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples")
                    style = gr.Radio(["skeleton", "mesh"], value="skeleton", label="Render style")
                    cleanup = gr.Radio(list(POSTPROCESS_OPTIONS), value="none", elem_id="cleanup",
                                       label="Clean-up after the model (none = raw model output; smooth = temporal "
                                             "filter; rigid = fixed bone lengths from the rotations)")
            run = gr.Button("Generate", variant="primary", elem_id="generate")
            side = gr.Video(label="Side by side (in sync)", autoplay=True, loop=True, elem_id="side-by-side")
            with gr.Row():
                with gr.Column():
                    ada_video = gr.Video(label=ada_label, autoplay=True, loop=True, elem_id="video-adapted")
                    ada_scores = gr.Markdown()
                with gr.Column():
                    van_video = gr.Video(label=van_label, autoplay=True, loop=True, elem_id="video-vanilla")
                    van_scores = gr.Markdown()
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
                        [str(p) for p in result.downloads], result.adapted.features[0])

            run.click(on_generate, [prompt, length, seed, guidance, steps, samples, style, cleanup],
                      [side, ada_video, van_video, ada_scores, van_scores, files, last_motion],
                      api_name="generate", concurrency_limit=studio.config.concurrency)
            prompt.submit(on_generate, [prompt, length, seed, guidance, steps, samples, style, cleanup],
                          [side, ada_video, van_video, ada_scores, van_scores, files, last_motion],
                          concurrency_limit=studio.config.concurrency)
            dice.click(lambda: str(random.randint(0, 2**31 - 1)), None, seed, api_name=False)

        with gr.Tab("Retrieve"):
            if studio.gallery is None:
                gr.Markdown("Retrieval is unavailable: the checkpoint has no gallery.")
            else:
                with gr.Row():
                    query = gr.Textbox(label="Text query", value="a person waves with the left hand", scale=3)
                    top_k = gr.Slider(1, 10, value=5, step=1, label="Top-k", scale=1)
                    test_only = gr.Checkbox(value=True, label="Test split only", scale=1)
                search = gr.Button("Search motions", variant="primary")
                with gr.Row():
                    with gr.Column():
                        van_rank = gr.Markdown()
                        van_thumb = gr.Video(label="vanilla: top hit", autoplay=True, loop=True)
                    with gr.Column():
                        ada_rank = gr.Markdown()
                        ada_thumb = gr.Video(label="adapted: top hit", autoplay=True, loop=True)

                @_user_errors
                def on_search(query, k, test_only):
                    both = studio.retrieve(query, k=k, test_only=test_only)
                    return (_ranking_markdown(f"{studio.gallery.label('vanilla')}", both["vanilla"]),
                            str(studio.thumbnail(both["vanilla"][0].motion_id)),
                            _ranking_markdown(f"{studio.gallery.label('ada')}", both["ada"]),
                            str(studio.thumbnail(both["ada"][0].motion_id)))

                search.click(on_search, [query, top_k, test_only], [van_rank, van_thumb, ada_rank, ada_thumb],
                             api_name="retrieve")

                gr.Markdown("### Motion → captions")
                with gr.Row():
                    motion_id = gr.Dropdown(studio.gallery.motion_ids(split="test")[:200], label="Gallery motion")
                    use_generated = gr.Checkbox(value=False, label="Use the motion I just generated")
                caption_search = gr.Button("Find captions")
                with gr.Row():
                    van_caps = gr.Markdown()
                    ada_caps = gr.Markdown()

                @_user_errors
                def on_caption_search(motion_id, use_generated, last, k):
                    feats = last if use_generated else None
                    if use_generated and last is None:
                        raise UserInputError("Generate a motion first (Generate tab), or untick the box.")
                    both = studio.motion_to_text(motion_id=motion_id, features=feats, k=k)
                    return (_ranking_markdown(studio.gallery.label("vanilla"), both["vanilla"]),
                            _ranking_markdown(studio.gallery.label("ada"), both["ada"]))

                caption_search.click(on_caption_search, [motion_id, use_generated, last_motion, top_k],
                                     [van_caps, ada_caps], api_name="motion_to_text")

        if study_store is not None:
            from app.study_tab import build_study_tab

            build_study_tab(study_store, admin_token=studio.config.admin_token)

        with gr.Tab("About"):
            gr.Markdown(studio.about_markdown())
    return demo
