"""Builds the served app: the Studio back end, the optional study store, the queue limits."""
from __future__ import annotations

import gradio as gr

from app.config import AppConfig
from app.service import Studio
from app.ui import APP_CSS, build_demo


def create_app(config: AppConfig) -> gr.Blocks:
    """The app, not yet launched; launch it with ``demo.launch(..., **demo.launch_options)``.

    A bad ``--study`` folder raises :class:`adamotion.study.store.StudyError` before any model is loaded.
    """
    study_store = None
    if config.study is not None:
        from adamotion.study.store import StudyStore

        study_store = StudyStore.open(config.study)
    studio = Studio(config)
    demo = build_demo(studio, study_store=study_store, delete_cache=(config.cleanup_every_s, config.cleanup_after_s))
    demo.queue(max_size=config.max_queue, default_concurrency_limit=config.concurrency)
    demo.studio = studio  # for tests and benchmarks
    # Gradio serves only files under the working directory, the temp directory and launch(allowed_paths=...):
    # the request folders and the study videos may live anywhere (--workdir, --study).
    demo.serve_paths = [str(studio.workspaces.root.resolve())]
    if study_store is not None:
        demo.serve_paths.append(str((study_store.folder / "videos").resolve()))
    demo.launch_options = {"allowed_paths": demo.serve_paths, "css": APP_CSS}
    return demo
