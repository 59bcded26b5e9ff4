import pytest

from curate.engine.registry import all_rules, find_rule, ignored_for_path, select_rules
from curate.errors import ConfigError


@pytest.fixture(scope="module")
def rules():
    return all_rules()


def codes(rs):
    return {r.code for r in rs}


def test_select_by_code_name_prefix_family(rules):
    assert codes(select_rules(rules, ["KL001"], [])) == {"KL001"}
    assert codes(select_rules(rules, ["dataset.size"], [])) == {"KL001"}
    caption = select_rules(rules, ["caption"], [])
    assert caption and all(r.name.startswith("caption.") for r in caption)
    assert codes(select_rules(rules, ["KL5"], [])) == {r.code for r in rules if r.code.startswith("KL5")}
    assert codes(select_rules(rules, ["caption.*"], [])) == codes(caption)


def test_ignore_beats_select(rules):
    chosen = select_rules(rules, ["ALL"], ["caption", "KL001"])
    assert "KL001" not in codes(chosen)
    assert not any(r.name.startswith("caption.") for r in chosen)


def test_unknown_selector_is_an_error(rules):
    with pytest.raises(ConfigError, match="unknown rule selector 'nonsense'"):
        select_rules(rules, ["nonsense"], [])


def test_find_rule_by_code_or_name(rules):
    assert find_rule(rules, "caption.orphan").code == "KL503"
    assert find_rule(rules, "kl503").name == "caption.orphan"
    assert find_rule(rules, "caption.nope") is None


def test_per_path_ignores(rules):
    rule = find_rule(rules, "caption.missing")
    assert ignored_for_path(rule, "raw/a.jpg", {"raw/*": ["caption"]})
    assert ignored_for_path(rule, "raw/sub/a.jpg", {"raw": ["KL501"]})
    assert not ignored_for_path(rule, "keep/a.jpg", {"raw/*": ["caption"]})
