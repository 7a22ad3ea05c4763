"""Retrieval metrics of the vanilla vs the adapted encoder on a gallery split (``adamotion retrieval-bench``,
whose command line is :mod:`adamotion.retrieval_commands`)."""
from __future__ import annotations

import logging

import numpy as np

from adamotion.retrieval.gallery import ENCODER_KEYS, RetrievalGallery
from adamotion.utils.numeric import mean_ci95
from adamotion.retrieval.metrics import retrieval_metrics

log = logging.getLogger(__name__)


def retrieval_benchmark(gallery: RetrievalGallery, protocols=("normal", "threshold", "guo"), seed: int = 0,
                        split: str | None = "test", repeats: int = 20, subset: float = 0.8,
                        ) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """``{protocol: {encoder label: {metric: (mean, ci95)}}}`` over ``repeats`` random subsets of the pairs.

    Pairs are (first caption, motion) of every gallery motion in ``split``. Each repeat scores a random
    ``subset`` fraction of them (different seed per repeat; both encoders see the same subsets), so the
    interval reflects which test motions happen to be in the gallery, as the 20 repeats of the generation
    protocol do.
    """
    ids = gallery.motion_ids(split=split)
    if len(ids) < 32:
        raise ValueError(f"the gallery has {len(ids)} motions in split {split!r}; retrieval metrics need at least 32")
    captions = [gallery.caption_of(i) for i in ids]
    size = max(32, int(round(subset * len(ids))))
    rng = np.random.default_rng(seed)
    subsets = [np.sort(rng.choice(len(ids), size=size, replace=False)) for _ in range(repeats)]
    # Caption-caption similarity for the "threshold" protocol comes from the *vanilla* encoder for both
    # columns, so that both are judged against the same notion of "near-identical caption".
    vanilla_text = gallery._text_embeddings(captions, "vanilla")  # (N, D)
    text_sim = (vanilla_text @ vanilla_text.T).numpy()  # (N, N)
    results: dict[str, dict[str, dict[str, tuple[float, float]]]] = {p: {} for p in protocols}
    for key in ENCODER_KEYS:
        text_emb = gallery._text_embeddings(captions, key)  # (N, D)
        motion_emb = gallery._motion_embeddings([gallery.features_of(i) for i in ids], key)  # (N, D)
        sim = (text_emb @ motion_emb.T).numpy()  # (N_text, N_motion), true pairs on the diagonal
        for protocol in protocols:
            per_repeat = []
            for r, chosen in enumerate(subsets):
                sub_text_sim = text_sim[np.ix_(chosen, chosen)] if protocol == "threshold" else None
                per_repeat.append(retrieval_metrics(sim[np.ix_(chosen, chosen)], protocol=protocol,
                                                    text_sim=sub_text_sim, rng=seed + r))
            results[protocol][gallery.label(key)] = {
                metric: mean_ci95([m[metric] for m in per_repeat]) for metric in per_repeat[0]}
    return results
