"""The "prompts carried out" checklist: readings of procedural ground-truth motions match what they show."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adamotion.data.synthetic import generate_motion
from adamotion.eval.checklist import (
    CHECKLIST, Expectation, check, format_checklist, read_motion, run_checklist, write_checklist,
)
from adamotion.motion.features import canonicalize_joints, mirror_joints
from adamotion.motion.skeleton import HUMANML3D as SK

SEEDS = range(3)


def _motion(plan, seed):
    m = generate_motion(np.random.default_rng(seed), plan=plan, skeleton=SK)
    return canonicalize_joints(m.joints, SK), m.actions[0].params


def _expectation(family: str, params: dict) -> Expectation:
    """What a ground-truth motion of ``family`` with ``params`` must read as."""
    if family in ("wave", "raise_arms"):
        return Expectation(raised_hand=params["side"])
    if family == "kick":
        return Expectation(kicking_foot=params["side"])
    if family == "turn_in_place":
        return Expectation(turn=params["direction"])
    if family == "walk":
        return Expectation(forward_min_m=1.0, jump=False)
    if family == "walk_backwards":
        return Expectation(backward_min_m=0.5)
    if family in ("jump_up", "jump_forward"):
        return Expectation(jump=True, sit_and_stand=False)
    if family == "sit_down":
        return Expectation(sit_and_stand=True, jump=False)
    raise AssertionError(family)


@pytest.mark.parametrize("plan", [["wave"], ["raise_arms"], ["kick"], ["turn_in_place"], ["walk"],
                                  ["walk_backwards"], ["jump_up"], ["jump_forward"], ["sit_down", "stand_up"]])
def test_ground_truth_motions_pass_their_own_checks(plan):
    checked = 0
    for seed in SEEDS:
        joints, params = _motion(plan, seed)
        if plan == ["raise_arms"] and params["mode"] == "out":
            continue  # arms out to the sides stay at shoulder height: not "raised"
        if plan == ["walk"] and params.get("direction") != "forward":
            continue
        expectation = _expectation(plan[0], params)
        results = check(read_motion(joints, SK), expectation)
        assert results and all(r.passed for r in results), (plan, params, results)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("plan", [["wave"], ["kick"], ["turn_in_place"]])
def test_mirroring_swaps_the_side_read(plan):
    for seed in SEEDS:
        joints, params = _motion(plan, seed)
        side = params.get("side", params.get("direction"))
        if side == "both":
            continue
        other = {"left": "right", "right": "left"}[side]
        mirrored = read_motion(mirror_joints(joints, SK), SK)
        original = read_motion(joints, SK)
        if plan == ["turn_in_place"]:
            assert mirrored.turn_deg == pytest.approx(-original.turn_deg, abs=1.0)
        elif plan == ["kick"]:
            assert (original.kicking_foot, mirrored.kicking_foot) == (side, other)
        else:
            assert (original.raised_hand, mirrored.raised_hand) == (side, other)


def test_standing_still_reads_as_nothing():
    joints, _ = _motion(["clap"], 0)
    readings = read_motion(joints, SK)
    assert readings.raised_hand == "none" and readings.kicking_foot == "none"
    assert not readings.jumped and not readings.sat_and_stood
    assert abs(readings.turn_deg) < 10 and abs(readings.forward_m) < 0.2
    # a wrong expectation fails and says what was measured
    results = check(readings, Expectation(raised_hand="left", turn="right", jump=True))
    assert [r.passed for r in results] == [False, False, False]
    assert results[0].measured == "none"


def test_known_answer_translation_and_turn():
    """A rigid pose carried 2 m along +z and turned 90° to the left about its root."""
    joints, _ = _motion(["clap"], 1)
    pose = joints[0]  # (J, 3), faces +z
    T = 41
    frames = []
    for t in range(T):
        angle = np.pi / 2 * t / (T - 1)
        rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
        root = pose[0] * [1, 0, 1]
        frames.append((pose - root) @ rot.T + root + [0, 0, 2.0 * t / (T - 1)])
    readings = read_motion(np.stack(frames), SK)
    assert readings.turn_deg == pytest.approx(90 * (1 - 2 * 3 / (T - 1) / 2), abs=5)  # ends averaged over 3 frames
    assert readings.forward_m > 1.6


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        read_motion(np.zeros((10, 21, 3)), SK)
    with pytest.raises(ValueError, match="must be one of"):
        Expectation(raised_hand="up")


def test_checklist_prompts_use_held_out_phrasing_and_ask_something():
    from adamotion.data.captions import held_out_lexicon

    held_out = held_out_lexicon()
    for item in CHECKLIST:
        assert item.expectation.asked(), item.prompt
        words = {w.strip(".,;").lower() for w in item.prompt.split()}
        assert words & held_out, item.prompt


def test_run_checklist_writes_a_report(tiny_checkpoint, tmp_path):
    from adamotion.pipeline import MotionPipeline

    pipe = MotionPipeline.from_pretrained(tiny_checkpoint / "baseline")
    rows = run_checklist(pipe, CHECKLIST[:3], seed=0, steps=2, sampler="ddim", encoder="vanilla")
    assert len(rows) == 3 and all(row.results for row in rows)
    paths = write_checklist(rows, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["prompts"] == 3 and data["passed"] == sum(r.passed for r in rows)
    assert data["rows"][0]["prompt"] == CHECKLIST[0].prompt
    text = paths["md"].read_text()
    assert f"of 3 prompts carried out" in text and text == format_checklist(rows) + "\n"


def test_checklist_command_prints_and_writes_the_pass_rate(tiny_checkpoint, tmp_path, capsys):
    from adamotion.cli import main
    from adamotion.eval.evaluate import parse_checkpoint_spec

    assert parse_checkpoint_spec("Base=some/dir:vanilla") == ("Base", Path("some/dir"), "vanilla")
    assert parse_checkpoint_spec("some/adaqf") == ("adaqf", Path("some/adaqf"), "ada")
    spec = f"tiny baseline={tiny_checkpoint / 'baseline'}:vanilla"
    assert main(["checklist", spec, "--steps", "2", "--sampler", "ddim", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "checklist.json").read_text())
    assert data["prompts"] == len(CHECKLIST)
    assert f"{data['passed']} of {len(CHECKLIST)} prompts carried out" in printed
    assert "tiny baseline" in printed and "raw model output" in printed


def test_own_prompt_file_is_read_and_bad_lines_name_file_and_line(tiny_checkpoint, tmp_path, capsys):
    from adamotion.cli import main
    from adamotion.eval.checklist import load_prompts

    good = tmp_path / "mine.jsonl"
    good.write_text('# my prompts\n{"prompt": "a man waves his left hand", "seconds": 3, "raised_hand": "left"}\n\n'
                    '{"prompt": "someone hops twice", "jump": true}\n', encoding="utf-8")
    prompts = load_prompts(good)
    assert [p.prompt for p in prompts] == ["a man waves his left hand", "someone hops twice"]
    assert prompts[0].seconds == 3.0 and prompts[0].expectation.asked() == {"raised_hand": "left"}
    assert prompts[1].seconds == 5.0 and prompts[1].expectation.asked() == {"jump": True}
    for text, message in (('{"prompt": "x", "raised_hand": "up"}', "mine2.jsonl:1: expectation raised_hand"),
                          ('not json', "mine2.jsonl:1: not JSON"),
                          ('{"prompt": "x", "wave": true}', "unknown keys \\['wave'\\]"),
                          ('{"prompt": "x"}', "asks for no check"), ("# nothing\n", "holds no prompts")):
        (tmp_path / "mine2.jsonl").write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_prompts(tmp_path / "mine2.jsonl")
    spec = f"{tiny_checkpoint / 'baseline'}:vanilla"
    assert main(["checklist", spec, "--prompts", str(good), "--steps", "2", "--sampler", "ddim",
                 "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "checklist.json").read_text())
    assert data["prompts"] == 2 and data["rows"][1]["prompt"] == "someone hops twice"
    assert data["rows"][1]["checks"][0]["check"] == "jumped"
    capsys.readouterr()
    assert main(["checklist", spec, "--prompts", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.jsonl: no such prompt file" in err and "\n" not in err and "Traceback" not in err
