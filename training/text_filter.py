"""The paper's rule-based filter of LLM-written differences, plus a direction check against labels.

`make_filter(min_chars=60, check_direction=True)` returns a `TextFilter` for `build_pairs`:
`keep(text, pair) -> (cleaned text, "")` or `(None, reason)`. `build_pairs` counts the reasons
in `PairStats.dropped`. The steps, in order:

1. Take the answer: the text after the first "A:" (an echoed question goes), cut at a
   follow-on "Q:", "I hope" or "Note" (a new question, pleasantries, caveats).
2. Drop junk, each with its reason:
   "markup"              HTML/XML tags, code fences or backticks, braces, backslashes, HTML
                         entities, chat-template tokens ([INST], <<SYS>>, <|...|>, <s>), URLs;
   "non-ascii"           any character outside ASCII;
   "digit run"           MAX_DIGITS + 1 or more digits in a row;
   "repeated characters" one non-space character REPEAT_LIMIT + 1 or more times in a row;
   "repeated words"      one word four or more times in a row ("very very very very").
3. Strip "#1:"-style numbering, "#", "*" and leftover "A:"; newlines and runs of whitespace
   become one space; surrounding quotes go.
4. Drop "empty" texts and "too short" ones (under `min_chars` characters; the paper: 60).
5. Direction check ("reversed direction"), only where both images carry labels; see
   `reversed_direction`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from training.describers.base import PairInput

if TYPE_CHECKING:
    from training.pair_builder import TextFilter

PAPER_MIN_CHARS = 60
MAX_DIGITS = 4  # a year is fine, "2019201920" is junk
REPEAT_LIMIT = 4  # "...." is fine, "!!!!!" is junk

# -- 1-4: the paper's rules ---------------------------------------------------------------------

_ANSWER_START = re.compile(r"\bA:\s*")
_FOLLOW_ON = re.compile(r"\bQ:|\bI hope\b|\bNote\b")
_JUNK: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("markup", re.compile(
        r"</?[A-Za-z!][^<>]*>|`|[{}\\]|&#?\w+;|\[/?INST\]|<</?SYS>>|<\|[^|]*\|>|https?://|www\.", re.IGNORECASE,
    )),
    ("non-ascii", re.compile(r"[^\x00-\x7f]")),
    ("digit run", re.compile(rf"\d{{{MAX_DIGITS + 1},}}")),
    ("repeated characters", re.compile(rf"(\S)\1{{{REPEAT_LIMIT},}}")),
    ("repeated words", re.compile(r"\b(\w+)(?:\W+\1\b){3,}", re.IGNORECASE)),
)
_STRIP = re.compile(r"#\d*:?|\*|\bA:")
_QUOTES = "\"' "


def clean_text(text: str, min_chars: int = PAPER_MIN_CHARS) -> tuple[str | None, str]:
    """Rules 1-4: (cleaned text, "") or (None, reason)."""
    start = _ANSWER_START.search(text)
    answer = text[start.end():] if start else text
    follow_on = _FOLLOW_ON.search(answer)
    if follow_on:
        answer = answer[:follow_on.start()]
    for reason, pattern in _JUNK:
        if pattern.search(answer):
            return None, reason
    answer = " ".join(_STRIP.sub(" ", answer).split()).strip(_QUOTES)
    if not answer:
        return None, "empty"
    if len(answer) < min_chars:
        return None, "too short"
    return answer, ""


# -- 5: direction against labels ----------------------------------------------------------------
#
# A text says how the FIRST image differs from the SECOND. Each clause (split at . ; ! ? and at
# "while", "whereas", "but") has a subject: the first "first"/"second" in it that is not the
# object of a comparison ("than the first", "compared to the second"); no ordinal means the
# first image. A claim in a clause about the second image counts the other way round.
#
# Scenes (count, size, background): "more/fewer/less <shapes>", "a larger/smaller number",
# "larger/bigger/smaller/tinier", "darker/brighter/lighter" (not when followed by a colour or a
# shape noun: "darker red", "lighter circles"), and "<number> ... instead of ..." whose number is
# the other image's count. A comparative after "than", "instead of", "compared to", ... is about
# the other image ("two large squares compared to three smaller triangles"). Only facts that
# differ are judged.
# CryptoPunks (type, accessories): a clause whose explicit subject is one portrait and which
# names (before any "instead of", "than", "unlike", ...) the type or an accessory only the other
# portrait has and none of its own, without a negation ("no", "not", "without", "lacks",
# "missing", ...). Clauses without an explicit ordinal are not judged.
# The heuristics look for a direction error, not for every error: a text they do not understand
# passes.

_CLAUSES = re.compile(r"[.;!?]|\b(?:while|whereas|but)\b", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(first|second)\b", re.IGNORECASE)
_OBJECT_OF = re.compile(
    r"\b(?:than|to|with|from|unlike|versus|vs)\.?\s+(?:(?:in|on|of|for)\s+)?(?:the\s+)?$", re.IGNORECASE
)
_NOUNS = r"objects?|shapes?|circles?|squares?|triangles?|stars?|items?|things?"
_COLOURS = r"colou?rs?|shades?|tones?|red|orange|yellow|green|blue|purple|black|white|gr[ae]y"
_COUNT_WORDS = re.compile(rf"\b(more|fewer|less)\s+(?:\w+\s+){{0,2}}?(?:{_NOUNS})\b", re.IGNORECASE)
_COUNT_NUMBER = re.compile(
    r"\b(?:(larger|greater|bigger|higher)|(smaller|lower|fewer))\s+(?:number|count|amount|quantity)\b", re.IGNORECASE
)
_SIZE = re.compile(r"\b(larger|bigger|smaller|tinier)\b(?!\s+(?:number|count|amount|quantity)\b)", re.IGNORECASE)
_BRIGHTNESS = re.compile(rf"\b(darker|brighter|lighter)\b(?!\s+(?:{_COLOURS}|{_NOUNS})\b)", re.IGNORECASE)
_NUMBERS = {"one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_INSTEAD_OF = re.compile(
    r"\b(one|single|two|three|four|five|six|\d)\s+(?:[\w-]+\s+){0,6}?instead\s+of\b", re.IGNORECASE
)
_NEGATION = re.compile(
    r"\b(?:no|not|none|neither|nor|without|lacks?|lacking|missing|absent)\b|n't\b", re.IGNORECASE
)
_COMPARED_TO = re.compile(r"\b(?:instead of|rather than|than|unlike|compared (?:to|with))\b", re.IGNORECASE)
_MORE = {"more": 1, "fewer": -1, "less": -1, "larger": 1, "bigger": 1, "smaller": -1, "tinier": -1,
         "brighter": 1, "lighter": 1, "darker": -1}


def _clause_subject(clause: str) -> int:
    """+1 when the clause is about the first image (also when it names neither), -1 the second."""
    for match in _ORDINAL.finditer(clause):
        if not _OBJECT_OF.search(clause[:match.start()]):
            return 1 if match.group(1).lower() == "first" else -1
    return 1


def _explicit_subject(clause: str) -> int:
    """Like `_clause_subject`, but 0 when the clause names no image."""
    return _clause_subject(clause) if _ORDINAL.search(clause) else 0


def _head_and_tail(clause: str) -> tuple[str, str]:
    """The clause split at its first "than", "instead of", "compared to", ...: the head is about
    the clause's subject, the tail about the other image ("two large squares compared to three
    smaller triangles"). A clause that opens with the comparison ("Compared to the second, the
    first ...") is all head."""
    parts = _COMPARED_TO.split(clause, maxsplit=1)
    if len(parts) == 1 or not parts[0].strip():
        return clause, ""
    return parts[0], parts[1]


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _scene_reversed(text: str, first: Mapping, second: Mapping) -> bool:
    truth = {  # sign of (first - second) per comparable fact; 0 = same, not judged
        "count": _sign(int(first["count"]) - int(second["count"])),
        "size": _sign((first["size"] == "large") - (second["size"] == "large")),
        "brightness": _sign((first["background"] == "light") - (second["background"] == "light")),
    }
    counts = {1: int(first["count"]), -1: int(second["count"])}
    for clause in _CLAUSES.split(text):
        subject = _clause_subject(clause)
        for part, about in zip(_head_and_tail(clause), (subject, -subject), strict=True):
            claims = [("count", _MORE[m.group(1).lower()]) for m in _COUNT_WORDS.finditer(part)]
            claims += [("count", 1 if m.group(1) else -1) for m in _COUNT_NUMBER.finditer(part)]
            claims += [("size", _MORE[m.group(1).lower()]) for m in _SIZE.finditer(part)]
            claims += [("brightness", _MORE[m.group(1).lower()]) for m in _BRIGHTNESS.finditer(part)]
            if any(truth[fact] * direction * about < 0 for fact, direction in claims):
                return True
        for match in _INSTEAD_OF.finditer(clause):
            word = match.group(1).lower()
            number = int(word) if word.isdigit() else _NUMBERS[word]
            if counts[subject] != counts[-subject] and number == counts[-subject]:
                return True
    return False


def _punk_reversed(text: str, first: Mapping, second: Mapping) -> bool:
    from training.sources.cpunks import TYPE_PHRASES, accessory_phrase

    def words(phrase: str) -> str:
        return re.sub(r"^(?:an?|the)\s+", "", phrase.lower())

    def mentions(clause: str, phrase: str) -> bool:
        return re.search(rf"\b{re.escape(words(phrase))}\b", clause, re.IGNORECASE) is not None

    only = {  # subject -> phrases that belong to that image alone
        1: [accessory_phrase(a) for a in set(first["accessories"]) - set(second["accessories"])],
        -1: [accessory_phrase(a) for a in set(second["accessories"]) - set(first["accessories"])],
    }
    if first["type"] != second["type"]:
        only[1].append(TYPE_PHRASES[str(first["type"])])
        only[-1].append(TYPE_PHRASES[str(second["type"])])
    for clause in _CLAUSES.split(text):
        subject = _explicit_subject(clause)
        if subject == 0 or _NEGATION.search(clause):
            continue
        head, _ = _head_and_tail(clause)
        own = any(mentions(head, phrase) for phrase in only[subject])
        other = any(mentions(head, phrase) for phrase in only[-subject])
        if other and not own:
            return True
    return False


def reversed_direction(text: str, pair: PairInput) -> bool:
    """True when `text` states a difference the other way round from what the labels say.
    Judged for scene pairs (count, size, background) and CryptoPunks pairs (type, accessories);
    other pairs are never judged reversed."""
    first, second = pair.attributes
    scene_keys, punk_keys = ("count", "size", "background"), ("type", "accessories")
    if all(key in labels for key in scene_keys for labels in (first, second)):
        return _scene_reversed(text, first, second)
    if all(key in labels for key in punk_keys for labels in (first, second)):
        return _punk_reversed(text, first, second)
    return False


def make_filter(min_chars: int = PAPER_MIN_CHARS, check_direction: bool = True) -> TextFilter:
    """The paper's filter as a `TextFilter`. min_chars: the paper drops texts under 60
    characters; attribute-written texts are shorter, so use a lower value for them.
    check_direction: also drop texts whose direction contradicts the pair's labels."""

    def keep(text: str, pair: PairInput) -> tuple[str | None, str]:
        cleaned, reason = clean_text(text, min_chars)
        if cleaned is None:
            return None, reason
        if check_direction and reversed_direction(cleaned, pair):
            return None, "reversed direction"
        return cleaned, ""

    return keep
