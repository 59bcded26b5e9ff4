"""`klint backends` and `klint train` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import pytest

from curate.testing import make_dataset, run_cli


def _main(args, capsys):
    from curate.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(map(str, args)))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_backends_lists_builtin_without_importing_it():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom curate.cli.main import cli\n"
            "r = CliRunner().invoke(cli, ['backends', '--json'])\nprint(r.output)\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'plugins.builtin_trainer.backend') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    body, imported = proc.stdout.rsplit("\n", 2)[0], proc.stdout.strip().splitlines()[-1]
    rows = json.loads(body)
    builtin = next(r for r in rows if r["kind"] == "trainer" and r["name"] == "builtin")
    assert builtin["requires"] == ["torch", "diffusers", "peft", "bitsandbytes", "safetensors"]
    assert builtin["installed"] is True and builtin["extra"] == "train"
    assert imported == "[]"


def test_backends_table(capsys):
    code, out, _ = _main(["backends"], capsys)
    assert code == 0
    line = next(ln for ln in out.splitlines() if " builtin " in ln)
    assert "trainer" in line and "yes" in line and "bitsandbytes" in line


def test_missing_extra_names_the_install_command(monkeypatch, two_images, capsys):
    import curate.backends as backends

    real = backends.get_registry

    def fake(pm=None):
        reg = real(pm)
        reg.add("trainer", "needs-missing", "plugins.builtin_trainer.backend:BuiltinTrainer",
                requires=("torch", "klint_no_such_module_xyz"), extra="train")
        return reg

    monkeypatch.setattr(backends, "get_registry", fake)
    code, _, err = _main(["train", two_images, "--backend", "needs-missing", "--model", "tiny", "--force"], capsys)
    assert code == 2
    assert "klint_no_such_module_xyz" in err and 'pip install -e ".[train]"' in err
    assert "Traceback" not in err


def test_dry_run_prints_plan(two_images, tmp_path, capsys):
    code, out, err = _main(["train", two_images, "--model", "tiny", "--dry-run", "--force", "--recipe", "herbst",
                            "--steps", "123", "--rank", "8", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "herbst" in out and "123 steps" in out and "rank 8" in out and "lr 0.0001" in out
    assert "would train" in out and not (tmp_path / "o").exists()


def test_two_stage_without_full_body_images_refused(two_images, capsys):
    code, _, err = _main(["train", two_images, "--model", "tiny", "--dry-run", "--force", "--two-stage"], capsys)
    assert code == 2 and "full-body" in err


def test_lint_errors_refuse_without_force(two_images, capsys):
    code, _, err = _main(["train", two_images, "--model", "tiny", "--dry-run"], capsys)
    assert code == 2 and "lint error" in err and "--force" in err


def test_adafactor_on_9b_refused_with_reason(two_images, capsys):
    code, _, err = _main(["train", two_images, "--model", "tiny", "--optimizer", "adafactor", "--recipe",
                          "standard", "--force", "--dry-run"], capsys)
    assert code == 2 and "adafactor" in err and "generic" in err


@pytest.mark.parametrize("args,msg", [
    (["--model", "/no/such/model"], "no such model"),
    (["--model", "tiny", "--resolution", "100"], "multiple of 16"),
    (["--model", "tiny", "--steps", "0"], "--steps must be >= 1"),
])
def test_bad_input_is_one_line(two_images, capsys, args, msg, tmp_path):
    code, _, err = _main(["train", two_images, "--force", "--out", tmp_path / "o", *args], capsys)
    assert code == 2 and msg in err and "Traceback" not in err and err.count("\n") == 1


def test_out_inside_the_dataset_is_refused(two_images, capsys):
    # previews written inside the dataset would be linted (and trained on) as photos
    code, _, err = _main(["train", two_images, "--model", "tiny", "--force", "--dry-run",
                          "--out", Path(two_images) / "runs"], capsys)
    assert code == 2 and "inside the dataset" in err


def test_config_table_and_repeats_reach_the_job(tmp_path):
    from curate.cli.common import resolve_targets
    from curate.cli.train import build_job

    root = make_dataset(tmp_path / "d", {"a.txt": "ohwx woman", "b.txt": "ohwx man"},
                        config='trigger = "ohwx"\nmodel = "klein-4b"\n[repeats]\n"a.png" = 3\n'
                               '[train]\nlr = 0.0002\nrank = 24\n')
    from PIL import Image

    for n in ("a", "b"):
        Image.new("RGB", (64, 64), (100, 50, 0)).save(root / f"{n}.png")
    (target,) = resolve_targets((str(root),))
    job = build_job(target, backend="builtin", model="tiny", recipe_name=None, overrides=dict(rank=16),
                    two_stage=False, out=tmp_path / "o", base_dtype=None, sample_every=None, resume=False,
                    dry_run=True, seed=0, force=True, use_cache=False)
    assert job.recipe.name == "minimal-4b" and job.recipe.model == "klein-4b"
    assert job.recipe.lr == 2e-4 and job.recipe.rank == 16  # file, then flag
    assert {it.rel: it.repeats for it in job.items} == {"a.png": 3, "b.png": 1}
    assert job.trigger == "ohwx" and job.samples_per_epoch == 4
    assert json.loads(json.dumps(job.to_dict()))["recipe"]["rank"] == 16


def test_train_cli_end_to_end(two_images, tmp_path):
    out = tmp_path / "run"
    r = run_cli(["train", two_images, "--model", "tiny", "--steps", "4", "--rank", "4", "--force", "--out", out,
                 "--sample-every", "4", "--no-progress"])
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows] == [1, 2, 3, 4] and all("loss" in x for x in rows)
    assert (out / "lora.safetensors").is_file() and (out / "samples" / "step-000004-0.png").is_file()
    assert "step 4/4" in r.stderr
    again = run_cli(["train", two_images, "--model", "tiny", "--steps", "4", "--force", "--out", out])
    assert again.exit_code == 2 and "--resume" in again.stderr


def test_cli_modules_do_not_import_torch():
    code = ("import sys\nimport curate.train_job, curate.cli.train, curate.cli.backends, plugins\n"
            "from curate.backends import get_registry\nget_registry().spec('trainer', 'builtin')\n"
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'peft') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
