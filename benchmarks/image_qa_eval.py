"""Image QA side by side: klint vs cleanvision and imagededup on real photos with planted problems.

    python benchmarks/image_qa_eval.py [--keep DIR]

Builds one folder from the shared photos: clean photos (hard ones forced in: night, black-and-
white, shallow depth of field, white background) and each planted problem at several
strengths, every plant from its own source photo, so the ground truth is known by
construction. Runs klint in-process and each peer as a subprocess in its own virtualenv
(/tmp/cv-venv: cleanvision 0.3.7, /tmp/idd-venv: imagededup 0.3.3 over CPU torch,
/tmp/fd-venv: fastdup 2.54); a peer that is not installed is reported as such.
Prints one table: recall per problem (problem x tool), precision per check, and the false
alarms on the clean photos. fastdup's quality flags use the cut-offs of its own stats
galleries (blur < 50, mean < 13 dark, mean > 220 bright), its pairs similarity >= 0.9 and
its outliers what `fd.outliers()` returns by default.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.analysis.image import analyse_image, hamming  # noqa: E402
from curate.testing import shared_photos  # noqa: E402

HARD_CLEAN = ["pool/simswap/andy_lau/ljm2.jpg", "mmpose-tests-data/cofw/001766.jpg",
              "pool/sapiens/face_reel_woman/000076.jpg",
              "mmpose-tests-data/humanart/real_human/acrobatics/000000000590.jpg"]
N_CLEAN = 40
PER_STRENGTH = 2
DUP_PLANTS = {  # kind -> strengths (each applied to PER_STRENGTH clean photos)
    "crop": [0.95, 0.9, 0.85], "flip": [1], "resize": [0.5, 0.25], "edit": [1.08, 1.15], "png-resave": [1],
}
QUALITY_PLANTS = {"blown-out": [1.6, 2.2, 3.0], "low-contrast": [0.5, 0.35, 0.2],
                  "motion-blur": [0.02, 0.03, 0.04], "mild-blur": [0.003, 0.005],
                  # low information, cleanvision's check: a near-blank frame, a heavily blurred one
                  "near-blank": [0.04, 0.08], "heavy-blur": [0.02, 0.04]}
PEERS = {"cleanvision": "/tmp/cv-venv/bin/python", "imagededup": "/tmp/idd-venv/bin/python",
         "fastdup": "/tmp/fd-venv/bin/python"}

CV_SCRIPT = r"""
import json, sys
from cleanvision import Imagelab
lab = Imagelab(data_path=sys.argv[1])
lab.find_issues()
df = lab.issues
out = {"flags": {}, "pairs": []}
for path, row in df.iterrows():
    out["flags"][path.rsplit("/", 1)[-1]] = [c[3:-6] for c in df.columns if c.startswith("is_") and row[c]]
for kind in ("exact_duplicates", "near_duplicates"):
    for group in lab.info.get(kind, {}).get("sets", []):
        names = [p.rsplit("/", 1)[-1] for p in group]
        out["pairs"] += [[kind, a, b] for i, a in enumerate(names) for b in names[i + 1:]]
print(json.dumps(out))
"""
IDD_SCRIPT = r"""
import json, sys
# imagededup.methods builds its CNN's default MobileNet with ImageNet weights at import time, a
# download this offline machine cannot make; PHash and DHash never use it, so build it bare
import torchvision.models as tvm
_small = tvm.mobilenet_v3_small
tvm.mobilenet_v3_small = lambda *a, weights=None, **k: _small(*a, **k)
from imagededup.methods import DHash, PHash
out = {"flags": {}, "pairs": []}
for name, method in (("phash", PHash), ("dhash", DHash)):
    dups = method(verbose=False).find_duplicates(image_dir=sys.argv[1])
    for a, bs in dups.items():
        out["pairs"] += [[name, a, b] for b in bs if a < b]
print(json.dumps(out))
"""
FD_SCRIPT = r"""
import json, sys, tempfile
import fastdup
out = {"flags": {}, "pairs": []}
with tempfile.TemporaryDirectory() as work:
    fd = fastdup.create(work_dir=work, input_dir=sys.argv[1])
    fd.run(overwrite=True, threshold=0.9, ccthreshold=0.9, verbose=False)
    name = lambda p: str(p).rsplit("/", 1)[-1]
    for _, row in fd.similarity().iterrows():
        if row["distance"] >= 0.9 and name(row["filename_from"]) < name(row["filename_to"]):
            out["pairs"].append(["similar", name(row["filename_from"]), name(row["filename_to"])])
    for _, row in fd.outliers().iterrows():
        out["flags"].setdefault(name(row["filename_outlier"]), []).append("outlier")
    for _, row in fd.img_stats().iterrows():
        fl = out["flags"].setdefault(name(row["filename"]), [])
        fl += [f for f, on in (("blurry", row["blur"] < 50), ("dark", row["mean"] < 13),
                               ("bright", row["mean"] > 220)) if on]
print(json.dumps(out))
"""


def motion(im, frac):
    import numpy as np
    from PIL import Image

    a = np.asarray(im, dtype=np.float32)
    n = max(3, int(frac * max(im.size)))
    acc = np.zeros_like(a)
    for k in range(n):
        acc += np.roll(a, k - n // 2, axis=1)
    return Image.fromarray(np.clip(acc / n, 0, 255).astype(np.uint8))


def plant(kind, s, im):
    from PIL import Image, ImageEnhance, ImageFilter

    w, h = im.size
    if kind == "crop":
        cw, ch = int(w * s), int(h * s)
        x, y = (w - cw) // 2, (h - ch) // 3  # a little off-centre, as a hand crop is
        return im.crop((x, y, x + cw, y + ch))
    if kind == "flip":
        return im.transpose(Image.FLIP_LEFT_RIGHT)
    if kind == "resize":
        return im.resize((max(1, int(w * s)), max(1, int(h * s))), Image.LANCZOS)
    if kind == "edit":
        return ImageEnhance.Brightness(im).enhance(s)
    if kind == "blown-out":
        return im.point(lambda v: min(255, int(v * s)))
    if kind == "low-contrast":
        return im.point(lambda v: int(128 + (v - 128) * s))
    if kind == "motion-blur":
        return motion(im, s)
    if kind in ("mild-blur", "heavy-blur"):
        return im.filter(ImageFilter.GaussianBlur(s * max(w, h)))
    if kind == "near-blank":
        return im.point(lambda v: int(128 + (v - 128) * s))
    raise ValueError(kind)


def build(folder: Path, photos: Path):
    from PIL import Image

    recs = {}
    for p in sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        r = analyse_image(p)
        if r.get("readable") and min(r["width"], r["height"]) >= 300 and not r.get("has_alpha"):
            recs[p.relative_to(photos).as_posix()] = r
    chosen: list[str] = []

    def distinct(rel):  # no look-alike of a chosen photo: the clean set holds no true pair
        r = recs[rel]
        return all(hamming(r["phash"], recs[c]["phash"]) > 18 and hamming(r["dhash"], recs[c]["dhash"]) > 18
                   for c in chosen)
    for rel in HARD_CLEAN + sorted(recs):
        if rel in recs and rel not in chosen and distinct(rel):
            chosen.append(rel)
    clean, rest = chosen[:N_CLEAN], chosen[N_CLEAN:]
    truth = {}  # file -> (problem, source file or None)
    for i, rel in enumerate(clean):
        name = f"clean_{i:02d}{Path(rel).suffix.lower()}"
        (folder / name).write_bytes((photos / rel).read_bytes())
        truth[name] = ("clean", None)
    src_names = [n for n in truth if n.endswith((".jpg", ".jpeg"))][len(HARD_CLEAN):]
    k = 0
    for kind, strengths in DUP_PLANTS.items():
        for s in strengths:
            for _ in range(PER_STRENGTH):
                src = src_names[k % len(src_names)]
                k += 1
                im = Image.open(folder / src)
                im.load()
                name = f"dup_{kind}_{s}_{k:02d}"
                if kind == "png-resave":
                    im.convert("RGB").save(folder / f"{name}.png")
                    name += ".png"
                else:
                    plant(kind, s, im.convert("RGB")).save(folder / f"{name}.jpg", quality=90)
                    name += ".jpg"
                truth[name] = (kind, src)
    sharp = [r for r in rest if recs[r]["lap_var_max"] >= 100
             and recs[r]["brightness"]["p99"] - recs[r]["brightness"]["p5"] >= 0.5]
    j = 0
    for kind, strengths in QUALITY_PLANTS.items():
        for s in strengths:
            for _ in range(PER_STRENGTH):
                rel = sharp[j % len(sharp)]
                j += 1
                im = Image.open(photos / rel).convert("RGB")
                im.thumbnail((1024, 1024), Image.LANCZOS)
                name = f"q_{kind}_{s}_{j:02d}.jpg"
                plant(kind, s, im).save(folder / name, quality=92)
                truth[name] = (kind, None)
    return truth


def run_klint(folder: Path):
    from curate.config import Config
    from curate.engine.runner import lint_dataset

    check = {"KL107": "blown-out", "KL111": "low-contrast", "KL112": "motion-blur", "KL108": "blur",
             "KL105": "grayscale", "KL113": "low-information"}
    result = lint_dataset(folder, Config(select=["KL1", "KL201", "KL202"]), use_cache=False)
    flags, pairs = {}, []
    for d in result.diagnostics:
        name = d.rel.rsplit("/", 1)[-1]
        if d.code in check:
            flags.setdefault(name, []).append(check[d.code])
        elif d.code in ("KL201", "KL202"):
            for rel in d.related:
                pairs.append(["exact" if d.code == "KL201" else "near", name, rel.rsplit("/", 1)[-1]])
    return {"flags": flags, "pairs": pairs}


def run_peer(tool: str, folder: Path):
    exe = PEERS[tool]
    if not Path(exe).exists():
        return None, f"{tool}: not installed ({exe} missing)"
    script = {"cleanvision": CV_SCRIPT, "imagededup": IDD_SCRIPT, "fastdup": FD_SCRIPT}[tool]
    proc = subprocess.run([exe, "-c", script, str(folder)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return None, f"{tool}: failed: {proc.stderr.strip().splitlines()[-1:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


# which of a tool's flags answer a quality problem; blur answers both blur plants
BLUR = {"motion-blur", "mild-blur", "heavy-blur"}
QUALITY_FLAGS = {
    "klint": {"blown-out": {"blown-out"}, "low-contrast": {"low-contrast"}, "motion-blur": {"motion-blur", "blur"},
              "mild-blur": {"blur", "motion-blur"}, "near-blank": {"low-contrast", "low-information"},
              "heavy-blur": {"blur", "motion-blur", "low-information"}},
    "cleanvision": {"blown-out": {"light"}, "low-contrast": {"low_information"}, "motion-blur": {"blurry"},
                    "mild-blur": {"blurry"}, "near-blank": {"low_information"},
                    "heavy-blur": {"blurry", "low_information"}},
    "fastdup": {"blown-out": {"bright"}, "low-contrast": set(), "motion-blur": {"blurry"}, "mild-blur": {"blurry"},
                "near-blank": {"outlier"}, "heavy-blur": {"blurry", "outlier"}},
}
# flags that are pairs seen from one side (counted in the pair rows, not as false alarms)
PAIR_FLAGS = {"near_duplicates", "exact_duplicates"}


def score(out: dict, truth: dict, tool: str) -> tuple[dict, dict, list]:
    """(recall cells by problem, precision cells by check, notes) for one tool's output."""
    recall, prec, notes = {}, {}, []
    pairs = {frozenset((a, b)) for _, a, b in out["pairs"]}
    exact = {frozenset((a, b)) for k, a, b in out["pairs"] if k in ("exact", "exact_duplicates")}
    true_pairs = {frozenset((n, src)) for n, (kind, src) in truth.items() if src}
    for kind in DUP_PLANTS:
        rows = [(n, src) for n, (k, src) in truth.items() if k == kind]
        recall[f"near-dup {kind}"] = f"{sum(frozenset(r) in pairs for r in rows)}/{len(rows)}"
    rows = [(n, src) for n, (k, src) in truth.items() if k == "png-resave"]
    recall["exact dup (png re-save)"] = f"{sum(frozenset(r) in exact for r in rows)}/{len(rows)}"
    prec["duplicate pairs"] = f"{len(pairs & true_pairs)}/{len(pairs)}"
    false = sorted(sorted(p) for p in pairs if p not in true_pairs)
    if false:
        notes.append(f"false pairs: {false[:4]}")
    if tool == "klint":  # keep-advice: the diagnostic lands on the copy, never on the source
        wrong = sorted(n for _, n, rel in out["pairs"] if truth.get(n, ("?",))[0] == "clean"
                       and frozenset((n, rel)) in true_pairs)
        found = len(true_pairs & pairs)
        notes.append(f"keep-advice keeps the source in {found - len(wrong)}/{found} pairs; kept the copy over {wrong}")
    flag_map = QUALITY_FLAGS.get(tool, {})
    for kind in QUALITY_PLANTS:
        answers = flag_map.get(kind)
        rows = [n for n, (k, _) in truth.items() if k == kind]
        recall[kind] = f"{sum(bool(set(out['flags'].get(n, ())) & answers) for n in rows)}/{len(rows)}" \
            if answers else "-"
    checks = sorted({f for fl in out["flags"].values() for f in fl} - PAIR_FLAGS)
    for check in checks:
        flagged = [n for n, fl in out["flags"].items() if check in fl]
        meant = {k for k, a in flag_map.items() if check in a}
        if check in ("blur", "blurry", "motion-blur"):
            meant |= BLUR
        right = [n for n in flagged if truth.get(n, ("?",))[0] in meant]
        prec[f"{tool}: {check}"] = f"{len(right)}/{len(flagged)}" if meant else f"({len(flagged)} flagged)"
    clean = [n for n, (k, _) in truth.items() if k == "clean"]
    # a black-and-white photo is meant to get the grayscale warning: listed, not counted
    alarms = {n: sorted(set(out["flags"][n]) - PAIR_FLAGS - {"grayscale"}) for n in clean if n in out["flags"]}
    alarms = {n: f for n, f in alarms.items() if f}
    recall["clean photos flagged (false alarms)"] = f"{len(alarms)}/{len(clean)}"
    if alarms:
        notes.append(f"clean photos flagged: {alarms}")
    bw = sorted(n for n in clean if "grayscale" in out["flags"].get(n, ()))
    if bw:
        notes.append(f"grayscale on clean photos (B&W photos, meant): {bw}")
    return recall, prec, notes


def split_imagededup(out: dict) -> dict[str, dict]:
    """imagededup's two methods scored as two tools, as the issue's table has them."""
    return {f"imagededup-{m}": {"flags": {}, "pairs": [p for p in out["pairs"] if p[0] == m]}
            for m in ("phash", "dhash")}


def table(results: dict[str, tuple[dict, dict, list]]) -> list[str]:
    tools = list(results)
    width = max(len(k) for r in results.values() for k in r[0]) + 1
    head = f"| {'problem (recall)':{width}s} | " + " | ".join(tools) + " |"
    lines = [head, "|" + "---|" * (len(tools) + 1)]
    for row in next(iter(results.values()))[0]:
        lines.append(f"| {row:{width}s} | " + " | ".join(results[t][0].get(row, "-") for t in tools) + " |")
    lines += ["", "| check (precision: right / flagged) | value |", "|---|---|"]
    for t in tools:
        for check, cell in results[t][1].items():
            lines.append(f"| {t + ': ' + check if ':' not in check else check} | {cell} |")
    for t in tools:
        lines += [f"{t}: {n}" for n in results[t][2]]
    return lines


_CHILD_CPU = [0.0]


def _child_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = ru.ru_utime + ru.ru_stime
    spent, _CHILD_CPU[0] = total - _CHILD_CPU[0], total
    return spent


def main() -> None:
    import time

    photos = shared_photos()
    if photos is None:
        sys.exit("shared photos not present (set KLINT_TEST_PHOTOS)")
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep or tmp) / "qa"
        folder.mkdir(parents=True, exist_ok=True)
        truth = build(folder, photos)
        print(f"folder: {len(truth)} images ({sum(k == 'clean' for k, _ in truth.values())} clean)")
        results = {}
        for tool in ("klint", "cleanvision", "imagededup", "fastdup"):
            t0, c0 = time.perf_counter(), time.process_time()
            if tool == "klint":
                out, why = run_klint(folder), None
            else:
                out, why = run_peer(tool, folder)
            if why:
                print(why)
                continue
            # a peer's CPU time is its child process's, klint's this process's
            cpu = time.process_time() - c0 if tool == "klint" else _child_cpu()
            print(f"{tool}: {time.perf_counter() - t0:.1f} s wall, {cpu:.1f} s CPU")
            for name, sub in (split_imagededup(out) if tool == "imagededup" else {tool: out}).items():
                results[name] = score(sub, truth, name)
        print()
        print("\n".join(table(results)))


if __name__ == "__main__":
    main()
