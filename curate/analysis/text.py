"""Cheap caption text helpers (pure regex, no spaCy): trigger matching, framing words, edits, tokens."""

from __future__ import annotations

import math
import re
from functools import lru_cache

# --- trigger --------------------------------------------------------------------------------

_ALNUM_BEFORE = r"(?<![^\W_])"
_ALNUM_AFTER = r"(?![^\W_])"


@lru_cache(maxsize=64)
def trigger_regex(trigger: str) -> re.Pattern:
    """Matches the trigger and its case/separator/joined/plural variants ("Jane Doe", "janedoe", "jane_does").

    Words of the trigger must appear together and in order, so "jane" alone or "doe" alone never match.
    """
    parts = [p for p in re.split(r"[\s_\-.]+", trigger.strip()) if p]
    body = r"[\s_\-.]*".join(re.escape(p) for p in parts)
    return re.compile(_ALNUM_BEFORE + "(" + body + r")(?:e?s)?" + _ALNUM_AFTER, re.IGNORECASE)


def find_trigger(text: str, trigger: str) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]]]:
    """(exact spans, variant spans with their text). Exact means the very same characters."""
    exact, variants = [], []
    for m in trigger_regex(trigger).finditer(text):
        if m.group(0) == trigger:
            exact.append((m.start(), m.end()))
        else:
            variants.append((m.start(), m.end(), m.group(0)))
    return exact, variants


_WORD = re.compile(r"[^\W_][\w\-]*[^\W_]|[^\W_]")
# words that start many captions without being a trigger
_NOT_TRIGGER = frozenset("""a an the this that photo picture image portrait selfie shot close closeup full half body
    woman man girl boy person lady guy people she he her his their my our young old 1girl 1boy solo""".split())


def guess_trigger(captions: list[str], min_share: float = 0.5) -> str | None:
    """The word that most likely is the trigger when none is configured, or None.

    A candidate is in more than `min_share` of the captions (in one spelling, any case) and looks
    like a made-up token: it has an underscore or a digit, or it opens most of the captions and
    is not an ordinary opening word. The most frequent spelling is returned; ties go to the
    candidate in more captions, then to the one that opens more captions.
    """
    texts = [t for t in captions if t and t.strip()]
    if not texts:
        return None
    seen: dict[str, int] = {}
    first: dict[str, int] = {}
    spelling: dict[str, dict[str, int]] = {}
    for text in texts:
        words = _WORD.findall(text)
        if not words:
            continue
        head = words[0].lower()
        first[head] = first.get(head, 0) + 1
        for w in set(words):
            key = w.lower()
            seen[key] = seen.get(key, 0) + 1
            spelling.setdefault(key, {})
            spelling[key][w] = spelling[key].get(w, 0) + 1
    n = len(texts)
    best: tuple[int, int, str] | None = None
    for key, count in seen.items():
        if count / n <= min_share or key in _NOT_TRIGGER:
            continue
        made_up = "_" in key or any(ch.isdigit() for ch in key)
        opens = first.get(key, 0)
        if not (made_up or opens / n > min_share):
            continue
        cand = (count, opens, key)
        if best is None or cand[:2] > best[:2]:
            best = cand
    if best is None:
        return None
    forms = spelling[best[2]]
    return max(forms, key=lambda w: (forms[w], w == w.lower()))


def trigger_is_first(text: str, trigger: str, prefixes: list[str]) -> bool:
    """Caption starts with the trigger, optionally after an allowed prefix like "a photo of"."""
    body = text.lstrip()
    if body.startswith(trigger) and not re.match(r"[^\W_]", body[len(trigger):len(trigger) + 1]):
        return True
    for prefix in sorted(prefixes, key=len, reverse=True):
        p = prefix.strip()
        if p and body[: len(p)].lower() == p.lower():
            rest = body[len(p):]
            stripped = rest.lstrip(" :")
            if stripped != rest or not p[-1].isalnum():
                if stripped.startswith(trigger) and not re.match(r"[^\W_]", stripped[len(trigger):len(trigger) + 1]):
                    return True
    return False


# --- framing words (shared with the caption.framing-* rules: keep the `framing` values) --------

_SEP = r"[\s_\-]*"
_FRAMING = [
    ("close", rf"extreme{_SEP}close{_SEP}ups?"),
    ("close", rf"close{_SEP}ups?"),
    ("close", rf"close{_SEP}portraits?"),
    ("close", rf"head{_SEP}shots?"),
    ("close", r"head\s+and\s+shoulders"),
    ("close", rf"shoulders{_SEP}up"),
    ("close", rf"bust{_SEP}shots?"),
    ("close", r"portraits?"),
    ("half", rf"half{_SEP}(?:body|length)"),
    ("half", rf"upper{_SEP}body"),
    ("half", rf"waist{_SEP}up"),
    ("half", rf"(?:medium|mid){_SEP}shots?"),
    ("half", rf"cowboy{_SEP}shots?"),
    ("half", rf"(?:three{_SEP}quarters?|3/4){_SEP}(?:shot|length|body)s?"),
    ("half", rf"knees?{_SEP}up"),
    ("full", rf"full{_SEP}(?:body|length|figure)"),
    ("full", rf"head{_SEP}to{_SEP}toe"),
    ("full", rf"whole{_SEP}body"),
]
_FRAMING_RE = re.compile(
    "|".join(f"(?P<{kind}{i}>{_ALNUM_BEFORE}{pat}{_ALNUM_AFTER})" for i, (kind, pat) in enumerate(_FRAMING)),
    re.IGNORECASE,
)


def framing_terms(text: str) -> list[dict]:
    """Framing phrases with their class; longest match wins ("close portrait" is one term)."""
    out = []
    for m in _FRAMING_RE.finditer(text):
        kind = re.sub(r"\d+$", "", m.lastgroup or "")
        out.append({"start": m.start(), "end": m.end(), "text": m.group(0), "framing": kind})
    return out


# --- edits ------------------------------------------------------------------------------------

# sentence-start words that stop being sentence starts once the trigger goes in front of them;
# anything else (names, places, "I") keeps its capital
_LOWER_AFTER_TRIGGER = {"A", "An", "The", "She", "He", "They", "Her", "His", "Their", "This", "That", "In", "On",
                        "At", "With", "Standing", "Sitting", "Walking", "Wearing", "Close", "Half", "Full", "Portrait"}


def prefix_trigger(trigger: str, rest: str) -> str:
    """`trigger, rest`, with a capitalised sentence start in `rest` lower-cased ("A woman" -> "a woman")."""
    rest = rest.lstrip()
    if not rest:
        return trigger
    first = re.match(r"[A-Za-z]+", rest)
    if first and first.group(0) in _LOWER_AFTER_TRIGGER:
        rest = rest[0].lower() + rest[1:]
    return f"{trigger}, {rest}"


def tidy(text: str) -> str:
    """Repair separators after words were cut out: doubled commas, stray "and", double spaces."""
    lines = []
    for line in text.split("\n"):
        s = line
        for _ in range(3):
            s = re.sub(r"[ \t]{2,}", " ", s)
            s = re.sub(r"\s+([,;.:!?])", r"\1", s)
            s = re.sub(r"([,;])(?:\s*[,;])+", r"\1", s)  # ", ," -> ","
            s = re.sub(r"\b(?:and|or|with)\s*([,;.!?]|$)", r"\1", s)  # "x and ," -> "x,"
            s = re.sub(r"([,;])\s*(?:and|or)\s*([.!?]|$)", r"\2", s)
            s = re.sub(r"[,;]\s*([.!?])", r"\1", s)  # "x, ." -> "x."
            s = re.sub(r"([.!?])\s*[,;]", r"\1", s)  # "x., y" -> "x. y"
            s = re.sub(r"\(\s*\)", "", s)
            s = re.sub(r"(?<!\.)\.\s*\.(?!\.)", ".", s)
        s = re.sub(r"^[\s,;:]+", "", s)
        s = re.sub(r"^[.!?]+\s+", "", s)  # the first sentence was cut away whole
        s = re.sub(r"[\s,;:]+$", "", s)
        s = re.sub(r"^(?:and|with)\s+", "", s)
        s = re.sub(r"([.!?;]\s+)and\s+", r"\1", s)
        lines.append(s)
    out = "\n".join(lines)
    if text.endswith("\n") and not out.endswith("\n"):
        out += "\n"
    return out


def cut(text: str, spans: list[tuple[int, int]]) -> str:
    """Delete character spans (may overlap) and tidy what is left."""
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    cap_next = False
    for a, b in merged:
        before = _cap(text[pos:a]) if cap_next else text[pos:a]
        after = text[b:]
        done = "".join(out) + before
        # "She has freckles and she smiles." -> "She smiles.": a cut sentence start keeps its capital
        cap_next = text[a:b][:1].isupper() and (not done.strip() or done.rstrip()[-1] in ".!?")
        # "an asian woman" -> "a woman": the article before a cut agrees with the word after it
        m = re.search(r"\b([Aa]n?)\s*$", before)
        nxt = re.match(r"[\s,]*([A-Za-z])", after)
        if m and nxt:
            art = "an" if nxt.group(1).lower() in "aeiou" else "a"
            art = art.capitalize() if m.group(1)[0] == "A" else art
            before = before[: m.start(1)] + art + before[m.end(1):]
        out.append(before)
        out.append(" ")
        pos = b
    out.append(_cap(text[pos:]) if cap_next else text[pos:])
    return tidy("".join(out))


def _cap(segment: str) -> str:
    m = re.match(r"(\s*)([a-z])([\w'-]*)", segment)
    if not m or "_" in m.group(3):
        return segment  # not a plain word (a trigger like jane_doe keeps its case)
    return segment[:m.start(2)] + m.group(2).upper() + segment[m.end(2):]


# --- token estimate ----------------------------------------------------------------------------

# Qwen2/Qwen3 BPE pre-tokeniser split (contractions, letter runs with one leading non-letter,
# single digits, punctuation runs, whitespace), written with `re` classes instead of \p{L}/\p{N}.
_PRETOKEN = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\w]?[^\W\d_]+|\d|_+| ?[^\s\w]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_TEMPLATE = "<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
_SPECIAL = re.compile(r"<\|im_start\|>|<\|im_end\|>|</?think>")
TEXT_WINDOW = 512  # Klein's Qwen3 encoder: max_sequence_length in diffusers' Flux2KleinPipeline


def _piece_tokens(piece: str) -> int:
    letters = re.sub(r"[^\w]", "", piece)
    if not letters:
        return max(1, math.ceil(len(piece.strip()) / 2)) if piece.strip() else 1
    if not letters.isascii():
        return len(letters)  # non-Latin scripts: about a token per character
    # common English words are one BPE piece; long or rare ones split about every 4 letters
    return 1 if len(letters) <= 6 else math.ceil(len(letters) / 4)


def estimate_tokens(prompt: str) -> int:
    """Conservative (over-)estimate of Qwen3 tokens for the prompt alone, without the chat template."""
    return sum(_piece_tokens(m.group(0)) for m in _PRETOKEN.finditer(prompt))


def template_overhead() -> int:
    """Tokens the chat template adds around a prompt (special tokens count one each)."""
    rest = _SPECIAL.sub("", QWEN_TEMPLATE.replace("{p}", ""))
    return len(_SPECIAL.findall(QWEN_TEMPLATE)) + estimate_tokens(rest)
