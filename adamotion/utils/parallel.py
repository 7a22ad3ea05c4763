"""Run one function over many tasks in worker processes (or in-process), with a progress bar."""
from __future__ import annotations

import multiprocessing
from typing import Any, Callable, Iterable


def map_with_workers(function: Callable[[Any], Any], tasks: Iterable[Any], *, workers: int,
                     initializer: Callable[..., None], initargs: tuple = (), chunksize: int = 4,
                     progress: dict | None = None) -> list:
    """``[function(task) for task in tasks]`` in task order, after ``initializer(*initargs)`` in every worker.

    ``workers == 1`` runs in this process (no pickling, easy to debug); more use a ``fork`` pool where the
    platform has it (``spawn`` otherwise). ``progress``: keyword arguments of the tqdm bar (``desc``, ``unit``...).
    """
    from tqdm.auto import tqdm

    tasks = list(tasks)
    bar = dict(total=len(tasks), disable=None, **(progress or {}))
    if workers <= 1:
        initializer(*initargs)
        return [function(task) for task in tqdm(tasks, **bar)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers, initializer=initializer, initargs=initargs) as pool:
        return list(tqdm(pool.imap(function, tasks, chunksize=chunksize), **bar))
