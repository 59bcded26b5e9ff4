"""caption.encoding: BOM, UTF-16 and Latin-1 captions are reported, decoded for the other rules, and
re-encoded as plain UTF-8 by the fix (the Latin-1 guess only with --unsafe-fixes)."""

from __future__ import annotations

import io

from PIL import Image

from curate.testing import make_dataset, run_cli


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 120, 150)).save(buf, "PNG")
    return buf.getvalue()


def dataset(tmp_path):
    return make_dataset(tmp_path / "d", {
        "bom.png": png(), "bom.txt": "\ufeffjane_doe, full body shot, park".encode("utf-8"),
        "u16.png": png(), "u16.txt": "jane_doe, half body, café".encode("utf-16"),
        "lat.png": png(), "lat.txt": "jane_doe, close portrait, café".encode("latin-1"),
        "ok.png": png(), "ok.txt": "jane_doe, close portrait, park",
    }, config='trigger = "jane_doe"\n')


def test_reported_with_the_right_fix_safety(tmp_path):
    ds = dataset(tmp_path)
    r = run_cli(["lint", "--select", "caption.encoding,caption.trigger-not-first,caption.trigger-missing", str(ds)])
    assert r.exit_code == 1
    lines = [line for line in r.stdout.splitlines() if "KL5" in line]
    assert any("bom.txt: KL512 [*]" in line and "byte-order mark" in line for line in lines)
    assert any("u16.txt: KL512 [*]" in line and "UTF-16" in line for line in lines)
    assert any("lat.txt: KL512 [-]" in line and "Latin-1" in line for line in lines)
    # the decoded text is what the other rules see: the trigger is found, and first
    assert not any("KL504" in line or "KL505" in line for line in lines), lines
    assert "ok.txt" not in r.stdout


def test_fix_reencodes_and_diff_says_so(tmp_path):
    ds = dataset(tmp_path)
    diff = run_cli(["fix", "--select", "caption.encoding", "--diff", str(ds)])
    assert diff.exit_code == 1 and "# re-encoded as UTF-8 without a byte-order mark" in diff.stdout
    assert (ds / "bom.txt").read_bytes().startswith(b"\xef\xbb\xbf")  # --diff wrote nothing
    safe = run_cli(["fix", "--select", "caption.encoding", str(ds)])
    assert safe.exit_code == 1  # the Latin-1 guess needs --unsafe-fixes
    assert (ds / "bom.txt").read_bytes() == b"jane_doe, full body shot, park"
    assert (ds / "u16.txt").read_bytes() == "jane_doe, half body, café".encode("utf-8")
    assert (ds / "lat.txt").read_bytes() == "jane_doe, close portrait, café".encode("latin-1")
    assert run_cli(["fix", "--select", "caption.encoding", "--unsafe-fixes", str(ds)]).exit_code == 0
    assert (ds / "lat.txt").read_bytes() == "jane_doe, close portrait, café".encode("utf-8")
    backups = {p.name: p.read_bytes() for p in (ds / ".klint_cache" / "backups").rglob("*.txt")}
    assert backups["u16.txt"] == "jane_doe, half body, café".encode("utf-16")
