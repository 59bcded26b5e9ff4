"""KL601 train.repeats and KL602 train.optimizer on real (tiny) datasets, through the runner."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from curate.config import load_config
from curate.engine.runner import lint_dataset
from curate.testing import make_dataset, run_cli


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="PNG")
    return buf.getvalue()


def _lint(tmp_path: Path, config: str, n: int = 10, repeats: dict[str, int] | None = None):
    files = {}
    for i in range(n):
        files[f"img{i:02}.png"] = _png((i * 20, 40, 90))
        files[f"img{i:02}.txt"] = "jane, standing in a park"
    if repeats:
        config += "\n[repeats]\n" + "".join(f'"{k}" = {v}\n' for k, v in repeats.items())
    root = make_dataset(tmp_path / "ds", files, config)
    cfg = load_config(root)
    cfg.select = ["KL601", "KL602"]
    res = lint_dataset(root, cfg, use_cache=False)
    return res.diagnostics


def test_no_train_table_means_no_training_findings(tmp_path):
    assert _lint(tmp_path, 'trigger = "jane"\n') == []


def test_recipe_default_repeats_pass(tmp_path):
    assert _lint(tmp_path, '[train]\nrecipe = "standard"\n') == []


def test_too_few_repeats_is_an_error_with_the_config_line(tmp_path):
    diags = _lint(tmp_path, 'trigger = "jane"\n\n[train]\noptimizer = "adamw8bit"\nrepeats = 30\n')
    assert [(d.code, d.severity) for d in diags] == [("KL601", "error")]
    d = diags[0]
    assert d.rel == "klint.toml" and d.line == 5
    assert "300 effective samples" in d.message and d.value == 30


def test_low_but_workable_repeats_warn(tmp_path):
    diags = _lint(tmp_path, '[train]\nrepeats = 70\n')
    assert [(d.code, d.severity) for d in diags] == [("KL601", "warning")]


def test_rebalance_that_starves_the_x1_images_warns(tmp_path):
    # 4 images at x5 pull the average: the x1 images get 100*10/26 = 38 repeats each
    heavy = {f"img{i:02}.png": 5 for i in range(4)}
    diags = _lint(tmp_path, '[train]\nrepeats = 100\n', repeats=heavy)
    assert [(d.code, d.severity) for d in diags] == [("KL601", "warning")]
    assert "38 repeats" in diags[0].message


def test_adafactor_character_on_9b_is_an_error(tmp_path):
    diags = _lint(tmp_path, 'model = "klein-9b"\n\n[train]\noptimizer = "adafactor"\n')
    assert [(d.code, d.severity, d.line) for d in diags] == [("KL602", "error", 4)]
    assert "adafactor" in diags[0].message and "adamw8bit" in diags[0].message


def test_adafactor_style_lora_is_fine(tmp_path):
    assert _lint(tmp_path, '[train]\noptimizer = "adafactor"\nkind = "style"\n') == []


def test_adafactor_on_4b_only_warns(tmp_path):
    diags = _lint(tmp_path, 'model = "klein-4b"\n\n[train]\noptimizer = "adafactor"\n')
    assert [(d.code, d.severity) for d in diags] == [("KL602", "warning")]


def test_unknown_optimizer_is_reported(tmp_path):
    diags = _lint(tmp_path, '[train]\noptimizer = "sgd-magic"\n')
    assert [d.code for d in diags] == ["KL602"] and "unknown optimizer" in diags[0].message


def test_cli_exit_code_and_rule_docs(tmp_path):
    files = {f"img{i:02}.png": _png((i, i, i)) for i in range(10)}
    files.update({f"img{i:02}.txt": "jane, park" for i in range(10)})
    root = make_dataset(tmp_path / "ds", files, '[train]\noptimizer = "adafactor"\n')
    res = run_cli(["lint", str(root), "--select", "train", "--no-cache"])
    assert res.exit_code == 1, res.stderr
    assert "klint.toml" in res.stdout and "KL602" in res.stdout
    doc = run_cli(["rule", "train.repeats"])
    assert doc.exit_code == 0 and "90-120" in doc.stdout
