"""`adamotion evaluate`, the retrieval gallery (cache included), `adamotion retrieval-bench` and `adamotion retrieve`,
end to end on the session's tiny trained checkpoint (conftest ``tiny_checkpoint``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from adamotion.cli import main as cli_main
from adamotion.eval.evaluate import METRIC_KEYS, EvalConfig, EvalTarget, evaluate, load_evaluator, run_evaluation
from adamotion.motion.skeleton import HUMANML3D

torch.set_num_threads(1)

SMALL = EvalConfig(repeats=2, num_pairs=32, mm_captions=4, mm_samples=2, steps=2, sampler="ddim", batch_size=32)


@pytest.fixture(scope="module")
def pipelines(tiny_checkpoint):
    from adamotion.pipeline import MotionPipeline

    return {name: MotionPipeline.from_pretrained(tiny_checkpoint / name) for name in ("adaqf", "baseline")}


@pytest.fixture(scope="module")
def evaluator(tiny_checkpoint):
    return load_evaluator(evaluator_dir=str(tiny_checkpoint / "evaluator"), skeleton=HUMANML3D)


# ----------------------------------------------------------------------------- generation evaluation
def test_evaluate_is_seeded_and_has_every_metric_per_repeat(pipelines, evaluator, tiny_corpus):
    targets = [EvalTarget("adaqf", pipelines["adaqf"], "ada"), EvalTarget("baseline", pipelines["baseline"], "vanilla")]
    first = evaluate(targets, tiny_corpus, evaluator, SMALL)
    again = evaluate(targets, tiny_corpus, evaluator, SMALL)
    assert list(first) == ["ground truth", "adaqf", "baseline"]
    for row in ("adaqf", "baseline"):
        values = first[row]
        assert set(values) == set(METRIC_KEYS) and "jitter" in values and "floating_ratio" in values
        assert all(len(values[k]) == SMALL.repeats for k in METRIC_KEYS), values
        for top in values["r_precision"]:
            assert len(top) == 3 and 0 <= top[0] <= top[1] <= top[2] <= 1  # top-1 <= top-2 <= top-3
        assert all(v >= 0 for v in values["fid"]) and all(0 <= v <= 1 for v in values["skating_ratio"])
        assert values == again[row]  # same seeds, same numbers
        # each repeat of a MultiModality caption gets its own seed: repeats differ (0.0 when they shared one)
        assert min(values["multimodality"]) > 1e-3, values["multimodality"]
    assert first["ground truth"]["multimodality"] == []  # no multimodality for real motions
    # real joints keep their bone lengths (features rebuilt by FK) while 2-step samples do not, and jitter more
    assert max(first["ground truth"]["bone_variation"]) < 1e-3 < min(first["adaqf"]["bone_variation"])
    assert max(first["ground truth"]["jitter"]) < min(first["adaqf"]["jitter"])
    # real motions against the real pool score a far smaller FID than 2-step samples from a barely trained model
    assert max(first["ground truth"]["fid"]) < min(first["adaqf"]["fid"] + first["baseline"]["fid"])


def test_adapters_off_change_the_evaluation(pipelines, evaluator, tiny_corpus):
    adapted = evaluate([EvalTarget("a", pipelines["adaqf"], "ada")], tiny_corpus, evaluator, SMALL, include_ground_truth=False)
    vanilla = evaluate([EvalTarget("a", pipelines["adaqf"], "vanilla")], tiny_corpus, evaluator, SMALL,
                       include_ground_truth=False)
    assert adapted["a"]["fid"] != vanilla["a"]["fid"]


def test_evaluate_command_writes_report_table_and_plots(tiny_checkpoint, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "eval"
    code = cli_main(["evaluate", f"AdaQF={tiny_checkpoint / 'adaqf'}", f"baseline={tiny_checkpoint / 'baseline'}:vanilla",
                     "--data", str(tiny_corpus), "--evaluator", str(tiny_checkpoint / "evaluator"), "--out", str(out),
                     "--quick", "--repeats", "2", "--num-pairs", "32", "--steps", "2", "--mm-captions", "3"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    text = json.dumps(report)
    assert "AdaQF" in text and "baseline" in text and "ground truth" in text
    table = (out / "report.md").read_text()
    assert "±" in table and "FID" in table and "AdaQF" in table
    assert (out / "metrics.png").stat().st_size > 5_000
    saved = json.loads((out / "eval_config.json").read_text())
    assert saved["repeats"] == 2 and saved["steps"] == 2 and saved["num_pairs"] == 32 and saved["mm_captions"] == 3
    printed = capsys.readouterr().out
    assert "| Method |" in printed and "report.md" in printed  # the table, then the file paths
    # every table names its judge: the independent evaluator and its weight fingerprint
    from adamotion.utils.serialization import weights_fingerprint

    fingerprint = weights_fingerprint(tiny_checkpoint / "evaluator")
    assert report["evaluator"].startswith("independent T2M-architecture evaluator") and fingerprint[:12] in report["evaluator"]
    assert fingerprint[:12] in table and "Physical quality" in table and "Jitter (m/s²)" in table


def test_evaluate_refuses_the_extractors_a_generator_trained_against(tiny_checkpoint, tiny_corpus, tmp_path, capsys):
    from adamotion.eval.evaluate import feedback_fingerprint
    from adamotion.utils.serialization import weights_fingerprint

    extractors = weights_fingerprint(tiny_checkpoint / "extractors")
    assert feedback_fingerprint(tiny_checkpoint / "adaqf") == extractors  # recorded by train_generator
    assert weights_fingerprint(tiny_checkpoint / "evaluator") != extractors
    out = tmp_path / "circular"
    code = cli_main(["evaluate", str(tiny_checkpoint / "adaqf"), "--data", str(tiny_corpus), "--out", str(out),
                     "--evaluator", str(tiny_checkpoint / "extractors"), "--quick", "--repeats", "1", "--steps", "2"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "refusing to evaluate" in error and "trained against" in error and extractors[:12] in error
    assert not out.exists()  # nothing generated, nothing written


def test_evaluate_writes_one_table_per_data_root_and_split(tiny_checkpoint, tiny_corpus, tmp_path):
    out = tmp_path / "splits"
    config = EvalConfig(repeats=1, num_pairs=32, mm_captions=2, mm_samples=2, steps=2, sampler="ddim", batch_size=32)
    run_evaluation([f"AdaQF={tiny_checkpoint / 'adaqf'}"], [str(tiny_corpus), f"{tiny_corpus}:train"], out,
                   evaluator_dir=str(tiny_checkpoint / "evaluator"), config=config)
    test_report = json.loads((out / f"{tiny_corpus.name}-test" / "report.json").read_text())
    train_report = json.loads((out / f"{tiny_corpus.name}-train" / "report.json").read_text())
    assert "test split" in test_report["title"] and "train split" in train_report["title"]
    real_test, real_train = (r["results"]["ground truth"]["jitter"]["values"] for r in (test_report, train_report))
    assert real_test != real_train  # each table measured its own split


def test_separate_evaluations_merge_into_the_joint_table(tiny_checkpoint, tiny_corpus, tmp_path, capsys):
    """Evaluating a model later and merging gives the numbers a joint run gives (same pairs, same seeds)."""
    common = ["--data", str(tiny_corpus), "--evaluator", str(tiny_checkpoint / "evaluator"), "--quick",
              "--repeats", "2", "--num-pairs", "32", "--steps", "2", "--mm-captions", "3", "--mm-samples", "2"]
    ada, base = f"AdaQF={tiny_checkpoint / 'adaqf'}", f"baseline={tiny_checkpoint / 'baseline'}:vanilla"
    assert cli_main(["evaluate", ada, base, "--out", str(tmp_path / "joint"), *common]) == 0
    assert cli_main(["evaluate", ada, "--out", str(tmp_path / "a"), *common]) == 0
    assert cli_main(["evaluate", base, "--out", str(tmp_path / "b"), *common]) == 0
    assert cli_main(["evaluate-merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "merged"),
                     "--title", "merged"]) == 0
    assert "| Method |" in capsys.readouterr().out
    joint = json.loads((tmp_path / "joint" / "report.json").read_text())
    merged = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert merged["methods"] == ["AdaQF", "baseline", "ground truth"]
    for method in joint["methods"]:
        for key, stat in joint["results"][method].items():
            np.testing.assert_allclose(merged["results"][method][key]["values"], stat["values"], rtol=1e-6)
    assert (tmp_path / "merged" / "metrics.png").is_file() and "merged" in (tmp_path / "merged" / "report.md").read_text()

    other = common.copy()
    other[other.index("--repeats") + 1] = "3"  # other caption-motion pairs: the reference rows differ
    assert cli_main(["evaluate", ada, "--out", str(tmp_path / "c"), *other]) == 0
    assert cli_main(["evaluate-merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "re"),
                     "--rename", "baseline=vanilla generator"]) == 0
    renamed = json.loads((tmp_path / "re" / "report.json").read_text())
    assert renamed["methods"] == ["AdaQF", "vanilla generator", "ground truth"]
    assert cli_main(["evaluate-merge", str(tmp_path / "joint"), str(tmp_path / "b"), "--out", str(tmp_path / "dr"),
                     "--drop", "baseline"]) == 0
    assert json.loads((tmp_path / "dr" / "report.json").read_text())["methods"] == ["AdaQF", "ground truth"]
    np.testing.assert_allclose(renamed["results"]["vanilla generator"]["fid"]["values"],
                               joint["results"]["baseline"]["fid"]["values"])
    assert json.loads((tmp_path / "re" / "merge.json").read_text())["renamed"] == {"baseline": "vanilla generator"}
    capsys.readouterr()
    for reports, options, message in ((["b", "c"], [], "different caption-motion pairs"),
                                      (["a", "joint"], [], "already in another report"),
                                      (["a", "nothing"], [], "no report here"),
                                      (["a", "b"], ["--drop", "nobody"], "no report has"),
                                      (["a", "b"], ["--rename", "AdaQF"], "OLD=NEW")):
        assert cli_main(["evaluate-merge", *(str(tmp_path / r) for r in reports), *options,
                         "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_evaluate_errors_name_the_problem(tiny_checkpoint, tiny_corpus, tmp_path, capsys):
    assert cli_main(["evaluate", str(tiny_checkpoint / "adaqf"), "--data", str(tiny_corpus),
                     "--out", str(tmp_path / "e")]) == 2
    assert "--evaluator" in capsys.readouterr().err
    assert cli_main(["evaluate", str(tmp_path / "missing"), "--data", str(tiny_corpus),
                     "--evaluator", str(tiny_checkpoint / "evaluator"), "--out", str(tmp_path / "e")]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs at least 32"):
        run_evaluation([str(tiny_checkpoint / "adaqf")], tiny_corpus, tmp_path / "e",
                       evaluator_dir=str(tiny_checkpoint / "evaluator"), config=EvalConfig(split="val", repeats=1))
    with pytest.raises(ValueError, match="do not fill one R-precision pool of 32; evaluate at least 32 pairs"):
        run_evaluation([str(tiny_checkpoint / "adaqf")], tiny_corpus, tmp_path / "e",
                       evaluator_dir=str(tiny_checkpoint / "evaluator"),
                       config=EvalConfig(split="train", repeats=1, num_pairs=16))


# ----------------------------------------------------------------------------- retrieval
@pytest.fixture
def checkpoint_copy(tiny_checkpoint, tmp_path):
    copy = tmp_path / "ckpt"
    for name in ("adaqf", "retrieval_vanilla", "retrieval_ada", "gallery"):
        shutil.copytree(tiny_checkpoint / name, copy / name)
    return copy


def test_gallery_index_is_cached_and_rebuilt_only_for_the_changed_encoder(checkpoint_copy, tmp_path, monkeypatch):
    from adamotion.retrieval_commands import open_gallery
    from adamotion.retrieval.gallery import RetrievalGallery

    built = []
    original = RetrievalGallery._build_index
    monkeypatch.setattr(RetrievalGallery, "_build_index", lambda self, key: built.append(key) or original(self, key))
    cache = tmp_path / "cache"
    first = open_gallery(checkpoint_copy, None, cache_dir=cache)
    assert sorted(built) == ["ada", "vanilla"]
    query = first.text_to_motion("a person jumps", k=3, split=None)

    built.clear()
    second = open_gallery(checkpoint_copy, None, cache_dir=cache)
    assert built == []  # both indexes came from the cache ...
    assert second.text_to_motion("a person jumps", k=3, split=None) == query  # ... and answer the same

    weights = checkpoint_copy / "retrieval_ada" / "model.safetensors"
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 0.01
    save_file(tensors, str(weights), metadata={"format": "pt"})
    built.clear()
    open_gallery(checkpoint_copy, None, cache_dir=cache)
    assert built == ["ada"]  # only the changed encoder's index is rebuilt


def test_text_to_motion_and_motion_to_text_with_both_encoders(checkpoint_copy, tmp_path):
    from adamotion.retrieval_commands import open_gallery

    gallery = open_gallery(checkpoint_copy, None, cache_dir=tmp_path / "cache")
    test_ids = gallery.motion_ids(split="test")
    both = gallery.text_to_motion("a person jumps", k=4, split="test")
    assert set(both) == {"vanilla", "ada"}
    for hits in both.values():
        assert len(hits) == min(4, len(test_ids)) and all(h.split == "test" for h in hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)
    # each encoder scores in its own space: a hit's score is the cosine of that encoder's query and motion embeddings
    queries = {key: gallery._text_embeddings(["a person jumps"], key)[0].numpy() for key in both}
    assert not np.allclose(queries["vanilla"], queries["ada"], atol=1e-4)  # two encoders, two spaces
    for key, hits in both.items():
        for hit in hits:
            motion = gallery._motion_embeddings([gallery.features_of(hit.motion_id)], key)[0].numpy()
            cosine = float(queries[key] @ motion / (np.linalg.norm(queries[key]) * np.linalg.norm(motion)))
            assert hit.score == pytest.approx(cosine, abs=2e-3), (key, hit.motion_id)

    motion_id = test_ids[0]
    captions = gallery.motion_to_text(gallery.features_of(motion_id), k=5)
    for hits in captions.values():
        assert len(hits) == 5 and all(h.caption for h in hits)
    # the gallery stores the clip exactly (float16) and gives joints of the same length
    assert gallery.joints_of(motion_id).shape == (gallery.features_of(motion_id).shape[0], 22, 3)


def test_retrieval_bench_command_prints_and_writes_tables_with_ci(checkpoint_copy, tmp_path, capsys):
    out_json, out_md = tmp_path / "retrieval.json", tmp_path / "retrieval.md"
    code = cli_main(["retrieval-bench", "--checkpoint", str(checkpoint_copy), "--split", "all", "--repeats", "3",
                     "--json", str(out_json), "--markdown", str(out_md)])
    assert code == 0
    results = json.loads(out_json.read_text())
    assert set(results) == {"normal", "threshold", "guo"}
    for protocol, table in results.items():
        assert len(table) == 2 and any("vanilla" in label for label in table) and any("AdaQF" in label for label in table)
        for metrics in table.values():
            r1, r10 = metrics["t2m/R@1"][0], metrics["t2m/R@10"][0]
            assert 0 <= r1 <= r10 <= 100 and metrics["t2m/R@1"][1] >= 0
        # three different random subsets: some figure varies between them (a CI of 0 everywhere = one subset)
        assert any(ci > 0 for metrics in table.values() for _, ci in metrics.values()), protocol
    text = out_md.read_text()
    assert "±" in text and "protocol: guo" in text and "Δ" in text
    # the Markdown tables show the JSON's numbers: each protocol's t2m R@1 row, every encoder's mean ± CI
    for protocol, table in results.items():
        section = text.split(f"### protocol: {protocol}")[1].split("### protocol:")[0]
        row = next(line for line in section.splitlines() if line.startswith("| t2m/R@1 "))
        for mean, ci in (metrics["t2m/R@1"] for metrics in table.values()):
            assert f"{mean:.2f}" in row and f"± {ci:.2f}" in row, (protocol, row)
    assert "protocol: normal" in capsys.readouterr().out


def test_retrieve_command_prints_both_rankings(checkpoint_copy, capsys):
    assert cli_main(["retrieve", "a person waves with the left hand", "--checkpoint", str(checkpoint_copy),
                     "--top-k", "3", "--all-splits"]) == 0
    out = capsys.readouterr().out
    assert "(vanilla)" in out and "LoRA (AdaQF)" in out
    assert len([line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]) == 6
    assert cli_main(["retrieve", "   ", "--checkpoint", str(checkpoint_copy)]) == 2
    assert "query is empty" in capsys.readouterr().err


def test_a_broken_gallery_fails_with_the_path(checkpoint_copy, tmp_path):
    from adamotion.retrieval.gallery import GalleryData
    from adamotion.utils.serialization import CheckpointError

    (checkpoint_copy / "gallery" / "features.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"features\.safetensors: missing"):
        GalleryData(checkpoint_copy / "gallery")


def test_generation_cache_rescores_the_same_motions(pipelines, evaluator, tiny_checkpoint, tiny_corpus, tmp_path):
    from dataclasses import replace

    from adamotion.utils.serialization import weights_fingerprint

    config = replace(SMALL, repeats=1, cache_dir=str(tmp_path / "cache"))
    target = EvalTarget("adaqf", pipelines["adaqf"], "ada", fingerprint=weights_fingerprint(tiny_checkpoint / "adaqf"))
    first = evaluate([target], tiny_corpus, evaluator, config, include_ground_truth=False)
    cached = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 2  # the R-precision batch and the MultiModality batch

    class NoGeneration:
        skeleton = HUMANML3D

        def __call__(self, *args, **kwargs):
            raise AssertionError("generated again despite the cache")

    again = evaluate([replace(target, pipeline=NoGeneration())], tiny_corpus, evaluator, config,
                     include_ground_truth=False)
    assert again == first
    other = replace(target, fingerprint="0" * 64, pipeline=NoGeneration())  # other weights: a cache miss
    with pytest.raises(AssertionError, match="generated again"):
        evaluate([other], tiny_corpus, evaluator, config, include_ground_truth=False)
