"""Caption rules KL502, KL504-KL509 on real files with real spaCy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from curate.analysis.caption import analyse_texts, reported_spans
from curate.analysis.text import estimate_tokens, find_trigger, framing_terms, template_overhead, tidy
from curate.config import Config
from curate.engine.runner import lint_dataset
from curate.fix.apply import fix_dataset
from curate.testing import make_dataset, run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "face_captions.jsonl"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def cfg(trigger="jane_doe", select=("KL502", "KL504", "KL505", "KL506", "KL507", "KL508", "KL509"), **opts):
    return Config(trigger=trigger, select=list(select), rule_options=opts)


def ds(tmp_path, captions: dict[str, str], name="d"):
    files = {}
    for stem, text in captions.items():
        files[f"{stem}.png"] = PNG
        files[f"{stem}.txt"] = text
    return make_dataset(tmp_path / name, files)


def codes(result, code):
    return [d for d in result.diagnostics if d.code == code]


# --- labelled set --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def labelled():
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    return rows, analyse_texts([r["caption"] for r in rows], trigger="jane_doe")


def _pr(rows, results):
    got = [bool(reported_spans(res["face_spans"])) for res in results]
    tp = sum(g and r["face"] for r, g in zip(rows, got))
    fp = sum(g and not r["face"] for r, g in zip(rows, got))
    fn = sum(not g and r["face"] for r, g in zip(rows, got))
    return tp / (tp + fp), tp / (tp + fn)


def test_labelled_set_precision_recall(labelled):
    rows, results = labelled
    assert len(rows) >= 300
    styles = {s: sum(r.get("style") == s for r in rows) for s in
              ("wd14", "vlm", "blip", "human", "caps", "title", "weights", "typo", "hyphen")}
    assert min(styles.values()) >= 5, styles
    assert sum(not r["face"] for r in rows) >= 120
    precision, recall = _pr(rows, results)
    assert precision >= 0.97, precision
    assert recall >= 0.97, recall


def test_untuned_split_precision_recall(labelled):
    rows, results = labelled
    pick = [i for i, r in enumerate(rows) if r.get("split") == "untuned"]
    assert len(pick) >= 50
    precision, recall = _pr([rows[i] for i in pick], [results[i] for i in pick])
    assert precision >= 0.95, precision
    assert recall >= 0.95, recall


@pytest.mark.parametrize("caption,found", [
    # whose feature: the subject's, or someone else's
    ("a woman with green eyes sitting by a window", ["green eyes"]),
    ("jane_doe, half body, holding a kitten with blue eyes", []),
    ("jane_doe and her uncle, who has a thick grey beard, at a bus stop", []),
    ("jane_doe, full body shot, walking past a bald man", []),
    ("The woman, jane_doe, has a dimple in her chin.", ["dimple in her chin"]),
    # case, weighting, typos, comparatives
    ("JANE_DOE, HALF BODY, GREEN EYES", ["GREEN EYES"]),
    ("Jane_doe, Half Body, Freckles, Denim", ["Freckles"]),
    ("jane_doe, ((short hair:1.2)), park", ["short hair"]),
    ("jane_doe, mooles, close portrait", ["mooles"]),
    ("jane_doe, teddy bear, close portrait", []),
    ("jane_doe, close portrait, curlier hair", ["curlier hair"]),
    ("jane_doe, half body, 50 years old, office", []),
])
def test_face_description_patterns(caption, found):
    (res,) = analyse_texts([caption], trigger="jane_doe")
    assert [s["text"] for s in reported_spans(res["face_spans"])] == found


def test_face_spans_carry_offsets(labelled):
    rows, results = labelled
    for row, res in zip(rows, results):
        for s in res["face_spans"]:
            assert row["caption"][s["start"]:s["end"]] == s["text"]
            assert s["feature"]
            assert all(0 <= a < b <= len(row["caption"]) for a, b in s["fix"])


@pytest.mark.parametrize("caption", [
    "jane_doe, raised eyebrows, eyes closed, looking at camera, chin resting on hand, hand on cheek",
    "jane_doe, red lipstick, eyeliner, sunglasses, face half in shadow, wind in her hair",
    "john_doe, beard of moss on the statue behind him, garden",
])
def test_hard_negatives(caption):
    assert analyse_texts([caption], "jane_doe")[0]["face_spans"] == []


def test_sentence_and_booru_styles():
    res = analyse_texts(["Her eyes are piercing blue.", "he has a strong jawline", "1girl, blue_eyes, long_hair",
                         "a blue-eyed woman with freckles"], "jane_doe")
    texts = [[s["text"] for s in r["face_spans"]] for r in res]
    assert texts[0] == ["eyes are piercing blue"]
    assert texts[1] == ["strong jawline"]
    assert texts[2] == ["blue_eyes", "long_hair"]
    assert texts[3] == ["blue-eyed", "freckles"]


# --- analysis fields ---------------------------------------------------------------------------

def test_framing_terms():
    found = framing_terms("close-up, Upper_Body, head to toe, full-length, three-quarter view, cowboy shot")
    assert [(f["text"], f["framing"]) for f in found] == [
        ("close-up", "close"), ("Upper_Body", "half"), ("head to toe", "full"), ("full-length", "full"),
        ("cowboy shot", "half")]
    assert [f["framing"] for f in framing_terms("a close portrait, shoulders up")] == ["close", "close"]


def test_token_estimate_is_conservative_and_counts_template():
    assert template_overhead() >= 10
    words = "photograph " * 100
    assert estimate_tokens(words) >= 100  # never fewer than the words
    r = analyse_texts(["jane_doe, smiling"], "jane_doe")[0]
    assert r["tokens_estimate"] == estimate_tokens("jane_doe, smiling") + template_overhead()


def test_tidy_repairs_commas():
    assert tidy("jane_doe, , smiling,  park, ") == "jane_doe, smiling, park"
    assert tidy("jane_doe wears a coat and .") == "jane_doe wears a coat."


def test_trigger_variants_are_specific():
    _, variants = find_trigger("Jane Doe, janedoe, JANE-DOE, jane_does, jane, doe, jane_doe", "jane_doe")
    assert [v[2] for v in variants] == ["Jane Doe", "janedoe", "JANE-DOE", "jane_does"]
    exact, variants = find_trigger("a jane and a doe in the woods, mary_jane_doe2", "jane_doe")
    assert exact == [] and variants == []


# --- rules on real datasets ----------------------------------------------------------------------

def test_empty_caption(tmp_path):
    root = ds(tmp_path, {"a": "  \n", "b": "jane_doe, park"})
    r = lint_dataset(root, cfg(), use_cache=False)
    assert [d.path.rsplit("/", 1)[-1] for d in codes(r, "KL502")] == ["a.txt"]


def test_trigger_missing_not_first_variant_and_fix(tmp_path):
    root = ds(tmp_path, {
        "ok": "jane_doe, park bench",
        "photo": "a photo of jane_doe in a park",
        "missing": "sitting in a cafe, warm light",
        "late": "1girl, jane_doe, smiling",
        "variant": "Jane Doe sitting on a bench",
    })
    r = lint_dataset(root, cfg(), use_cache=False)
    assert [d.path.rsplit("/", 1)[-1] for d in codes(r, "KL504")] == ["missing.txt"]
    assert [d.path.rsplit("/", 1)[-1] for d in codes(r, "KL505")] == ["late.txt"]
    assert [d.path.rsplit("/", 1)[-1] for d in codes(r, "KL506")] == ["variant.txt"]
    assert codes(r, "KL505")[0].col == 8
    report = fix_dataset(root, cfg())
    assert not report.runaway
    assert (root / "missing.txt").read_text() == "jane_doe, sitting in a cafe, warm light"
    assert (root / "late.txt").read_text() == "jane_doe, 1girl, smiling"
    assert (root / "variant.txt").read_text() == "jane_doe sitting on a bench"
    assert (root / "photo.txt").read_text() == "a photo of jane_doe in a park"
    assert not [d for d in report.remaining if d.code in ("KL504", "KL505", "KL506")]


def test_variant_then_move_in_one_fix_run(tmp_path):
    root = ds(tmp_path, {"a": "smiling at the camera, JaneDoe, park"})
    fix_dataset(root, cfg())
    assert (root / "a.txt").read_text() == "jane_doe, smiling at the camera, park"


def test_no_trigger_single_dataset_warning(tmp_path):
    root = ds(tmp_path, {"a": "park", "b": "cafe", "c": "beach"})
    r = lint_dataset(root, cfg(trigger=None), use_cache=False)
    trig = [d for d in r.diagnostics if d.code in ("KL504", "KL505", "KL506")]
    assert len(trig) == 1 and "trigger = \"jane_doe\"" in trig[0].message and "--trigger" in trig[0].message


def test_face_description_diagnostics_and_fix(tmp_path):
    text = "jane_doe, brown eyes, oval face, sharp cheekbones, dark wavy hair, smiling, studio lighting"
    root = ds(tmp_path, {"a": text, "clean": "jane_doe, smiling, eyes closed, red lipstick"})
    r = lint_dataset(root, cfg(), use_cache=False)
    diags = codes(r, "KL507")
    assert [d.value for d in diags] == ["brown eyes", "oval face", "sharp cheekbones", "dark wavy hair"]
    assert diags[0].col == 11 and diags[0].end_col == 21
    assert {d.severity for d in diags} == {"error", "warning"}  # hair is a warning
    assert diags[0].fix.applicability == "unsafe"
    safe = fix_dataset(root, cfg())  # unsafe fixes are not applied without --unsafe-fixes
    assert (root / "a.txt").read_text() == text and not safe.changed
    report = fix_dataset(root, cfg(), unsafe=True)
    assert not report.runaway
    assert (root / "a.txt").read_text() == "jane_doe, smiling, studio lighting"
    assert (root / "clean.txt").read_text() == "jane_doe, smiling, eyes closed, red lipstick"
    assert not [d for d in report.remaining if d.code == "KL507"]


def test_face_fix_prose_keeps_grammar_and_trigger(tmp_path):
    root = ds(tmp_path, {
        "a": "jane_doe has a round face and wears thick-rimmed glasses while reading.",
        "b": "jane_doe, a blue-eyed woman with freckles, walks along the pier.",
        "c": "Jane_Doe, blonde hair",  # variant fixed first, then the hair
        "d": "jane_doe sits at a cafe table; he has a strong jawline.",
        "e": "A woman with long blonde hair and green eyes standing in a garden, jane_doe",
        "f": "jane_doe, a woman with dark hair pulled back, reading",
    })
    report = fix_dataset(root, cfg(trigger="jane_doe"), unsafe=True)
    assert not report.runaway
    assert (root / "a.txt").read_text() == "jane_doe wears thick-rimmed glasses while reading."
    assert (root / "b.txt").read_text() == "jane_doe, a woman, walks along the pier."
    assert (root / "c.txt").read_text() == "jane_doe"
    assert (root / "d.txt").read_text() == "jane_doe sits at a cafe table."
    # the whole "with ..." phrase goes, not just its adjectives ("a woman with hair")
    assert (root / "e.txt").read_text() == "jane_doe, a woman standing in a garden"
    # ... unless the hair is described further and the sentence needs the noun
    assert (root / "f.txt").read_text() == "jane_doe, a woman with hair pulled back, reading"


def test_face_words_are_not_common_terms(tmp_path):
    caps = {k: f"jane_doe, green eyes, {place}" for k, place in zip("abcde", ["park", "cafe", "beach", "pier", "bar"])}
    r = lint_dataset(ds(tmp_path, caps), cfg(), use_cache=False)
    assert len(codes(r, "KL507")) == 5
    assert codes(r, "KL508") == []  # already reported as face descriptions, not again as terms


def test_face_fix_never_removes_trigger(tmp_path):
    # the trigger sits inside the clause a fix would delete: the fix must keep it
    root = ds(tmp_path, {"a": "smiling, with jane_doe and green eyes"})
    r = lint_dataset(root, cfg(select=("KL507",)), use_cache=False)
    d = codes(r, "KL507")
    assert d and d[0].fix is not None
    new = d[0].fix.edits[0].text
    assert "jane_doe" in new and "green" not in new


def test_face_options_hair_and_extra_terms(tmp_path):
    root = ds(tmp_path, {"a": "jane_doe, long hair, almond skin, park"})
    r = lint_dataset(root, cfg(**{"caption.face-description": {"hair": False, "extra-terms": ["almond skin"]}}),
                     use_cache=False)
    assert [d.value for d in codes(r, "KL507")] == ["almond skin"]


def test_common_term(tmp_path):
    caps = {f"i{k}": f"jane_doe, studio lighting, black turtleneck, {place}"
            for k, place in enumerate(["park", "cafe", "beach", "office", "street"])}
    caps["i5"] = "jane_doe, studio lighting, red dress, garden"
    root = ds(tmp_path, caps)
    r = lint_dataset(root, cfg(), use_cache=False)
    msgs = {d.value: d.message for d in codes(r, "KL508")}
    terms = [d.message.split('"')[1] for d in codes(r, "KL508")]
    assert sorted(terms) == ["black turtleneck", "studio lighting"]  # words inside reported phrases folded
    assert all(d.path == r.dataset.display_root and d.related for d in codes(r, "KL508"))
    assert "nearly every" in msgs[1.0] and "nearly every" in msgs[round(5 / 6, 3)]
    few = ds(tmp_path, {"a": "jane_doe, studio", "b": "jane_doe, studio", "c": "jane_doe, studio"}, name="few")
    assert codes(lint_dataset(few, cfg(), use_cache=False), "KL508") == []


def test_common_term_threshold_wording(tmp_path):
    caps = {"a": "jane_doe, red dress, park", "b": "jane_doe, red dress, cafe", "c": "jane_doe, red dress, beach",
            "d": "jane_doe, blue coat, office", "e": "jane_doe, green hat, street"}
    root = ds(tmp_path, caps)
    d = codes(lint_dataset(root, cfg(), use_cache=False), "KL508")
    assert [x.message.split('"')[1] for x in d] == ["red dress"]
    assert "nearly" not in d[0].message and d[0].severity == "warning"


def test_too_long(tmp_path):
    long = "jane_doe, " + ", ".join(["standing in a sunlit garden with flowers"] * 80)
    root = ds(tmp_path, {"long": long, "short": "jane_doe, park"})
    d = codes(lint_dataset(root, cfg(), use_cache=False), "KL509")
    assert [x.path.rsplit("/", 1)[-1] for x in d] == ["long.txt"] and d[0].value > 512


def test_too_long_bad_tokenizer_path_is_clean_error(tmp_path):
    root = ds(tmp_path, {"a": "jane_doe, park"})
    (root / "klint.toml").write_text('trigger = "jane_doe"\n[rule-options."caption.too-long"]\n'
                                     'tokenizer = "/nonexistent/tok"\n')
    res = run_cli([str(root), "--select", "KL509"], cwd=tmp_path)
    assert res.exit_code == 2 and "klint: error:" in res.stderr and "Traceback" not in res.stderr


def test_warm_relint_imports_no_spacy(tmp_path):
    root = ds(tmp_path, {"a": "jane_doe, brown eyes", "b": "jane_doe, park"})
    code = ("import sys; from curate.config import Config; from curate.engine.runner import lint_dataset;"
            f"r = lint_dataset({str(root)!r}, Config(trigger='jane_doe', select=['caption']));"
            "print(sorted(m for m in ('spacy', 'torch', 'transformers') if m in sys.modules));"
            "print(sum(d.code == 'KL507' for d in r.diagnostics))")
    import subprocess

    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "spacy" in first.stdout.splitlines()[0]
    assert second.stdout.splitlines()[0].count("spacy") == 0
    assert second.stdout.splitlines()[1] == "1"


@pytest.mark.parametrize("text, expected", [
    ("A woman reading, jane_doe", "jane_doe, a woman reading"),
    ("She smiles at the camera. jane_doe in Paris", "jane_doe, she smiles at the camera. in Paris"),
    ("Paris street at night, jane_doe", "jane_doe, Paris street at night"),  # a name keeps its capital
])
def test_trigger_move_lowercases_a_sentence_start(tmp_path, text, expected):
    root = ds(tmp_path, {"a": text})
    fix_dataset(root, cfg(trigger="jane_doe", select=("KL505",)))
    assert (root / "a.txt").read_text() == expected


@pytest.mark.parametrize("caption,fixed", [
    # tags: the whole tag goes, no stray part noun is left behind
    ("jane_doe, freckled face, smiling, park", "jane_doe, smiling, park"),
    ("jane_doe, close portrait, (freckled face:1.2), smiling", "jane_doe, close portrait, smiling"),
    ("JANE_DOE, FRECKLED FACE, SMILING", "JANE_DOE, SMILING"),
    # prose: sentences stay sentences
    ("a photo of jane_doe with a freckled face smiling in a park", "a photo of jane_doe smiling in a park"),
    ("A photo of jane_doe. She has a freckled face and green eyes, and she is smiling.",
     "A photo of jane_doe. She is smiling."),
    ("She has green eyes. jane_doe smiles at the camera.", "jane_doe smiles at the camera."),
    ("a woman with a wrinkled face and a wide smile, jane_doe", "a woman with a wide smile, jane_doe"),
    ("jane_doe with a round face and a red scarf, outdoors", "jane_doe with a red scarf, outdoors"),
])
def test_face_fix_leaves_a_caption_a_person_would_write(tmp_path, caption, fixed):
    root = ds(tmp_path, {"a": caption})
    fix_dataset(root, cfg(select=("KL507",)), unsafe=True)
    assert (root / "a.txt").read_text() == fixed
