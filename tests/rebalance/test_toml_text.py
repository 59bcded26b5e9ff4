"""The rebalance plan rewrites only its own tables in klint.toml; the user's comments stay."""

import tomllib

from curate.fix.rebalance import _toml_text


def test_comments_and_other_tables_survive(tmp_path):
    path = tmp_path / "klint.toml"
    path.write_text('# my dataset\ntrigger = "jane_doe"  # the trigger\n\n[rule-options."dataset.size"]\nmin = 8\n\n'
                    '[repeats]\n"old.jpg" = 3\n')
    text = _toml_text(path, tomllib.loads(path.read_text()), {"repeats": {"a.jpg": 2, "_klint/derived/b.png": 1},
                                                              "rebalance": {"strategy": "repeats"}})
    assert text.startswith('# my dataset\ntrigger = "jane_doe"  # the trigger\n')
    data = tomllib.loads(text)
    assert data["repeats"] == {"a.jpg": 2, "_klint/derived/b.png": 1}  # the stale plan is replaced, not merged
    assert data["rule-options"] == {"dataset.size": {"min": 8}}
    assert data["rebalance"] == {"strategy": "repeats"}


def test_new_file_carries_settings(tmp_path):
    text = _toml_text(tmp_path / "klint.toml", {"trigger": "jane_doe", "resolution": 768}, {"repeats": {"a.jpg": 1}})
    assert tomllib.loads(text) == {"trigger": "jane_doe", "resolution": 768, "repeats": {"a.jpg": 1}}
