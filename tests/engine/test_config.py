from pathlib import Path

import pytest

from curate.config import Config, apply_overrides, load_config
from curate.errors import ConfigError


def test_klint_toml_at_root_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.klint]\ntrigger = "from_pyproject"\n')
    ds = tmp_path / "data"
    ds.mkdir()
    (ds / "klint.toml").write_text('trigger = "jane_doe"\nresolution = 768\nmodel = "klein-4b"\n')
    cfg = load_config(ds)
    assert (cfg.trigger, cfg.resolution, cfg.model) == ("jane_doe", 768, "klein-4b")
    assert cfg.source == ds / "klint.toml"


def test_pyproject_above_dataset(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.klint]\ntrigger = "jane_doe"\nignore = ["image.blur"]\n'
        '[tool.klint.per-path-ignores]\n"raw/*" = ["caption"]\n'
        '[tool.klint.rule-options."dataset.size"]\nmin = 4\n')
    ds = tmp_path / "a" / "b"
    ds.mkdir(parents=True)
    cfg = load_config(ds)
    assert cfg.trigger == "jane_doe"
    assert cfg.ignore == ["image.blur"]
    assert cfg.per_path_ignores == {"raw/*": ["caption"]}

    class R:
        code, name, options = "KL001", "dataset.size", {"min": 8, "recommended": 12}

    assert cfg.options_for(R) == {"min": 4, "recommended": 12}


def test_pyproject_without_klint_table_is_ignored(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.black]\nline-length = 100\n')
    assert load_config(tmp_path) == Config()


@pytest.mark.parametrize("body, message", [
    ('resolution = "big"', "resolution"),
    ('model = "klein-12b"', "model"),
    ('select = [1, 2]', "select"),
    ('trigger = ""', "trigger"),
    ('repeats = {"a.jpg" = 0}', "repeats"),
    ('trigger = "jane', "invalid TOML"),
])
def test_bad_config_is_a_config_error(tmp_path, body, message):
    (tmp_path / "klint.toml").write_text(body + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)


def test_cli_overrides_split_commas():
    cfg = apply_overrides(Config(), select=["KL5,image.blur"], trigger="bob", resolution=None)
    assert cfg.select == ["KL5", "image.blur"]
    assert cfg.trigger == "bob"
    assert cfg.resolution == 1024


def test_explicit_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path, Path(tmp_path / "nope.toml"))
