"""Captions for the procedural corpus: templates, two disjoint lexicons, and a small POS tagger.

Every synthetic motion gets three captions built from phrase templates with varied synonyms and
sentence patterns. The vocabulary is split in two:

* the **seen** lexicon (train and validation captions), e.g. "walks", "jumps", "a person ... then ...";
* the **held-out** lexicon (test captions only), e.g. "strolls", "leaps", "an individual ...; afterwards ...".

Apart from a list of shared function words, directions, body parts and numbers (:data:`SHARED_WORDS`),
no word and no verb lemma of the held-out lexicon occurs anywhere in the seen lexicon
(:func:`lexicon_overlap` returns the empty set; the tests assert it). A text encoder therefore meets the
test phrasing for the first time at evaluation, which is the generalisation the project measures.

Captions are written in the HumanML3D line format ``caption#word/POS word/POS ...#start#end``; tokens
are lower-cased lemmas with universal POS tags from a rule-based tagger (:func:`tag_caption`),
punctuation dropped as in the published data.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from string import Formatter

import numpy as np

SEEN = "seen"
HELD_OUT = "held_out"
SPLITS = (SEEN, HELD_OUT)

POS_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "ADP", "DET", "PRON", "CCONJ", "NUM", "PART", "PUNCT")


@dataclass(frozen=True)
class ActionInfo:
    """What one action of a synthetic motion did, in caption terms.

    ``params`` keys used by the templates: ``direction`` (forward/backward/left/right), ``side``
    (left/right/both), ``count`` (int), ``speed`` (slow/normal/fast), ``level`` (high/low),
    ``extent`` (full/half), ``angle`` (90/180), ``mode`` (family-specific variant).
    """

    family: str
    params: dict = field(default_factory=dict)
    start: int = 0  # first frame of the action inside its motion
    end: int = 0  # one past its last frame


# ----------------------------------------------------------------------------------------------
# Lexicons. Words in SHARED_WORDS may appear in both; everything else is exclusive to one split.
# ----------------------------------------------------------------------------------------------
SHARED_WORDS = frozenset("""
a an the his her their its it them this is with on in into to of and at for from by out over
up down forward backward backwards back sideways left right both one two three four five six seven
eight nine ten once twice times time around side sides arm arms hand hands leg legs foot feet knee knees
head body hips fist fists place chair ball air high low straight half together overhand underhand
clockwise counterclockwise each other opposite again while
""".split())

# Subjects, sentence patterns (with connectors) and speed adverbs per split. In patterns, {S} is the
# subject and {A} {B} {C} the verb phrases of the successive actions.
SUBJECTS = {
    SEEN: ("a person", "the person", "a man", "someone", "a woman"),
    HELD_OUT: ("an individual", "a figure", "somebody", "the subject", "a human"),
}
PATTERNS = {
    SEEN: {
        1: ("{S} {A}.", "{S} {A}", "{S} {A} and stops."),
        2: ("{S} {A}, then {B}.", "{S} {A} and then {B}.", "{S} {A}, after that {B}.", "{S} {A} and {B}"),
        3: ("{S} {A}, then {B}, and then {C}.", "{S} {A}, {B} and finally {C}.", "{S} {A}, then {B}, after that {C}"),
    },
    HELD_OUT: {
        1: ("{S} {A}.", "here {S} {A}.", "in this clip {S} {A}"),
        2: ("{S} {A}; afterwards {B}.", "first {S} {A}, subsequently {B}.", "{S} {A}, next {B}"),
        3: ("{S} {A}, next {B}, lastly {C}.", "first {S} {A}, afterwards {B}, subsequently {C}."),
    },
}
SPEED_ADVERBS = {
    SEEN: {"slow": ("slowly",), "fast": ("quickly", "fast")},
    HELD_OUT: {"slow": ("leisurely", "unhurriedly"), "fast": ("briskly", "rapidly", "hurriedly")},
}

# Verb-phrase templates per family and split. Slots: {dir} direction phrase, {side} left/right,
# {hand}/{arm}/{leg}/{foot}/{fist} "the left hand" / "both arms" ..., {it} it/them, {n} number word, {times} "once" /
# "three times", {speed} " slowly" or "" (with its leading space), {level} high/low, {cw} clockwise or
# counterclockwise, {style} overhand/underhand.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "walk": {
        SEEN: ("walks {dir}{speed}", "takes {n} steps {dir}{speed}", "walks {n} steps {dir}{speed}"),
        HELD_OUT: ("strolls {dir}{speed}", "ambles {dir}{speed}", "saunters {dir} for {n} paces"),
    },
    "jog": {
        SEEN: ("jogs {dir}{speed}", "is jogging {dir}", "does a light jog {dir}"),
        HELD_OUT: ("trots {dir}{speed}", "lopes {dir}", "trots steadily {dir}"),
    },
    "run": {
        SEEN: ("runs {dir}{speed}", "is running {dir}", "runs {dir}"),
        HELD_OUT: ("sprints {dir}", "dashes {dir}{speed}", "races {dir}"),
    },
    "walk_backwards": {
        SEEN: ("walks backwards{speed}", "walks {n} steps backward", "steps back {n} times"),
        HELD_OUT: ("retreats{speed}", "backpedals for {n} paces", "reverses away{speed}"),
    },
    "side_step": {
        SEEN: ("steps sideways {dir}", "side steps {dir}", "walks sideways {dir}"),
        HELD_OUT: ("shuffles sideways {dir}", "sidles {dir}", "shuffles {dir} with {n} paces"),
    },
    "turn_in_place": {
        SEEN: ("turns {dir}", "turns to the {side}", "turns {dir} in place"),
        HELD_OUT: ("pivots {dir}", "rotates toward the {side}", "pivots in place toward the {side}"),
    },
    "turn_around": {
        SEEN: ("turns around", "turns around to the {side}", "turns around in place"),
        HELD_OUT: ("pivots around", "rotates to face the opposite way", "pivots around toward the {side}"),
    },
    "walk_circle": {
        SEEN: ("walks in a circle", "walks in a {cw} circle", "walks around in a circle to the {side}"),
        HELD_OUT: ("traces a {cw} loop on foot", "wanders in a loop toward the {side}", "strolls along a ring"),
    },
    "walk_half_circle": {
        SEEN: ("walks in a half circle", "walks half a circle to the {side}", "walks in a {cw} half circle"),
        HELD_OUT: ("traces half a loop toward the {side}", "wanders along half a ring", "strolls half a {cw} loop"),
    },
    "jump_forward": {
        SEEN: ("jumps forward", "jumps forward {times}", "does a long jump forward"),
        HELD_OUT: ("leaps forward", "bounds ahead {times}", "leaps ahead"),
    },
    "jump_up": {
        SEEN: ("jumps up", "jumps in place {times}", "jumps straight up {times}"),
        HELD_OUT: ("springs upward", "springs up in place {times}", "bounces straight upward"),
    },
    "hop": {
        SEEN: ("hops on {leg}", "hops on one foot {times}", "hops on {foot} {times}"),
        HELD_OUT: ("skips on {foot}", "bounces on one leg {times}", "skips on {leg} {times}"),
    },
    "squat": {
        SEEN: ("squats {times}", "does {n} squats", "squats down and stands back up"),
        HELD_OUT: ("dips down {times}", "sinks low and rises {times}", "dips low {times}"),
    },
    "lunge": {
        SEEN: ("lunges forward with {leg}", "does a lunge with {leg}", "lunges {times} with {leg}"),
        HELD_OUT: ("drops into a deep stride with {leg}", "strides out with {leg} and sinks", "sinks into a stride {times}"),
    },
    "kick": {
        SEEN: ("kicks with {leg}", "kicks {level} with {foot}", "kicks forward {times} with {leg}"),
        HELD_OUT: ("punts with {foot}", "boots the air with {leg}", "punts {level} with {foot} {times}"),
    },
    "punch": {
        SEEN: ("punches forward with {hand}", "punches {times} with {hand}", "throws punches with {hand}"),
        HELD_OUT: ("jabs forward with {fist}", "strikes at the air {times}", "hits out with {fist}"),
    },
    "wave": {
        SEEN: ("waves with {hand}", "waves {hand}", "waves hello with {hand}"),
        HELD_OUT: ("gestures a greeting with {hand}", "signals hi with {hand}", "flaps {hand} in greeting"),
    },
    "clap": {
        SEEN: ("claps {times}", "claps the hands together", "claps hands {n} times"),
        HELD_OUT: ("applauds", "applauds {times}", "smacks the palms together {times}"),
    },
    "raise_arms": {
        SEEN: ("raises {arm} above the head", "lifts {arm} up", "raises {arm} and puts {it} down"),
        HELD_OUT: ("hoists {arm} overhead", "elevates {arm}", "hoists {arm} and drops {it}"),
    },
    "raise_arms_out": {
        SEEN: ("raises {arm} out to the sides", "lifts {arm} out sideways", "holds {arm} out to the side"),
        HELD_OUT: ("extends {arm} outward", "spreads {arm} wide", "elevates {arm} outward"),
    },
    "stretch": {
        SEEN: ("stretches the arms over the head", "stretches", "does a stretch with the arms up"),
        HELD_OUT: ("limbers up", "reaches high overhead", "limbers up reaching overhead"),
    },
    "stretch_sides": {
        SEEN: ("stretches and bends to the side", "bends to the left and to the right", "stretches by bending sideways"),
        HELD_OUT: ("leans toward each side", "limbers up leaning side to side", "tilts the torso to each side"),
    },
    "bow": {
        SEEN: ("bows", "bows forward", "bows down deeply"),
        HELD_OUT: ("inclines the torso", "tips forward at the waist", "inclines forward politely"),
    },
    "sit_down": {
        SEEN: ("sits down", "sits down on a chair", "sits on a chair"),
        HELD_OUT: ("settles onto a seat", "perches on a stool", "settles down onto a stool"),
    },
    "stand_up": {
        SEEN: ("stands up", "stands up from a chair", "gets up from the chair"),
        HELD_OUT: ("rises from a seat", "rises off the stool", "climbs out of the seat"),
    },
    "throw": {
        SEEN: ("throws something with {hand}", "throws a ball {style}", "throws a ball with {hand}"),
        HELD_OUT: ("tosses an object with {hand}", "hurls a ball {style}", "pitches a ball with {hand}"),
    },
    "crouch": {
        SEEN: ("crouches down and stands back up", "crouches low", "crouches down"),
        HELD_OUT: ("hunkers down", "ducks low and comes back up", "hunkers low"),
    },
    "spin": {
        SEEN: ("spins around", "spins in a circle to the {side}", "spins around {times}"),
        HELD_OUT: ("twirls around", "whirls around {times}", "pirouettes toward the {side}"),
    },
    "sway": {
        SEEN: ("sways from side to side", "dances", "dances and sways the hips"),
        HELD_OUT: ("grooves", "rocks side to side", "grooves to music"),
    },
    "march": {
        SEEN: ("marches in place", "marches on the spot", "marches in place lifting the knees"),
        HELD_OUT: ("stomps in place", "treads in place with high knees", "stomps {n} paces in place"),
    },
    "jumping_jacks": {
        SEEN: ("does jumping jacks", "does {n} jumping jacks", "does jumping jacks {times}"),
        HELD_OUT: ("performs star leaps", "executes {n} star leaps", "performs star leaps {times}"),
    },
}
"""Caption template keys. Most equal the motion family; a few families pick a variant by parameter
(``turn_around``, ``walk_half_circle``, ``raise_arms_out``, ``stretch_sides``), see :func:`template_key`."""

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def template_key(info: ActionInfo) -> str:
    """Template entry of an action (a family, or its variant)."""
    p = info.params
    if info.family == "turn_in_place" and p.get("angle", 90) >= 180:
        return "turn_around"
    if info.family == "walk_circle" and p.get("extent") == "half":
        return "walk_half_circle"
    if info.family == "raise_arms" and p.get("mode") == "out":
        return "raise_arms_out"
    if info.family == "stretch" and p.get("mode") == "sides":
        return "stretch_sides"
    return info.family


def _side_phrase(side: str, singular: str, plural: str) -> str:
    """"the left hand" / "both hands"."""
    return f"both {plural}" if side == "both" else f"the {side} {singular}"


def _slots(info: ActionInfo, split: str, rng: np.random.Generator) -> dict[str, str]:
    p = info.params
    side = p.get("side", "right")
    direction = p.get("direction", "forward")
    count = int(p.get("count", 2))
    dir_phrase = {"left": "to the left", "right": "to the right"}.get(direction, direction)
    if direction in ("left", "right") and rng.random() < 0.4:
        dir_phrase = direction
    speed = p.get("speed", "normal")
    adverbs = SPEED_ADVERBS[split].get(speed, ())
    speed_text = f" {adverbs[rng.integers(len(adverbs))]}" if adverbs else ""
    if count == 1:
        times = "once"
    elif count == 2 and rng.random() < 0.5:
        times = "twice"
    else:
        times = f"{_number_word(count)} times"
    turn_side = direction if direction in ("left", "right") else side
    return {
        "dir": dir_phrase,
        "side": turn_side if info.family in ("turn_in_place", "walk_circle", "spin") else side,
        "hand": _side_phrase(side, "hand", "hands"),
        "fist": _side_phrase(side, "fist", "fists"),
        "arm": _side_phrase(side, "arm", "arms"),
        "leg": _side_phrase(side, "leg", "legs"),
        "foot": _side_phrase(side, "foot", "feet"),
        "n": _number_word(count),
        "it": "them" if side == "both" else "it",
        "times": times,
        "speed": speed_text,
        "level": p.get("level", "high"),
        # Seen from above (y up), turning left is counterclockwise.
        "cw": "counterclockwise" if direction == "left" else "clockwise",
        "style": p.get("style", "overhand"),
    }


def _number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def verb_phrase(info: ActionInfo, split: str, rng: np.random.Generator) -> str:
    """One verb phrase ("walks forward slowly") for ``info`` in the lexicon of ``split``."""
    options = TEMPLATES[template_key(info)][split]
    template = options[rng.integers(len(options))]
    text = template.format(**_slots(info, split, rng))
    return re.sub(r"\s+", " ", text).strip()


def describe(actions: list[ActionInfo], split: str, rng: np.random.Generator, n: int = 3) -> list[str]:
    """``n`` distinct captions (when the templates allow) for a motion made of ``actions`` in order."""
    if split not in SPLITS:
        raise ValueError(f"unknown caption split {split!r}; use one of {SPLITS}")
    if not 1 <= len(actions) <= 3:
        raise ValueError(f"captions describe 1 to 3 actions, got {len(actions)}")
    out: list[str] = []
    for _attempt in range(8 * n):
        subject = SUBJECTS[split][rng.integers(len(SUBJECTS[split]))]
        patterns = PATTERNS[split][len(actions)]
        pattern = patterns[rng.integers(len(patterns))]
        phrases = [verb_phrase(a, split, rng) for a in actions]
        text = pattern.format(S=subject, A=phrases[0], B=phrases[1] if len(phrases) > 1 else "",
                              C=phrases[2] if len(phrases) > 2 else "")
        if text not in out:
            out.append(text)
        if len(out) == n:
            break
    while len(out) < n:  # tiny template spaces: repeat rather than return fewer lines
        out.append(out[len(out) % max(1, len(out))])
    return out


_MIRROR_WORDS = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"}


def mirror_caption(text: str) -> str:
    """Swap left/right (and clockwise/counterclockwise) for the mirrored copy of a motion."""
    return re.sub(r"\b(left|right|clockwise|counterclockwise)\b", lambda m: _MIRROR_WORDS[m.group(1)], text)


# ----------------------------------------------------------------------------------------------
# Lexicon bookkeeping
# ----------------------------------------------------------------------------------------------
def _template_words(template: str) -> set[str]:
    literal = "".join(part for part, _field, _spec, _conv in Formatter().parse(template))
    return set(re.findall(r"[a-z0-9]+", literal.lower()))


def lexicon_words(split: str) -> frozenset[str]:
    """Every word the caption generator can write for ``split`` (templates, fillers, patterns)."""
    words: set[str] = set()
    for entry in TEMPLATES.values():
        for template in entry[split]:
            words |= _template_words(template)
    for subject in SUBJECTS[split]:
        words |= _template_words(subject)
    for patterns in PATTERNS[split].values():
        for pattern in patterns:
            words |= _template_words(pattern)
    for adverbs in SPEED_ADVERBS[split].values():
        words.update(adverbs)
    # Slot fillers that are common to both splits.
    words |= {"to", "the", "left", "right", "forward", "backward", "both", "hand", "hands", "fist", "fists", "it", "them", "once",
              "arm", "arms", "leg", "legs", "foot", "feet", "twice", "times", "high", "low", "clockwise",
              "counterclockwise", "overhand", "underhand"}
    words |= set(_NUMBER_WORDS[1:])
    return frozenset(words)


def held_out_lexicon() -> frozenset[str]:
    """Words (and their lemmas) that only the held-out (test) captions use."""
    words = lexicon_words(HELD_OUT) - SHARED_WORDS
    return frozenset(words | {lemma(w, tag_word(w)) for w in words})


def seen_lexicon() -> frozenset[str]:
    """Words (and their lemmas) of the seen (train/val) captions, shared function words included."""
    words = lexicon_words(SEEN)
    return frozenset(words | {lemma(w, tag_word(w)) for w in words})


def lexicon_overlap() -> frozenset[str]:
    """Held-out words or lemmas that also occur in the seen lexicon (must be empty)."""
    return held_out_lexicon() & seen_lexicon()


# ----------------------------------------------------------------------------------------------
# Rule-based POS tagging and lemmatisation
# ----------------------------------------------------------------------------------------------
_LEXICON: dict[str, str] = {}


def _add(pos: str, words: str) -> None:
    for w in words.split():
        _LEXICON[w] = pos


_add("DET", "a an the his her their its this each both every some any")
_add("PRON", "someone somebody it them they he she something hello hi that")
_add("ADP", "with on in into to of at for from by over onto off toward along out above after")
_add("CCONJ", "and or but")
_add("PART", "not")
_add("NUM", " ".join(_NUMBER_WORDS[1:]) + " half")
_add("ADV", "up down forward backward backwards back sideways around again then finally lastly next afterwards "
            "subsequently first here once twice slowly quickly fast leisurely unhurriedly briskly rapidly hurriedly "
            "deeply steadily straight together overhead upward outward wide away ahead politely low high "
            "overhand underhand clockwise counterclockwise while")
_add("ADJ", "left right light long deep high low opposite other half star jumping")
_add("NOUN", "person man woman individual figure subject human arm arms hand hands leg legs foot feet knee knees "
             "head body hips hip fist fists place chair ball air side sides circle loop ring step steps paces pace "
             "jog squat squats lunge stretch punches punch jacks stride seat stool object waist torso palms palm "
             "greeting music spot clip way time times degrees")
_add("VERB", "walks walk walking takes take jogs jogging is runs running strolls ambles saunters trots lopes sprints "
             "dashes races retreats backpedals reverses steps shuffles sidles turns pivots rotates face traces "
             "wanders jumps leaps bounds springs bounces hops skips squats stands dips sinks rises lunges drops "
             "strides kicks punts boots punches throws jabs strikes hits waves gestures signals flaps claps "
             "applauds smacks raises lifts puts hoists elevates holds extends spreads stretches does limbers "
             "reaches bends leans tilts bows inclines tips sits settles perches gets climbs tosses hurls pitches "
             "crouches hunkers ducks comes spins twirls whirls pirouettes sways dances grooves rocks marches "
             "stomps treads lifting reaching leaning performs executes stops bending")
# Verbs of the Bandai Namco motion-capture captions (adamotion.data.bandai_captions).
_add("VERB", "rushes bolts makes gestures sweeps show points ushers indicates answer respond puts shouts calls cups "
             "hollers yells hunches throws swings slashes hacks cleaves dances boogies remains idles lowers reply "
             "moving swinging stepping flinging dragging turning bending veers say")
_add("ADV", "onward rearward obliquely aloft diagonally energetically angrily wearily")
_add("ADJ", "energetic lively angry furious childish feminine huge heavy happy cheerful masculine manly "
            "theatrical shy unsure old proud sad unhappy tired exhausted young vigorous irate kiddish girlish "
            "macho showy diffident aged gloomy fatigued drained juvenile joyful haughty big open imaginary cocky "
            "thuggish brash stagey colossal frail ladylike sprightly fighting boxing full top loud")
_add("ADP", "like as")
# Words that are nouns after a determiner/number/adjective and verbs otherwise.
_NOUN_OR_VERB = frozenset("steps squats punches lunge jog stretch step jump".split())
# left/right: adjective before a noun ("left hand"), noun otherwise ("to the left").
_SIDE_WORDS = frozenset({"left", "right"})

_LEMMA_EXCEPTIONS = {
    "is": "be", "does": "do", "feet": "foot", "running": "run", "jogging": "jog", "gets": "get", "times": "time",
    "jumping": "jump", "lifting": "lift", "reaching": "reach", "leaning": "lean", "bending": "bend",
    "walking": "walk", "hips": "hip", "knees": "knee", "paces": "pace", "backwards": "backwards",
    "bounces": "bounce", "dances": "dance", "races": "race", "lunges": "lunge", "rises": "rise",
    "reverses": "reverse", "strides": "stride", "sidles": "sidle", "ambles": "amble", "saunters": "saunter",
    "limbers": "limber", "pirouettes": "pirouette", "squats": "squat", "strikes": "strike", "perches": "perch",
    "punches": "punch", "crouches": "crouch", "reaches": "reach", "tosses": "toss", "pitches": "pitch",
    "stretches": "stretch", "dashes": "dash", "marches": "march", "smacks": "smack", "jacks": "jack",
    "executes": "execute", "settles": "settle", "gestures": "gesture", "inclines": "incline",
    "hunkers": "hunker", "wanders": "wander", "traces": "trace", "stomps": "stomp", "treads": "tread",
    "rotates": "rotate", "elevates": "elevate", "shuffles": "shuffle", "twirls": "twirl", "whirls": "whirl",
    "grooves": "groove", "backpedals": "backpedal", "retreats": "retreat", "pivots": "pivot", "lopes": "lope",
    "trots": "trot", "sprints": "sprint", "circles": "circle", "degrees": "degree", "palms": "palm",
}


def tag_word(word: str, prev_tag: str | None = None, next_word: str | None = None) -> str:
    """Universal POS tag of one lower-case word, with the two context rules the templates need."""
    if not re.search(r"[a-z0-9]", word):
        return "PUNCT"
    if word.isdigit():
        return "NUM"
    if word in _SIDE_WORDS:
        if next_word is not None and _LEXICON.get(next_word) == "NOUN":
            return "ADJ"
        return "NOUN"
    if word in _NOUN_OR_VERB:
        return "NOUN" if prev_tag in ("DET", "NUM", "ADJ") else "VERB"
    if word in _LEXICON:
        return _LEXICON[word]
    # Unknown words: light suffix heuristics (the corpus itself never needs them).
    if word.endswith("ly"):
        return "ADV"
    if word.endswith("ing"):
        return "VERB"
    return "NOUN"


def lemma(word: str, pos: str) -> str:
    """Lemma of a lower-case word given its tag (rule-based; exceptions listed in ``_LEMMA_EXCEPTIONS``)."""
    if word in _LEMMA_EXCEPTIONS:
        return _LEMMA_EXCEPTIONS[word]
    if pos in ("VERB", "NOUN") and len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        if word.endswith("ies"):
            return word[:-3] + "y"
        if word.endswith(("ches", "shes", "sses", "xes")):
            return word[:-2]
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case word and punctuation tokens."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", text.lower())


def tag_caption(text: str, keep_punct: bool = False) -> list[str]:
    """``word/POS`` tokens (lemmas, HumanML3D style) of a caption; punctuation dropped unless asked."""
    return [f"{lemma(w, t)}/{t}" for w, t in pos_tag(text) if keep_punct or t != "PUNCT"]


def format_caption_line(text: str, start: float = 0.0, end: float = 0.0) -> str:
    """One line of a HumanML3D ``texts/<id>.txt`` file."""
    if "#" in text or "\n" in text:
        raise ValueError(f"caption {text!r} contains '#' or a newline, which the text-file format reserves")
    return f"{text}#{' '.join(tag_caption(text))}#{start:.3f}#{end:.3f}".replace("#0.000#0.000", "#0.0#0.0")


def pos_tag(text: str) -> list[tuple[str, str]]:
    """(surface word, universal POS) pairs of a caption, punctuation included (tagged ``PUNCT``)."""
    words = tokenize(text)
    out: list[tuple[str, str]] = []
    prev: str | None = None
    for i, w in enumerate(words):
        tag = tag_word(w, prev, words[i + 1] if i + 1 < len(words) else None)
        out.append((w, tag))
        prev = tag
    return out


@dataclass(frozen=True)
class CaptionLine:
    """One parsed line of a HumanML3D ``texts/<id>.txt`` file."""

    caption: str
    tokens: tuple[str, ...]  # "word/POS" strings as written in the file
    start: float  # seconds; start == end == 0 (or NaN) means the whole clip
    end: float

    @property
    def whole_clip(self) -> bool:
        return (self.start == 0.0 and self.end == 0.0) or math.isnan(self.start) or math.isnan(self.end)


def parse_caption_line(line: str) -> CaptionLine:
    """Parse ``caption#tokens#start#end``; a line without times covers the whole clip.

    Raises ``ValueError`` (without the file name; callers add it) for an empty caption or bad times.
    """
    parts = line.rstrip("\n").split("#")
    caption = parts[0].strip()
    if not caption:
        raise ValueError("empty caption text")
    tokens = tuple(parts[1].split()) if len(parts) > 1 else tuple(tag_caption(caption))
    start = end = 0.0
    if len(parts) >= 4:
        try:
            start = float(parts[2]) if parts[2].strip() else 0.0
            end = float(parts[3]) if parts[3].strip() else 0.0
        except ValueError:
            raise ValueError(f"start/end times {parts[2]!r}, {parts[3]!r} are not numbers") from None
    return CaptionLine(caption=caption, tokens=tokens, start=start, end=end)
