"""A dataset is untrusted input: one test (or more) per finding of issue 10.

Every test runs klint the way a user does (a real subprocess, real files, real FIFOs and
device links, a real full / read-only filesystem in a private mount namespace) and checks
that nothing the dataset holds runs code, moves a file outside the dataset, hangs klint,
loses an edit, or reaches the terminal raw.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from curate.analysis.cache import seal, unseal
from curate.testing import make_dataset, run_cli

from ..engine.test_cli import PLUGIN_ENV, ROOT, png


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(res) -> str:
    """The error contract: exit 2, no traceback, one `klint: error:` line."""
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("klint: error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


class _Marker:
    """A pickle whose load runs a shell command that writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- 1. model paths named by a dataset's own config --------------------------------------------

def _pickle_dataset(tmp_path: Path, config: str) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    ds = make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "jane, a photo"}, config=config)
    (ds / "pose.pt").write_bytes(pickle.dumps(_Marker(marker)))
    (ds / "tok").mkdir()
    (ds / "tok" / "tokenizer_config.json").write_text("{}")
    (ds / "tok" / "notamodel.onnx").write_text("not onnx")
    return ds, marker


def test_pose_model_pickle_from_dataset_config_never_loads(tmp_path):
    ds, marker = _pickle_dataset(tmp_path, 'trigger = "jane"\npose-model = "pose.pt"\n')
    res = run_cli(["lint", str(ds), "--select", "KL301", "--no-progress"])
    assert not marker.exists(), "the dataset's pickle ran"
    line = one_line_error(res)
    assert "pose-model" in line and "--trust-dataset-models" in line and "KLINT_CONFIG" in line
    # the same dataset from a pyproject [tool.klint] inside it: refused the same way
    (ds / "klint.toml").unlink()
    (ds / "pyproject.toml").write_text('[tool.klint]\ntrigger = "jane"\npose-model = "pose.pt"\n')
    res = run_cli(["inspect", str(ds), "--format", "json", "--no-progress"])
    assert not marker.exists()
    assert "pose-model" in one_line_error(res)


@pytest.mark.parametrize("config,key", [
    ('trigger = "jane"\n[rule-options."caption.too-long"]\ntokenizer = "tok"\n', "tokenizer"),
    ('trigger = "jane"\n[train]\nmodel = "pose.pt"\n', "train.model"),
    ('trigger = "jane"\nface-model = "pose.pt"\n', "face-model"),
    ('trigger = "jane"\n[rule-options.KL999]\ndetector-weights = "./pose.pt"\n', "detector-weights"),
])
def test_every_model_path_key_in_a_dataset_config_is_refused(tmp_path, config, key):
    ds, marker = _pickle_dataset(tmp_path, config)
    res = run_cli(["lint", str(ds), "--select", "KL504", "--no-progress"])
    assert key in one_line_error(res)
    assert not marker.exists()


def test_a_plugins_declared_model_key_is_refused_too(tmp_path):
    ds, marker = _pickle_dataset(tmp_path, 'trigger = "jane"\n[rule-options.KL504]\nsniffer = "pose.pt"\n')
    plain = run_cli(["lint", str(ds), "--select", "KL504", "--no-progress"])
    assert plain.exit_code == 0, plain.stderr  # no plugin claims `sniffer`: just an unknown option
    env = {"KLINT_PLUGINS": "tests.hostile.model_key_plugin", "PYTHONPATH": str(ROOT)}
    res = run_cli(["lint", str(ds), "--select", "KL504", "--no-progress"], env=env)
    assert "rule-options.KL504.sniffer" in one_line_error(res)


def test_model_paths_from_the_users_own_config_are_trusted(tmp_path):
    ds, marker = _pickle_dataset(tmp_path, 'trigger = "jane"\n')
    user = tmp_path / "home" / "config.toml"
    user.parent.mkdir()
    # the user's own config names a file that is not a model: klint tries it and says so in one line
    (tmp_path / "home" / "notamodel.pt").write_text("hello")
    user.write_text(f'pose-model = "{tmp_path / "home" / "notamodel.pt"}"\n')
    res = run_cli(["lint", str(ds), "--select", "KL301", "--no-progress"], env={"KLINT_CONFIG": str(user)})
    line = one_line_error(res)
    assert "notamodel.pt" in line and "--trust-dataset-models" not in line
    # an explicit opt-in lets the dataset's own value through (here: still not a model, one line)
    (ds / "klint.toml").write_text('trigger = "jane"\npose-model = "tok/notamodel.onnx"\n')
    res = run_cli(["lint", str(ds), "--select", "KL301", "--no-progress", "--trust-dataset-models"])
    assert "notamodel.onnx" in one_line_error(res)
    assert not marker.exists()


def test_default_pose_model_from_the_wheel_is_trusted(tmp_path):
    ds = make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "jane, a photo"}, config='trigger = "jane"\n')
    res = run_cli(["lint", str(ds), "--select", "KL301", "--no-progress", "--format", "json"])
    assert res.exit_code in (0, 1), res.stderr
    assert json.loads(res.stdout)[0]["code"] == "KL301"


# -- 2. a hand-edited derived manifest ---------------------------------------------------------

def test_manifest_naming_files_outside_or_originals_moves_nothing(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    secret = other / "secret.jpg"
    secret.write_bytes(png((1, 2, 3)))
    files = {f"img{i}.png": png((i * 20, 40, 90)) for i in range(3)}
    files.update({f"img{i}.txt": "jane, a photo" for i in range(3)})
    ds = make_dataset(tmp_path / "data", files, config='trigger = "jane"\n')
    derived = ds / "_klint" / "derived"
    derived.mkdir(parents=True)
    # a crop klint "wrote" whose bytes were since replaced by the user's own picture
    (derived / "img0__close.png").write_bytes(png((9, 9, 9)))
    manifest = {"version": 1, "items": [
        {"path": "../other/secret.jpg", "source": "img0.png", "framing": "close"},
        {"path": str(secret), "source": "img0.png", "framing": "close"},
        {"path": "img1.png", "source": "img0.png", "framing": "close", "caption": "img1.txt"},
        {"path": "_klint/derived/img0__close.png", "source": "img0.png", "framing": "close",
         "sha256": "0" * 64},
    ]}
    (derived / "manifest.json").write_text(json.dumps(manifest))
    before = {p: sha(p) for p in [secret, ds / "img1.png", ds / "img1.txt", derived / "img0__close.png"]}
    res = run_cli(["fix", str(ds), "--rebalance", "--strategy", "repeats", "--no-progress"])
    assert "Traceback" not in res.stderr, res.stderr
    for p, digest in before.items():
        assert p.is_file() and sha(p) == digest, f"{p} was moved or changed"
    backups = ds / ".klint_cache" / "backups"
    assert not [p for p in backups.rglob("*") if p.is_file() and p.suffix not in (".txt", ".toml", ".json")]
    out = res.stdout + res.stderr
    assert "img0__close.png" in out and "left alone" in out


# -- 3. special files --------------------------------------------------------------------------

def _limit_memory():  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def test_device_links_and_fifos_are_skipped_with_one_diagnostic(tmp_path):
    ds = make_dataset(tmp_path / "data", {"ok.png": png(), "ok.txt": "jane, a photo", "fifo.png": png()},
                      config='trigger = "jane"\n')
    (ds / "zero.png").symlink_to("/dev/zero")
    (ds / "fifo.png").unlink()
    os.mkfifo(ds / "fifo.png")
    os.mkfifo(ds / "ok2.txt")
    (ds / "ok2.png").write_bytes(png((1, 1, 1)))
    env = dict(os.environ, KLINT_TEST_PHOTOS="", PYTHONPATH=str(ROOT))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "curate.cli.main", "lint", str(ds), "--no-progress", "--format",
                           "json", "--select", "KL0,KL101,KL102,KL103,KL104,KL105,KL106,KL107,KL108,KL501,KL502,KL504"], capture_output=True, text=True, timeout=60,
                          env=env, preexec_fn=_limit_memory)
    assert time.monotonic() - start < 60
    assert proc.returncode == 1, proc.stderr
    diags = json.loads(proc.stdout)
    special = {d["path"].rsplit("/", 1)[-1] for d in diags if d["code"] == "KL002"}
    assert special == {"zero.png", "fifo.png", "ok2.txt"}
    assert not [d for d in diags if d["code"] == "KL101" and "zero" in d["path"]]


def test_caption_link_leading_outside_the_dataset_is_not_read(tmp_path):
    outside = tmp_path / "private.txt"
    outside.write_text("SECRET-TOKEN-123")
    ds = make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "a photo", "b.png": png((3, 4, 5))},
                      config='trigger = "jane"\n')
    (ds / "b.txt").symlink_to(outside)
    res = run_cli(["report", str(ds), "-o", str(tmp_path / "r.html"), "--no-progress"])
    assert "Traceback" not in res.stderr, res.stderr
    assert "SECRET-TOKEN-123" not in (tmp_path / "r.html").read_text()
    res = run_cli(["fix", str(ds), "--select", "KL504", "--no-progress"])
    assert res.exit_code in (0, 1) and "Traceback" not in res.stderr, res.stderr
    assert outside.read_text() == "SECRET-TOKEN-123"
    assert (ds / "a.txt").read_text().startswith("jane, ")
    lint = run_cli(["lint", str(ds), "--select", "KL002,KL003,KL501", "--format", "json", "--no-progress"])
    assert [d["code"] for d in json.loads(lint.stdout)] == ["KL003"]


# -- 4. concurrent writers ---------------------------------------------------------------------

_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    import curate.fix.apply as apply
    real = apply.Writer.__init__
    def slow(self, *a, **k):
        real(self, *a, **k)
        print("ready", flush=True)
        time.sleep(float(sys.argv[2]))
    apply.Writer.__init__ = slow
    from curate.cli.main import main
    main(["fix", "--select", "KL504", "--no-progress", sys.argv[1]])
""")


def _slow_fix(ds: Path, pause: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(ds), str(pause)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _caption_set(tmp_path: Path, n: int) -> Path:
    files = {f"p{i}.png": png((i * 7 % 255, 30, 60)) for i in range(n)}
    files.update({f"p{i}.txt": f"photo number {i}" for i in range(n)})
    return make_dataset(tmp_path / "data", files, config='trigger = "jane"\n')


def test_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    ds = _caption_set(tmp_path, 4)
    first = _slow_fix(ds, 4)
    second = run_cli(["fix", str(ds), "--select", "KL504", "--no-progress"])
    line = one_line_error(second)
    assert "another klint" in line and "is writing to" in line
    for cmd in (["lint", "--fix"], ["fix", "--rebalance"]):
        assert "another klint" in one_line_error(run_cli([*cmd, str(ds), "--select", "KL504", "--no-progress"]))
    first.communicate(timeout=60)
    assert first.returncode in (0, 1)
    backups = [p for p in (ds / ".klint_cache" / "backups").iterdir()]
    assert len(backups) == 1
    assert sorted(p.read_text() for p in backups[0].glob("*.txt")) == sorted(f"photo number {i}" for i in range(4))


def test_each_run_gets_its_own_backup_folder(tmp_path):
    from curate.fix.apply import Writer

    ds = _caption_set(tmp_path, 1)
    a, b = Writer(ds), Writer(ds)
    assert a.backup_dir != b.backup_dir


# -- 5. an edit made while fix runs ------------------------------------------------------------

def test_edit_made_while_fix_runs_is_kept_and_reported(tmp_path):
    ds = _caption_set(tmp_path, 6)
    proc = _slow_fix(ds, 3)
    for i in range(6):
        (ds / f"p{i}.txt").write_text(f"my own edit {i}")
    out, err = proc.communicate(timeout=60)
    for i in range(6):
        assert (ds / f"p{i}.txt").read_text() == f"my own edit {i}"
    assert "changed while klint was running" in out + err
    assert sum(f"p{i}.txt" in out + err for i in range(6)) == 6


# -- 6. leftovers ------------------------------------------------------------------------------

def test_stale_temp_files_are_removed_by_the_next_run(tmp_path):
    ds = _caption_set(tmp_path, 2)
    tmp = ds / ".p0.txt.x1y2z3.klint-tmp"
    tmp.write_text("half")
    cache = ds / ".klint_cache"
    cache.mkdir()
    old = cache / ".cache-abc123.tmp"
    old.write_text("")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    res = run_cli(["fix", str(ds), "--select", "KL504", "--no-progress"])
    assert res.exit_code in (0, 1), res.stderr
    assert not tmp.exists() and not old.exists()
    # a user's own hidden file that merely looks similar is never touched
    mine = ds / ".notes.klint-tmp.bak"
    mine.write_text("mine")
    run_cli(["fix", str(ds), "--select", "KL504", "--no-progress"])
    assert mine.exists()


# -- 7. a corrupted cache ----------------------------------------------------------------------

def _json(res):
    assert res.exit_code in (0, 1), res.stderr
    return sorted((d["path"], d["code"], d["message"]) for d in json.loads(res.stdout))


@pytest.mark.parametrize("damage", ["empty-results", "short-stat", "results-list", "deep", "wrong-types"])
def test_corrupted_cache_is_recomputed(tmp_path, damage):
    ds = make_dataset(tmp_path / "data", {"a.png": png(size=(300, 200)), "a.txt": "jane, a photo",
                                          "b.png": png((250, 250, 250), (300, 200)), "b.txt": "jane, photo"},
                      config='trigger = "jane"\n')
    args = ["lint", str(ds), "--select", "KL10,KL501,KL502,KL504", "--format", "json", "--no-progress"]
    clean = _json(run_cli(args))
    cfile = next((ds / ".klint_cache").glob("cache-*.json"))
    data = json.loads(unseal(cfile.read_bytes()))
    if damage == "empty-results":
        for table in data["results"].values():
            for k in table:
                table[k] = {}
    elif damage == "short-stat":
        data["stat"] = {k: [1] for k in data["stat"]}
    elif damage == "results-list":
        data["results"] = {k: [1, 2] for k in data["results"]}
    elif damage == "wrong-types":
        data = {"stat": [], "results": "x"}
    text = json.dumps(data) if damage != "deep" else "[" * 5000 + "]" * 5000
    # sealed with this user's key, so the damage reaches the shape checks behind the seal
    cfile.write_bytes(seal(text.encode()))
    assert _json(run_cli(args)) == clean
    assert _json(run_cli(args)) == clean


@pytest.mark.parametrize("who", ["unsealed", "another-user"])
def test_a_cache_shipped_with_the_dataset_is_not_read(tmp_path, who):
    """A dataset arrives with a .klint_cache forged to crash rules: klint recomputes instead."""
    ds = make_dataset(tmp_path / "data", {"a.png": png(size=(300, 200)), "a.txt": "jane, a photo"},
                      config='trigger = "jane"\n')
    args = ["lint", str(ds), "--select", "KL10,KL501,KL502,KL504", "--format", "json", "--no-progress"]
    clean = _json(run_cli(args))
    cfile = next((ds / ".klint_cache").glob("cache-*.json"))
    data = json.loads(unseal(cfile.read_bytes()))
    for table in data["results"].values():
        for rec in table.values():
            for k in list(rec):
                rec[k] = "zz" if k != "readable" else True
    body = json.dumps(data).encode()
    cfile.write_bytes(body if who == "unsealed" else seal(body, key=b"k" * 32))
    assert _json(run_cli(args)) == clean
    assert unseal(cfile.read_bytes()) is not None  # replaced by one this user's klint wrote


def test_the_sealing_key_is_private_and_refused_when_not(tmp_path, monkeypatch):
    from curate.analysis import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(cache, "_KEY", [])
    key = cache.user_key()
    path = cache.key_path()
    assert key is not None and len(key) == 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert cache.unseal(cache.seal(b"{}")) == b"{}" and cache.unseal(cache.seal(b"{}", key=b"x" * 32)) is None
    # a key file that is a link or the wrong size is not used (nothing is cached, lint still runs)
    path.unlink()
    (tmp_path / "planted").write_bytes(b"p" * 32)
    path.symlink_to(tmp_path / "planted")
    monkeypatch.setattr(cache, "_KEY", [])
    assert cache.user_key() is None and cache.seal(b"{}") is None


# -- 8. one line and exit 2 --------------------------------------------------------------------

@pytest.mark.parametrize("config,key", ids=lambda v: str(v)[:30], argvalues=[
    ('[per-path-ignores]\n"a.txt" = 5\n', "per-path-ignores"),
    ('[rule-options]\nKL001 = 5\n', "rule-options"),
    ('[rule-options.KL001]\nmin = "abc"\n', "min"),
    ('[rule-options."image.blur"]\nthreshold = "abc"\n', "threshold"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ('trigger = 5\n', "trigger"),
    ('repeats = 3\n', "repeats"),
    ('[train]\nrepeats = "many"\n', "train.repeats"),
])
def test_bad_config_values_name_the_key(tmp_path, config, key):
    ds = make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "jane, a photo"}, config=config)
    res = run_cli(["lint", str(ds), "--select", "KL001,KL10,KL504", "--no-progress"])
    assert key in one_line_error(res)


def test_tool_klint_not_a_table_and_unknown_keys(tmp_path):
    ds = make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "jane, a photo"})
    (ds / "pyproject.toml").write_text('[tool]\nklint = 5\n')
    assert "[tool.klint]" in one_line_error(run_cli(["lint", str(ds), "--select", "KL5", "--no-progress"]))
    (ds / "pyproject.toml").unlink()
    (ds / "klint.toml").write_text('trigger = "jane"\ntriger = "x"\n[rule-options.KL001]\nmni = 3\n')
    res = run_cli(["lint", str(ds), "--select", "KL001", "--no-progress"])
    assert res.exit_code == 1, res.stderr
    assert "unknown key `triger`" in res.stderr and "did you mean `trigger`" in res.stderr
    assert "rule-options.KL001.mni" in res.stderr and "did you mean `min`" in res.stderr


def _bomb(path: Path) -> None:
    Image.new("1", (20000, 20000)).save(path, "PNG")


def test_decompression_bomb_is_a_diagnostic_in_lint_and_rebalance(tmp_path):
    ds = make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "jane, a photo", "b.txt": "jane, photo"},
                      config='trigger = "jane"\n')
    _bomb(ds / "b.png")
    res = run_cli(["fix", str(ds), "--rebalance", "--strategy", "crops", "--no-progress"])
    assert "Traceback" not in res.stderr and res.exit_code in (0, 1, 2), res.stderr
    assert "b.png" in res.stdout + res.stderr
    lint = run_cli(["lint", str(ds), "--select", "KL101", "--format", "json", "--no-progress"])
    assert [d["code"] for d in json.loads(lint.stdout)] == ["KL101"]


def _namespace_ok() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _namespace_ok(), reason="needs root and `unshare -m` to mount a small tmpfs")


def _in_small_fs(tmp_path: Path, setup: str, args: list[str]) -> subprocess.CompletedProcess:
    """Copy a dataset into a private 3 MiB tmpfs, apply `setup` (fill it, remount ro), run klint there."""
    src = _caption_set(tmp_path, 3)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = "; ".join([
        f"mount -t tmpfs -o size=3m tmpfs {mnt}", f"cp -a {src} {mnt}/data", setup,
        f"{sys.executable} -m curate.cli.main {' '.join(args)} {mnt}/data; echo rc=$?",
        f"ls -a {mnt}/data {mnt}/data/.klint_cache 2>/dev/null | grep -c -- '-tmp\\|\\.tmp' || true",
        f"cat {mnt}/data/p0.txt",
    ])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)


@needs_mount
@pytest.mark.parametrize("setup,words", [
    ("dd if=/dev/zero of={mnt}/data/fill bs=64k 2>/dev/null", "no space left"),
    ("mount -o remount,ro {mnt}", "read-only"),
])
@pytest.mark.parametrize("command", [["fix", "--select", "KL504"], ["fix", "--rebalance"], ["lint"]])
def test_full_and_read_only_disks(tmp_path, setup, words, command):
    proc = _in_small_fs(tmp_path, setup.format(mnt=tmp_path / "mnt"), [*command, "--no-progress"])
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    rc = int(next(ln for ln in lines if ln.startswith("rc="))[3:])
    leftovers = int(lines[-2])
    assert leftovers == 0, proc.stdout
    assert lines[-1] == "photo number 0"  # the caption is old or new, never half or empty
    if command[0] == "lint":
        assert rc == 1  # a read-only or full dataset still lints; it just is not cached
    else:
        assert rc == 2
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("klint: error:")]
        assert len(errors) == 1 and words in errors[0].lower(), proc.stderr


# -- 9. terminal injection ---------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("fmt", ["concise", "full", "github"])
def test_control_characters_never_reach_the_terminal(tmp_path, fmt):
    evil = "x\x1b]0;pwned\x07\x1b[2J\x9b31m"
    forged = "y\n::error file=forged.py,line=1::forged"
    ds = make_dataset(tmp_path / "data", {f"{evil}.png": png(), f"{evil}.txt": "a photo",
                                          f"{forged}.png": png((9, 9, 9)), f"{forged}.txt": "Caps here"})
    res = run_cli(["lint", str(ds), "--select", "KL504,TST", "--trigger", "ja\x1b[31mne", "--format", fmt,
                   "--no-progress"], env=PLUGIN_ENV)
    assert res.exit_code == 1, res.stderr
    assert not _CONTROL.search(res.stdout.replace("\n", "").replace("\t", "")), repr(res.stdout)
    assert not [ln for ln in res.stdout.splitlines() if ln.startswith("::error file=forged")]
    assert "\\x1b" in res.stdout or "%1B" in res.stdout.upper()
    fixed = run_cli(["fix", str(ds), "--select", "KL504,TST", "--trigger", "ja\x1b[31mne", "--no-progress"],
                    env=PLUGIN_ENV)
    assert not _CONTROL.search((fixed.stdout + fixed.stderr).replace("\n", ""))


# -- 10. exposure of 16-bit and other modes ----------------------------------------------------

@pytest.mark.parametrize("mode", ["I;16", "I", "F", "LA", "P", "CMYK"])
def test_mid_grey_in_every_mode_is_not_blown_or_dark(tmp_path, mode):
    import numpy as np

    from curate.analysis.image import analyse_image

    if mode in ("I;16", "I"):
        im = Image.fromarray(np.full((64, 64), 30000, dtype=np.uint16))
        im = im if mode == "I;16" else im.convert("I")
        path, expect = tmp_path / ("g.png" if mode == "I;16" else "g.tif"), 30000 / 65535
    elif mode == "F":
        im, path, expect = Image.fromarray(np.full((64, 64), 0.45, dtype=np.float32)), tmp_path / "g.tif", 0.45
    else:
        im = Image.new("L", (64, 64), 115).convert(mode)
        path, expect = tmp_path / ("g.jpg" if mode == "CMYK" else "g.png"), 115 / 255
    if path.suffix == ".tif":
        # a 32-bit int or float image has no dataset format (PNG stores I;16): measure the decoded image
        from curate.analysis.image import _measure

        rec = {"has_alpha": False}
        _measure(im, rec)
    else:
        im.save(path)
        rec = analyse_image(path)
    assert abs(rec["brightness"]["p50"] - expect) < 0.03, (mode, rec["brightness"])
    assert rec["clip_light"] == 0 and rec["clip_dark"] == 0
