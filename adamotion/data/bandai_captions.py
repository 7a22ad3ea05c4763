"""Captions for the Bandai Namco Research Motion dataset: what each action and style looks like, in words.

Every phrase here was written after looking at keyframe strips of the takes (see
``docs/bandai_namco.md``), so it describes what the actor *does* rather than the dataset's label:
"guide" is a sweeping "this manner" gesture of one arm, "respond" raises one hand high as when answering
"here!", "call" leans forward with the hands cupped around the mouth, "bye" waves one hand, "byebye" waves
both hands above the head, "slash" swings an imaginary sword down with both hands from a fighting stance.

As in the procedural corpus (:mod:`adamotion.data.captions`), there are two lexicons: *seen* phrasing for
train/val captions and *held-out* phrasing (other verbs, subjects and style words) for the test split.
No held-out word outside :data:`adamotion.data.captions.SHARED_WORDS` occurs in either seen lexicon
(:func:`held_out_overlap` is empty; the tests assert it). Captions are written with the project's one
tokenizer/tagger (:func:`adamotion.data.captions.format_caption_line`).

Slots: ``{side}`` (left/right), ``{hand}`` ("the left hand" / "both hands"), ``{arm}``, ``{leg}``,
``{turn}`` (left/right). Each style gives subject forms (``"an elderly person"``) and manner phrases
(``"with short, slow steps"``), one of which joins the action phrase.
"""
from __future__ import annotations

import re
from string import Formatter

import numpy as np

from adamotion.data import captions as cap

SEEN, HELD_OUT = cap.SEEN, cap.HELD_OUT

# Action phrases per lexicon. Sided gestures use {hand}/{arm}/{leg}; turns use {turn}.
ACTION_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "walk": {SEEN: ("walks forward", "walks straight forward", "is walking forward"),
             HELD_OUT: ("strolls onward", "paces onward", "treads onward")},
    "run": {SEEN: ("runs forward", "jogs forward", "is running forward"),
            HELD_OUT: ("lopes onward", "trots onward", "races onward")},
    "dash": {SEEN: ("runs forward as fast as possible", "rushes forward at full speed", "runs very fast straight forward"),
             HELD_OUT: ("sprints onward", "dashes onward at top pace", "bolts onward")},
    "walk-back": {SEEN: ("walks backward", "walks backwards", "steps backward for a while"),
                  HELD_OUT: ("retreats rearward", "backpedals rearward", "reverses rearward on foot")},
    "walk-left": {SEEN: ("walks diagonally forward to the left", "walks forward and to the left",
                         "walks forward at an angle to the left"),
                  HELD_OUT: ("strolls onward toward the left", "paces obliquely toward the left")},
    "walk-right": {SEEN: ("walks diagonally forward to the right", "walks forward and to the right",
                          "walks forward at an angle to the right"),
                   HELD_OUT: ("strolls onward toward the right", "paces obliquely toward the right")},
    "walk-turn": {SEEN: ("walks forward and turns {turn}", "walks and makes a {turn} turn",
                         "walks forward, turning to the {turn}"),
                  HELD_OUT: ("strolls onward and pivots {turn}", "paces onward and veers {turn}")},
    "bow": {SEEN: ("bows", "bows forward, bending at the hips", "makes a bow"),
            HELD_OUT: ("inclines the torso in a greeting", "tips forward at the waist politely")},
    "bye": {SEEN: ("waves goodbye with {hand}", "raises {hand} and waves goodbye", "waves {hand} to say goodbye"),
            HELD_OUT: ("flaps {hand} in farewell", "signals farewell with {hand}")},
    "byebye": {SEEN: ("waves both hands above the head to say goodbye", "waves goodbye with both arms raised high",
                      "raises both hands above the head and waves them goodbye"),
               HELD_OUT: ("flaps both arms overhead in farewell", "signals farewell with both palms aloft")},
    "guide": {SEEN: ("motions with {arm} to show where to go", "sweeps {arm} out to show where to go",
                     "points where to go with an open hand"),
              HELD_OUT: ("ushers a guest onward with {arm}", "indicates a route with {arm}")},
    "respond": {SEEN: ("raises {hand} high to answer", "puts {hand} up as if to answer a question",
                       "lifts {hand} up to respond"),
                HELD_OUT: ("hoists {hand} aloft in reply", "elevates {hand} overhead in reply")},
    "call": {SEEN: ("bends forward and calls out with the hands around the mouth",
                    "puts the hands to the mouth and shouts to someone",
                    "bends forward and calls out loudly"),
             HELD_OUT: ("cups the palms by the lips and hollers", "hunches onward and yells toward somebody")},
    "punch": {SEEN: ("throws punches with {fist} in a boxing stance", "punches forward with {fist} again and again",
                     "stands in a fighting stance and punches with {fist}"),
              HELD_OUT: ("jabs repeatedly with {fist}", "strikes onward with {fist} from a guard")},
    "kick": {SEEN: ("kicks high with {leg} from a fighting stance", "kicks with {leg} several times",
                    "stands in a fighting stance and kicks with {leg}"),
             HELD_OUT: ("boots upward with {leg}", "punts aloft with {leg} from a guard")},
    "slash": {SEEN: ("swings an imaginary sword down with both hands", "slashes down with a sword held in both hands",
                     "stands in a fighting stance and swings a sword with both hands"),
              HELD_OUT: ("hacks downward with a blade gripped two handed", "cleaves downward with a blade")},
    "dance": {SEEN: ("dances with big arm movements and kicks", "dances energetically, moving the arms and legs",
                     "dances, swinging the arms and stepping around"),
              HELD_OUT: ("grooves vigorously, flinging the limbs", "boogies with gusto across the floor")},
    "stand": {SEEN: ("stands still", "stands in place", "is standing still"),
              HELD_OUT: ("remains motionless", "idles motionless")},
    "wave": {SEEN: ("waves {hand}", "waves {hand} from side to side", "raises {hand} and waves"),
             HELD_OUT: ("flaps {hand} to and fro", "signals with {hand} to and fro")},
    "raise": {SEEN: ("raises {hand}", "lifts {hand} up and puts {it} down", "raises {hand} up to the head"),
              HELD_OUT: ("hoists {hand} aloft", "elevates {hand} toward the face and lowers {it}")},
}

# Style words: subject forms and manner phrases, per lexicon. Styles that do not change the look much
# ("normal") have none; the plain subjects are used.
STYLE_PHRASES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "active": {SEEN: {"subject": ("an energetic person", "a lively person"), "manner": ("energetically", "with lots of energy")},
               HELD_OUT: {"subject": ("a vigorous figure",), "manner": ("vigorously", "with vim")}},
    "angry": {SEEN: {"subject": ("an angry person", "a furious person"), "manner": ("angrily", "in an angry manner")},
              HELD_OUT: {"subject": ("an irate figure",), "manner": ("irately", "in a huff")}},
    "childish": {SEEN: {"subject": ("a childish person",), "manner": ("like a child", "in a childish manner")},
                 HELD_OUT: {"subject": ("a kiddish figure",), "manner": ("in a kiddish fashion", "playfully")}},
    "chimpira": {SEEN: {"subject": ("a thug",), "manner": ("like a thug, with a cocky swagger", "in a cocky, thuggish manner")},
                 HELD_OUT: {"subject": ("a hoodlum",), "manner": ("in a hoodlum fashion", "with a brash strut")}},
    "feminine": {SEEN: {"subject": ("a feminine person",), "manner": ("in a feminine manner", "gracefully, in a feminine manner")},
                 HELD_OUT: {"subject": ("a girlish figure",), "manner": ("in a ladylike fashion", "daintily")}},
    "giant": {SEEN: {"subject": ("a giant", "a huge heavy person"), "manner": ("like a giant, with big heavy steps", "in a huge, heavy manner")},
              HELD_OUT: {"subject": ("a colossus",), "manner": ("in a colossal fashion", "ponderously")}},
    "happy": {SEEN: {"subject": ("a happy person", "a cheerful person"), "manner": ("happily", "cheerfully")},
              HELD_OUT: {"subject": ("a joyful figure",), "manner": ("joyfully", "gleefully")}},
    "masculinity": {SEEN: {"subject": ("a masculine person",), "manner": ("in a masculine manner", "in a manly manner")},
                    HELD_OUT: {"subject": ("a macho figure",), "manner": ("in a macho fashion", "burlily")}},
    "masculine": {SEEN: {"subject": ("a masculine person",), "manner": ("in a masculine manner", "in a manly manner")},
                  HELD_OUT: {"subject": ("a macho figure",), "manner": ("in a macho fashion", "burlily")}},
    "musical": {SEEN: {"subject": ("a theatrical person",), "manner": ("theatrically, like in a musical", "like a musical performer")},
                HELD_OUT: {"subject": ("a showy figure",), "manner": ("showily", "in a stagey fashion")}},
    "not-confident": {SEEN: {"subject": ("a shy person", "an unsure person"), "manner": ("timidly", "without confidence")},
                      HELD_OUT: {"subject": ("a diffident figure",), "manner": ("hesitantly", "meekly")}},
    "normal": {SEEN: {"subject": (), "manner": ()}, HELD_OUT: {"subject": (), "manner": ()}},
    "old": {SEEN: {"subject": ("an old person", "an old man"), "manner": ("slowly like an old person", "stiffly, like an old man")},
            HELD_OUT: {"subject": ("an aged figure", "a senior"), "manner": ("frailly", "in a frail fashion")}},
    "elderly": {SEEN: {"subject": ("an old person", "an old man"), "manner": ("slowly like an old person", "stiffly, like an old man")},
                HELD_OUT: {"subject": ("an aged figure", "a senior"), "manner": ("frailly", "in a frail fashion")}},
    "proud": {SEEN: {"subject": ("a proud person",), "manner": ("proudly, with the chest out", "in a proud manner")},
              HELD_OUT: {"subject": ("a haughty figure",), "manner": ("haughtily", "pompously")}},
    "sad": {SEEN: {"subject": ("a sad person", "an unhappy person"), "manner": ("sadly, with the head down", "in a sad manner")},
            HELD_OUT: {"subject": ("a gloomy figure",), "manner": ("gloomily", "mournfully")}},
    "tired": {SEEN: {"subject": ("a tired person",), "manner": ("wearily", "as if very tired")},
              HELD_OUT: {"subject": ("a fatigued figure", "a drained figure"), "manner": ("sluggishly", "drowsily")}},
    "exhausted": {SEEN: {"subject": ("an exhausted person", "a tired person"), "manner": ("wearily, dragging the feet", "as if very tired")},
                  HELD_OUT: {"subject": ("a fatigued figure", "a drained figure"), "manner": ("sluggishly", "drowsily")}},
    "youthful": {SEEN: {"subject": ("a young person",), "manner": ("in a young, lively manner", "youthfully")},
                 HELD_OUT: {"subject": ("a juvenile figure",), "manner": ("spryly", "in a sprightly fashion")}},
}

_SIDE_SLOT = {"hand": ("hand", "hands"), "arm": ("arm", "arms"), "leg": ("leg", "legs"), "fist": ("fist", "fists")}


def _fill(template: str, side: str | None, turn: str | None) -> str:
    slots = {name: (f"both {plural}" if side == "both" else f"the {side or 'right'} {singular}")
             for name, (singular, plural) in _SIDE_SLOT.items()}
    slots.update(side=side or "right", turn=turn or "left", it="them" if side == "both" else "it")
    return template.format(**slots)


def describe_take(action: str, style: str, split: str, rng: np.random.Generator, *, side: str | None = None,
                  turn: str | None = None, n: int = 3) -> list[str]:
    """``n`` distinct captions of one take (``action`` a key of :data:`ACTION_PHRASES`).

    Each caption picks a sentence form: style as the subject ("an old person bows"), style as a manner
    phrase ("a person bows wearily") or, when the style is neutral, a plain subject.
    """
    if action not in ACTION_PHRASES:
        raise ValueError(f"no caption phrases for action {action!r}; known: {sorted(ACTION_PHRASES)}")
    if style not in STYLE_PHRASES:
        raise ValueError(f"no caption phrases for style {style!r}; known: {sorted(STYLE_PHRASES)}")
    phrases = ACTION_PHRASES[action][split]
    style_words = STYLE_PHRASES[style][split]
    plain_subjects = cap.SUBJECTS[split][:2] + cap.SUBJECTS[split][3:4]  # no gendered subject for real actors
    out: list[str] = []
    for attempt in range(12 * n):
        verb = _fill(phrases[(attempt + int(rng.integers(len(phrases)))) % len(phrases)], side, turn)
        form = int(rng.integers(3))
        if form == 0 and style_words["subject"]:
            text = f"{style_words['subject'][int(rng.integers(len(style_words['subject'])))]} {verb}."
        elif form == 1 and style_words["manner"]:
            subject = plain_subjects[int(rng.integers(len(plain_subjects)))]
            text = f"{subject} {verb} {style_words['manner'][int(rng.integers(len(style_words['manner'])))]}."
        else:
            subject = plain_subjects[int(rng.integers(len(plain_subjects)))]
            text = f"{subject} {verb}."
        text = re.sub(r"\s+", " ", text).strip()
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    while len(out) < n:
        out.append(out[len(out) % len(out)])
    return out


def _words(text: str) -> set[str]:
    literal = "".join(part for part, _f, _s, _c in Formatter().parse(text))
    return set(re.findall(r"[a-z0-9]+", literal.lower()))


def lexicon_words(split: str) -> frozenset[str]:
    """Every word the Bandai Namco captions of ``split`` can contain (slot fillers included)."""
    words: set[str] = {"the", "both", "left", "right", "hand", "hands", "arm", "arms", "leg", "legs",
                       "fist", "fists", "it", "them"}
    for entry in ACTION_PHRASES.values():
        for phrase in entry[split]:
            words |= _words(phrase)
    for entry in STYLE_PHRASES.values():
        for kind in ("subject", "manner"):
            for phrase in entry[split][kind]:
                words |= _words(phrase)
    for subject in cap.SUBJECTS[split]:
        words |= _words(subject)
    return frozenset(words)


def held_out_overlap() -> frozenset[str]:
    """Words that break the held-out test phrasing of the mixed corpus (must be empty).

    Held-out Bandai Namco words (other than shared function words) found in either seen lexicon, and seen
    Bandai Namco words found in the procedural held-out lexicon; lemmas are compared too.
    """
    def with_lemmas(words):
        return {w for w in words} | {cap.lemma(w, cap.tag_word(w)) for w in words}

    held_out = with_lemmas(lexicon_words(HELD_OUT) - cap.SHARED_WORDS)
    seen = with_lemmas(lexicon_words(SEEN))
    return frozenset((held_out & (seen | set(cap.seen_lexicon()))) | (seen & set(cap.held_out_lexicon())))
