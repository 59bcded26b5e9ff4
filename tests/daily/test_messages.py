"""Messages a user reads every day: the likely trigger, and why one rule shows two severities."""

from __future__ import annotations

from curate.config import Config
from curate.engine.runner import lint_dataset
from curate.testing import make_dataset

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def ds(tmp_path, captions):
    files = {}
    for stem, text in captions.items():
        files[f"{stem}.png"] = PNG
        files[f"{stem}.txt"] = text
    return make_dataset(tmp_path / "d", files)


CAPTIONS = {f"p{i}": text for i, text in enumerate([
    "jane_doe, smiling in a park, half body", "a photo of jane_doe on a beach, full body",
    "jane_doe sitting in a cafe, close portrait", "jane_doe, reading a book, warm light",
    "jane_doe, standing by a window, half body", "Jane_doe laughing outdoors",
])}


def test_common_term_spares_the_likely_trigger(tmp_path):
    root = ds(tmp_path, CAPTIONS)
    r = lint_dataset(root, Config(select=["KL504", "KL508"]), use_cache=False)
    common = [d for d in r.diagnostics if d.code == "KL508"]
    assert not any("jane" in d.message or "doe" in d.message for d in common), [d.message for d in common]
    missing = [d for d in r.diagnostics if d.code == "KL504"]
    assert len(missing) == 1 and 'trigger = "jane_doe"' in missing[0].message
    assert "5/6" in missing[0].message or "6/6" in missing[0].message, missing[0].message
    # a real constant term is still reported
    root2 = ds(tmp_path / "x", {k: v + ", red scarf" for k, v in CAPTIONS.items()})
    r2 = lint_dataset(root2, Config(select=["KL508"]), use_cache=False)
    assert any('"red scarf"' in d.message for d in r2.diagnostics), [d.message for d in r2.diagnostics]


def test_guess_trigger():
    from curate.analysis.text import guess_trigger

    assert guess_trigger(list(CAPTIONS.values())) == "jane_doe"
    assert guess_trigger(["ohwx woman in a park", "ohwx woman, beach", "ohwx, cafe", "a woman reading"]) == "ohwx"
    assert guess_trigger(["a woman in a park", "a woman on a beach", "the woman in a cafe"]) is None
    assert guess_trigger([]) is None


def test_one_rule_two_severities_says_why(tmp_path):
    root = ds(tmp_path, {"a": "jane_doe, brown eyes, dark wavy hair, smiling"})
    r = lint_dataset(root, Config(trigger="jane_doe", select=["KL507"]), use_cache=False)
    by_sev = {d.severity: d.message for d in r.diagnostics}
    assert set(by_sev) == {"error", "warning"}
    assert "warning" in by_sev["warning"] and "hair" in by_sev["warning"]
    # the hair message says why it is only a warning
    assert "only a warning" in by_sev["warning"], by_sev["warning"]


def test_hair_warning_survives_an_earlier_caption_without_hair(tmp_path):
    # the loop over captions must not let one caption's last finding change the `hair` option
    root = ds(tmp_path, {"a": "jane_doe, blue eyes, smiling", "b": "jane_doe, dark wavy hair, reading"})
    r = lint_dataset(root, Config(trigger="jane_doe", select=["KL507"]), use_cache=False)
    assert sorted((d.path.rsplit("/", 1)[-1], d.severity) for d in r.diagnostics) == [
        ("a.txt", "error"), ("b.txt", "warning")]
