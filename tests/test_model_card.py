"""The model card's goal table and data limitation are computed from the measured files, not written by hand."""
import importlib.util
import json
from pathlib import Path

spec = importlib.util.spec_from_file_location("model_card", Path(__file__).parents[1] / "scripts" / "model_card.py")
card = importlib.util.module_from_spec(spec)
spec.loader.exec_module(card)


def _metric(mean):
    return {"mean": mean, "ci95": 0.0, "n": 1}


def test_goal_table_marks_each_goal_against_ground_truth_of_the_split():
    truth = {"jitter": 4.0, "bone_variation": 0.0, "skating_ratio": 0.06, "penetration": 0.001, "r_precision_top3": 0.8}
    smooth = {"jitter": 5.0, "bone_variation": 0.009, "skating_ratio": 0.08, "penetration": 0.0, "r_precision_top3": 0.7}
    popping = {"jitter": 5.3, "bone_variation": 0.02, "skating_ratio": 0.1, "penetration": 0.002, "r_precision_top3": 0.6}
    report = {"reference": "ground truth", "results": {
        "ground truth": {k: _metric(v) for k, v in truth.items()},
        "smooth": {k: _metric(v) for k, v in smooth.items()},
        "popping": {k: _metric(v) for k, v in popping.items()}}}
    lines = card.goal_lines(report, "mocap split")
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| smooth") or line.startswith("| popping")}
    assert rows["smooth"].count("NOT met") == 0  # 5.0 ≤ 5.2, 0.9 % ≤ 1 %, 0.08 ≤ 0.09, 0 ≤ 0.0015, 0.7 ≥ 0.68
    assert rows["popping"].count("NOT met") == 5  # every goal just missed
    assert lines[0].startswith("**mocap split** (ground truth: jitter 4")


def test_checklist_section_reads_pass_rates_and_the_goal(tmp_path):
    for name, passed in (("adaqf", 14), ("baseline", 9)):
        (tmp_path / "checklist" / name).mkdir(parents=True)
        (tmp_path / "checklist" / name / "checklist.json").write_text(
            json.dumps({"passed": passed, "prompts": 17, "pass_rate": passed / 17}))
    text = "\n".join(card.checklist_lines(tmp_path))
    assert "| adaqf | 14 / 17 (82%) | met |" in text and "| baseline | 9 / 17 (53%) | **NOT met** |" in text
    assert card.checklist_lines(tmp_path / "nothing") == []


def test_data_limitation_follows_the_corpus_sources():
    mixed = {"sources": [{"kind": "procedural"}, {"kind": "motion capture"}]}
    assert "real motion capture" in card.training_data_limitation(mixed)
    assert "synthetic, procedurally generated" in card.training_data_limitation({})
    assert "synthetic, procedurally generated" in card.training_data_limitation(None)
