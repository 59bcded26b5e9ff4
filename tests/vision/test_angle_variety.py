"""dataset.angle-variety (KL403) with real dlib landmarks on real portraits."""

from __future__ import annotations

import json

from curate.testing import make_dataset, run_cli

PORTRAITS = ("hinton.jpeg", "lecun.jpg", "lifeifei.jpg", "liuyifei.png", "pengwei.jpg", "zcy.webp")


def _lint(ds, max_share):
    (ds / "klint.toml").write_text('trigger = "jane_doe"\nresolution = 512\n'
                                   f'[rule-options."dataset.angle-variety"]\nmax_share = {max_share}\n')
    res = run_cli(["lint", str(ds), "--select", "KL403", "--format", "json", "--exit-zero", "--no-progress"])
    assert res.exit_code == 0, res.stderr
    return [d for d in json.loads(res.stdout) if d["code"] == "KL403"]


def test_the_dominant_view_and_the_missing_ones_are_named(photos, tmp_path):
    files = {}
    for i, name in enumerate(PORTRAITS):
        files[name] = photos / "pulid-example-inputs" / name
        files[name.rsplit(".", 1)[0] + ".txt"] = "jane_doe, close portrait"
    ds = make_dataset(tmp_path / "ds", files)
    res = run_cli(["inspect", str(ds), "--format", "json", "--no-progress"])
    data = json.loads(res.stdout)
    records = data["records"] if isinstance(data, dict) else data
    yaws = [(r.get("face") or {}).get("yaw") for r in records]
    judged = [y for y in yaws if y]
    assert len(judged) >= 6 and "profile" not in judged  # press portraits: nobody in profile
    top = max(set(judged), key=judged.count)
    share = judged.count(top) / len(judged)
    # just under the real share: the rule fires with the analysis' own counts and names the profile view
    found = _lint(ds, round(share - 0.01, 3))
    assert len(found) == 1, found
    msg = found[0]["message"]
    assert f"{judged.count(top)} of {len(judged)} faces are {top}" in msg and "add " in msg and "profile" in msg
    assert abs(found[0]["value"] - share) < 1e-3
    # just over it: the mix is varied enough, nothing to say
    assert _lint(ds, round(share + 0.01, 3)) == []
