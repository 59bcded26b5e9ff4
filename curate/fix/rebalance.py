"""`klint fix --rebalance`: bring a set to the seed's 1/3 close, 1/3 half, 1/3 full mix.

Strategies:
  repeats  per-image multipliers so each framing group carries its target share of the
           effective samples (share of g = sum of repeats in g / sum of all repeats);
  crops    cut missing tighter framings out of wider originals (never upscaled), into
           `_klint/derived/` with rewritten captions and a provenance manifest;
  both     crops first, then repeats over originals + crops.

The plan is stored in `klint.toml`: `[repeats]` maps dataset-relative image paths to integer
multipliers (>= 1, read by `Config.repeats`), `[rebalance]` records the strategy, targets,
per-group counts, the base repeats and the seed's stage-2 (full-body only) image list.
Originals are never touched; a second run with the same inputs writes nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable

from curate.config import CONFIG_NAME, Config
from curate.dataset.derived import MANIFEST, TEXT_CROP, load_manifest, rebalance_entries, replacements
from curate.dataset.model import OWN_DIR, Dataset
from curate.errors import KlintError
from curate.fix.trainplan import base_repeats, repeats_per_image  # noqa: F401  (base_repeats: re-exported)
from curate.fix.crops import FRAMING_PHRASE, SOURCES_FOR, Refusal, crop_box, derived_name, rewrite_caption

GROUPS = ("close", "half", "full")
GROUP_LABEL = {"close": "close", "half": "half body", "full": "full body", "none": "no person"}
PHOTO_NOUN = {"close": "close-up", "half": "half-body", "full": "full-body"}
DEFAULT_TARGETS = {g: 1 / 3 for g in GROUPS}
# Heaviest multiplier relative to the fullest group. Past ~5x one photo dominates its group's
# samples and the LoRA starts memorising its background, clothes and expression.
MAX_RATIO = 5
TOLERANCE = 0.05  # how far an effective share may sit from its target and still count as balanced
# the seed's repeats math: 90-120 repeats per image (~10 images = 900-1200 samples/epoch); < 50 undertrains
SEED_REPEATS = 100
MIN_REPEATS = 50
DERIVED_DIR = f"{OWN_DIR}/derived"
_DERIVED_NAME = re.compile(r"__(close|half)\.png$")
# test hook: seconds to sleep after each file written, so a test can kill the process mid-run
_PAUSE_ENV = "KLINT_REBALANCE_WRITE_DELAY"


# -- pure math ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Shortfall:
    group: str
    minimum: int  # photos to add so the capped repeats can reach the target share
    ideal: int  # photos to add so no repeats are needed at all


def balance_repeats(groups: dict[str, list[str]], targets: dict[str, float] = DEFAULT_TARGETS,
                    max_ratio: int = MAX_RATIO) -> tuple[dict[str, int], list[Shortfall]]:
    """Per-image multipliers giving each group its target share (curation.md §6).

    r_g follows kohya's balancing: the group with the most images per unit of target share
    keeps x1 and every other group's total weight is scaled to share_g * T with
    T = max(n_g / share_g). A group's total is spread over its images in path order, so the
    shares come out exact even when the per-image ratio is fractional (8/3 -> 3, 3, 2).
    """
    present = {g: sorted(rels) for g, rels in groups.items() if rels and targets.get(g, 0) > 0}
    mult: dict[str, int] = {}
    short: list[Shortfall] = []
    for g, rels in groups.items():
        if g not in present:
            for r in rels:
                mult[r] = 1
    if not present:
        return mult, short
    T = max(len(rels) / targets[g] for g, rels in present.items())
    biggest = max(len(r) for r in present.values())
    for g in GROUPS:
        if targets.get(g, 0) <= 0:
            continue
        rels = present.get(g, [])
        want = targets[g] * T
        n = len(rels)
        if n == 0 or want > max_ratio * n + 1e-9:
            minimum = math.ceil(want / max_ratio - 1e-9) - n
            ideal = max(minimum, math.ceil(biggest * targets[g] / max(targets.values()) - 1e-9) - n)
            short.append(Shortfall(g, max(minimum, 1), max(ideal, 1)))
        if n == 0:
            continue
        total = min(max(n, round(want)), max_ratio * n)
        each, extra = divmod(total, n)
        for i, r in enumerate(rels):
            mult[r] = each + (1 if i < extra else 0)
    return mult, short


def plan_composition(mult: dict[str, int], framing: dict[str, str], targets: dict[str, float] | None = None):
    """The plan's framing mix through `curate.composition`, the computation lint and the report use."""
    from curate.composition import composition

    return composition(((framing.get(rel, "none"), m) for rel, m in mult.items()), targets=targets)


def effective_shares(mult: dict[str, int], framing: dict[str, str]) -> dict[str, float]:
    """Shares of close/half/full among the framed samples; `none`: share of all samples in no group."""
    comp = plan_composition(mult, framing)
    return {**comp.shares, "none": comp.none_share}


# -- plan --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Record:
    rel: str
    framing: str  # close | half | full | none
    width: int = 0
    height: int = 0
    keypoints: Any = None
    head_height: float | None = None
    caption: str | None = None
    derived_from: str | None = None  # source rel for a crop
    problem: str | None = None  # why the image could not be measured (it then counts in no group)


@dataclasses.dataclass
class CropJob:
    source: str
    framing: str
    rel: str  # dataset-relative path of the crop
    box: tuple[int, int, int, int]
    caption: str
    dropped: list[str]

    @property
    def caption_rel(self) -> str:
        return self.rel[: -len(".png")] + ".txt"

    def manifest_entry(self, source_framing: str) -> dict[str, Any]:
        return {"path": self.rel, "source": self.source, "box": list(self.box), "framing": self.framing,
                "caption": self.caption_rel,
                "reason": f"rebalance: {self.framing} crop from a {source_framing} photo to fill the "
                          f"{GROUP_LABEL[self.framing]} group"}


@dataclasses.dataclass
class Plan:
    strategy: str
    targets: dict[str, float]
    max_ratio: int
    members: list[Record]  # originals + crops that will exist after the plan
    multipliers: dict[str, int]
    crops: list[CropJob]
    refusals: list[tuple[str, Refusal]]
    shortfalls: list[Shortfall]
    base: int
    avg_repeats: int

    @property
    def framing(self) -> dict[str, str]:
        return {m.rel: m.framing for m in self.members}

    def composition(self):
        return plan_composition(self.multipliers, self.framing, self.targets)

    def shares(self) -> dict[str, float]:
        comp = self.composition()
        return {**comp.shares, "none": comp.none_share}

    def counts(self) -> dict[str, int]:
        out = {g: 0 for g in (*GROUPS, "none")}
        for m in self.members:
            out[m.framing if m.framing in out else "none"] += 1
        return out

    def balanced(self) -> bool:
        shares = self.shares()
        return not self.shortfalls and all(abs(shares[g] - self.targets[g]) <= TOLERANCE + 1e-9 for g in GROUPS)

    @property
    def stage2(self) -> list[str]:
        return sorted(m.rel for m in self.members if m.framing == "full")

    def tables(self, recipe_stage2: tuple[int, float]) -> dict[str, Any]:
        """The `[repeats]` and `[rebalance]` tables exactly as they go into klint.toml."""
        shares = self.shares()
        total = sum(self.multipliers.values())
        steps, lr = recipe_stage2
        rebalance = {
            "strategy": self.strategy,
            "targets": {g: self.targets[g] for g in GROUPS},
            "max-ratio": self.max_ratio,
            "counts": self.counts(),
            "derived": len(self.crops),
            "shares": {g: round(shares[g], 4) for g in (*GROUPS, "none")},
            "base-repeats": self.base,
            "effective-samples": self.base * total,
            "stage2": {"images": self.stage2, "steps": steps, "lr": lr},
        }
        if self.shortfalls:
            rebalance["missing"] = {s.group: s.minimum for s in self.shortfalls}
        return {"repeats": dict(sorted(self.multipliers.items())), "rebalance": rebalance}


def plan_crops(originals: list[Record], targets: dict[str, float], resolution: int,
               out_prefix: str) -> tuple[list[CropJob], list[tuple[str, Refusal]]]:
    """Fill the groups below the fullest one with crops from wider originals, at most one crop
    per source per framing, half-body first (only full-body photos can give it)."""
    counts = {g: sum(1 for r in originals if r.framing == g) for g in GROUPS}
    live = {g: targets[g] for g in GROUPS if targets.get(g, 0) > 0}
    if not live:
        return [], []
    T = max(counts[g] / live[g] for g in live)
    by_framing = {g: sorted((r for r in originals if r.framing == g), key=lambda r: r.rel) for g in GROUPS}
    jobs: list[CropJob] = []
    refused: list[tuple[str, Refusal]] = []
    for target in ("half", "close"):
        if target not in live:
            continue
        deficit = math.floor(live[target] * T + 1e-9) - counts[target]
        for src_framing in SOURCES_FOR[target]:
            for rec in by_framing[src_framing]:
                if deficit <= 0:
                    break
                got = crop_box(rec.keypoints, rec.width, rec.height, target, resolution, rec.head_height)
                if isinstance(got, Refusal):
                    refused.append((rec.rel, got))
                    continue
                key = rec.rel.rsplit(".", 1)[0]
                caption, dropped = rewrite_caption(rec.caption or "", target)
                jobs.append(CropJob(source=rec.rel, framing=target, rel=f"{out_prefix}/{derived_name(key, target)}",
                                    box=got.box, caption=caption, dropped=dropped))
                counts[target] += 1
                deficit -= 1
    return jobs, refused


def make_plan(originals: list[Record], strategy: str, *, resolution: int, targets: dict[str, float] | None = None,
              max_ratio: int = MAX_RATIO, avg_repeats: int = SEED_REPEATS, out_prefix: str = DERIVED_DIR,
              stored: dict[str, int] | None = None) -> Plan:
    """`stored`: the repeats already in klint.toml; `crops` keeps them for the originals (crops
    come in at x1), the other strategies compute new ones."""
    if strategy not in ("repeats", "crops", "both"):
        raise KlintError(f"unknown rebalance strategy {strategy!r} (repeats, crops or both)")
    targets = dict(targets or DEFAULT_TARGETS)
    crops: list[CropJob] = []
    refused: list[tuple[str, Refusal]] = []
    if strategy in ("crops", "both"):
        crops, refused = plan_crops(originals, targets, resolution, out_prefix)
    members = sorted(originals, key=lambda r: r.rel) + [
        Record(rel=c.rel, framing=c.framing, caption=c.caption, derived_from=c.source) for c in crops]
    groups: dict[str, list[str]] = {g: [] for g in (*GROUPS, "none")}
    for m in members:
        groups[m.framing if m.framing in groups else "none"].append(m.rel)
    if strategy == "crops":
        mult = {m.rel: (1 if m.derived_from else max(1, int((stored or {}).get(m.rel, 1)))) for m in members}
        # what the table will show is what decides the shortfall: the same effective shares
        comp = plan_composition(mult, {m.rel: m.framing for m in members}, targets)
        short = []
        for g in GROUPS:
            if targets.get(g, 0) <= 0 or comp.shares[g] >= targets[g] - TOLERANCE - 1e-9:
                continue
            minimum = comp.to_add(g, targets[g] - TOLERANCE)
            short.append(Shortfall(g, minimum, max(minimum, comp.to_add(g, targets[g]))))
    else:
        mult, short = balance_repeats(groups, targets, max_ratio)
    base = base_repeats(avg_repeats, len(members), sum(mult.values()))
    return Plan(strategy=strategy, targets=targets, max_ratio=max_ratio, members=members, multipliers=mult,
                crops=crops, refusals=refused, shortfalls=short, base=base, avg_repeats=avg_repeats)


# -- reading the stored plan (backends) ---------------------------------------------------------

def stored_plan(config: Config) -> dict[str, Any]:
    """The `[rebalance]` table of the dataset config ({} when the set was never rebalanced)."""
    table = config.extra.get("rebalance")
    return table if isinstance(table, dict) else {}


def per_image_repeats(config: Config, rels: Iterable[str], avg_repeats: int | None = None) -> dict[str, int]:
    """Absolute repeats per image: base x multiplier, base chosen so the average stays the seed's."""
    rels = list(rels)
    avg = int(avg_repeats or config.train.get("repeats") or SEED_REPEATS)
    return repeats_per_image({r: int(config.repeats.get(r, 1)) for r in rels}, avg)


# -- CLI ---------------------------------------------------------------------------------------

def _is_derived(rel: str, manifest_paths: set[str], out_prefix: str) -> bool:
    if rel in manifest_paths or rel.split("/", 1)[0] == OWN_DIR:
        return True
    return rel.startswith(out_prefix + "/") and bool(_DERIVED_NAME.search(rel))


def _oriented_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        try:
            orient = im.getexif().get(0x0112, 1)
        except Exception:  # broken EXIF: the pixels are what they are
            orient = 1
    return (h, w) if orient in (5, 6, 7, 8) else (w, h)


def _framing_results(dataset: Dataset, config: Config, items, use_cache: bool,
                     no_progress: bool) -> dict[str, tuple[dict | None, dict | None]]:
    """rel -> (framing result, pose result) from the cached "framing" analysis (and its "pose")."""
    from curate.analysis.cache import Cache
    from curate.cli.common import show_progress
    from curate.engine.registry import all_analyses
    from curate.engine.runner import LintContext, run_analyses

    if "framing" not in all_analyses():
        raise KlintError("rebalancing needs the pose/framing analyses, which no installed plugin provides")
    # analyse every image, crops included: the cache drops results a run did not ask for, and
    # `klint lint` wants the crops' framing too
    ctx = LintContext(dataset=dataset, config=config, show_progress=show_progress(no_progress))
    cache = Cache(dataset.root, enabled=use_cache)
    run_analyses(ctx, {"framing"}, cache)
    cache.save({it.rel_image for it in dataset.items if it.image is not None})
    return {it.rel_image: (ctx.result("framing", it), ctx.result("pose", it)) for it in items}


def _framing_of(result: dict | None) -> str:
    f = (result or {}).get("framing")
    return f if f in GROUPS else "none"


def _collect(dataset: Dataset, config: Config, out_prefix: str, use_cache: bool, no_progress: bool) -> list[Record]:
    manifest_paths = {e["path"] for e in rebalance_entries(dataset.root)}
    replaced = replacements(dataset.root)  # clean text crops stand in for their sources
    clean = set(replaced.values())
    originals = [it for it in dataset.images if it.rel_image in clean
                 or (it.rel_image not in replaced and not _is_derived(it.rel_image, manifest_paths, out_prefix))]
    if not originals:
        raise KlintError(f"{dataset.display_root}: no images to rebalance")
    found = _framing_results(dataset, config, originals, use_cache, no_progress)
    records = []
    for it in originals:
        fr, pose = found.get(it.rel_image, (None, None))
        fr, pose = fr or {}, pose or {}
        w, h = pose.get("width"), pose.get("height")
        problem = None
        if not (w and h):
            try:
                w, h = _oriented_size(it.image)
            except Exception as exc:  # PIL raises many kinds for hostile files, DecompressionBombError included
                w, h = 0, 0
                problem = f"cannot be decoded ({(str(exc).splitlines() or [type(exc).__name__])[0][:120]})"
        records.append(Record(rel=it.rel_image, framing=_framing_of(fr), width=int(w), height=int(h),
                              keypoints=fr.get("keypoints"), head_height=fr.get("head_height_px"),
                              caption=it.caption_text, problem=problem))
    return records


def _settings(root: Path) -> tuple[dict[str, Any], dict[str, float], int]:
    """(raw klint.toml, targets, max ratio); a user's edits to `[rebalance]` win next run."""
    import tomllib

    path = root / CONFIG_NAME
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise KlintError(f"{path}: cannot read config: {exc}") from None
    table = raw.get("rebalance", {}) if isinstance(raw.get("rebalance"), dict) else {}
    targets = dict(DEFAULT_TARGETS)
    user = table.get("targets")
    if user is not None:
        if (not isinstance(user, dict) or set(user) - set(GROUPS)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in user.values())
                or not 0.99 <= sum(user.get(g, 0) for g in GROUPS) <= 1.01):
            raise KlintError(f"{path}: [rebalance] targets must map close/half/full to shares summing to 1")
        targets = {g: float(user.get(g, 0)) for g in GROUPS}
    ratio = table.get("max-ratio", MAX_RATIO)
    if not isinstance(ratio, int) or isinstance(ratio, bool) or ratio < 1:
        raise KlintError(f"{path}: [rebalance] max-ratio must be an integer >= 1, got {ratio!r}")
    return raw, targets, ratio


def _avg_repeats(config: Config) -> tuple[int, tuple[int, float]]:
    from curate.recipes import RECIPES

    recipe = RECIPES.get(str(config.train.get("recipe", "standard")), RECIPES["standard"])
    avg = config.train.get("repeats", recipe.repeats)
    if not isinstance(avg, int) or isinstance(avg, bool) or avg < 1:
        raise KlintError(f"[train] repeats must be an integer >= 1, got {avg!r}")
    return avg, (recipe.stage2_steps, recipe.stage2_lr)


def _rep_span(values: list[int]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def render_table(plan: Plan) -> str:
    shares = plan.shares()
    rows = [("group", "images", "repeats", "effective share", "target")]
    counts = plan.counts()
    for g in (*GROUPS, "none"):
        if g == "none" and not counts["none"]:
            continue
        rels = [m for m in plan.members if (m.framing if m.framing in GROUPS else "none") == g]
        derived = sum(1 for m in rels if m.derived_from)
        images = f"{len(rels)}" + (f" ({derived} derived)" if derived else "")
        reps = _rep_span([plan.base * plan.multipliers[m.rel] for m in rels])
        target = f"{plan.targets[g]:.3f}" if g in GROUPS else "-"
        rows.append((GROUP_LABEL[g], images, reps, f"{shares[g]:.3f}", target))
    total = sum(plan.multipliers.values()) * plan.base
    rows.append(("total", str(len(plan.members)), f"{total} samples/epoch", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _notes(plan: Plan, display) -> list[str]:
    out = [f"{display(m.rel)}: {m.problem}; it counts toward no group" for m in plan.members if m.problem]
    for c in plan.crops:
        extra = f"; caption drops: {', '.join(c.dropped)}" if c.dropped else ""
        out.append(f"crop: {display(c.source)} -> {display(c.rel)} ({FRAMING_PHRASE[c.framing]}, "
                   f"box {list(c.box)}){extra}")
    for rel, ref in plan.refusals:
        out.append(f"no {ref.framing} crop from {display(rel)}: {ref.reason}")
    low = [m for m in plan.members if plan.base * plan.multipliers[m.rel] < MIN_REPEATS]
    if low:
        out.append(f"warning: {len(low)} image(s) get only {plan.base * min(plan.multipliers[m.rel] for m in low)} "
                   f"repeats (< {MIN_REPEATS}: the seed's undertraining threshold); add photos to the small groups "
                   f"rather than repeating them")
    n_none = plan.counts()["none"]
    if n_none:
        out.append(f"{n_none} image(s) with no detected person count toward no group (x1)")
    shares = plan.shares()
    for g in GROUPS:
        if shares[g] > plan.targets[g] + TOLERANCE + 1e-9:
            hint = (" (the stored repeats were planned without these crops: `--strategy both` plans them anew)"
                    if plan.strategy == "crops" and plan.crops
                    and any(plan.multipliers[m.rel] > 1 for m in plan.members if not m.derived_from) else "")
            out.append(f"{GROUP_LABEL[g]} is over its target ({shares[g]:.3f} > {plan.targets[g]:.3f} + "
                       f"{TOLERANCE}){hint}")
    for s in plan.shortfalls:
        noun = PHOTO_NOUN[s.group]
        ideal = ("to reach its full target share" if plan.strategy == "crops"
                 else "to match the fullest group without repeats")
        how = (f"add at least {s.minimum} {noun} photo{'s' if s.minimum != 1 else ''}"
               + (f" (ideally {s.ideal}, {ideal})" if s.ideal > s.minimum else ""))
        if s.group == "full" or plan.strategy == "repeats":
            why = "a wider framing can never be cut from a tighter one" if s.group == "full" else \
                  f"repeats are capped at {plan.max_ratio}x"
        else:
            why = "no wider photo gave a large enough crop"
        out.append(f"cannot reach the {GROUP_LABEL[s.group]} target: {how}; {why}")
    return out


def _pause() -> None:
    delay = os.environ.get(_PAUSE_ENV)
    if delay:
        time.sleep(float(delay))


def _render_crop(root: Path, job: CropJob) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(root / job.source) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "RGBA", "L"):
            im = im.convert("RGB")
        crop = im.crop(job.box)
        buf = io.BytesIO()
        # no metadata and fixed settings: the same crop always encodes to the same bytes
        crop.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _toml_text(path: Path, settings: dict[str, Any], new_tables: dict[str, Any]) -> str:
    """klint.toml with the plan tables replaced; the user's comments and layout are kept (tomlkit)."""
    import tomlkit

    if path.is_file():
        doc = tomlkit.parse(path.read_text("utf-8"))
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("klint settings; [repeats] and [rebalance] are written by `klint fix --rebalance`"))
        for key, value in settings.items():
            if key not in new_tables:
                doc[key] = value
    for key in ("repeats", "rebalance"):
        if key in doc:
            del doc[key]
    for key, value in new_tables.items():
        doc[key] = value
    return tomlkit.dumps(doc)


def _render_all(root: Path, crops: list[CropJob]) -> list[bytes]:
    """Every crop in memory before anything is written: a bad source stops the run, not half of it."""
    from PIL import Image

    out = []
    for job in crops:
        try:
            out.append(_render_crop(root, job))
        except Image.DecompressionBombError as exc:
            raise KlintError(f"{root / job.source}: too large to decode safely ({str(exc).splitlines()[0][:120]})"
                             ) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise KlintError(f"{root / job.source}: cannot decode for cropping: {exc}") from None
    return out


def apply_plan(root: Path, plan: Plan, raw_toml: dict[str, Any], new_tables: dict[str, Any],
               config: Config, notes: list[str] | None = None) -> list[str]:
    """Write what differs, crops and captions first, manifest and klint.toml last (each atomic).

    klint touches only what it wrote: a crop path that holds something other than the bytes
    the manifest recorded is left alone and named in `notes`, and so is a manifest entry that
    is not a file klint derives.
    """
    from curate.dataset.derived import sha256
    from curate.engine.diagnostic import WriteBytes, WriteText
    from curate.fix.apply import Writer

    notes = notes if notes is not None else []
    writer = Writer(root)
    changed: list[str] = []
    problems: list[str] = []
    all_entries = load_manifest(root, problems)
    notes.extend(problems)
    # clean text crops (image.text-overlay's fix) are not the plan's: kept as they are
    others = [e for e in all_entries if e.get("kind") == TEXT_CROP]
    old_entries = [e for e in all_entries if e.get("kind") != TEXT_CROP]
    recorded = {e["path"]: e.get("sha256") for e in old_entries}
    recorded.update({e["caption"]: e.get("caption_sha256") for e in old_entries if e.get("caption")})

    def ours(rel: str, data: bytes | None) -> bool:
        """Does `rel` hold nothing, or exactly what klint recorded writing there?"""
        return data is None or (recorded.get(rel) is not None and sha256(data) == recorded[rel])

    rendered = _render_all(root, plan.crops)
    new_raw = dict(raw_toml)
    if not (root / CONFIG_NAME).is_file() and config.source is not None and config.source.name == "pyproject.toml":
        # a new klint.toml shadows [tool.klint]; carry those settings over so nothing else changes
        import tomllib

        with config.source.open("rb") as fh:
            new_raw = dict(tomllib.load(fh).get("tool", {}).get("klint", {}))
    new_raw.pop("repeats", None)
    new_raw.pop("rebalance", None)
    new_raw.update(new_tables)
    toml_edit = WriteText(str(root / CONFIG_NAME), _toml_text(root / CONFIG_NAME, new_raw, new_tables)) \
        if new_raw != raw_toml else None
    # everything is checked before anything is written
    for job, data in zip(plan.crops, rendered):
        writer.check(WriteBytes(str(root / job.rel), data))
        writer.check(WriteText(str(root / job.caption_rel), job.caption))
    writer.check(WriteText(str(root / MANIFEST), ""))
    if toml_edit is not None:
        writer.check(toml_edit)

    sources = {r.rel: r.framing for r in plan.members}
    entries = []
    for job, data in zip(plan.crops, rendered):
        entry = job.manifest_entry(sources.get(job.source, "wider"))
        entry["sha256"] = sha256(data)
        entry["caption_sha256"] = sha256(job.caption.encode("utf-8"))
        entries.append(entry)
        current = _read(root / job.rel)
        if current != data:
            if not ours(job.rel, current):
                notes.append(f"left alone {job.rel}: it is not the crop klint wrote there (move it away to let "
                             f"klint write the crop)")
                entries.pop()
                continue
            writer.apply(WriteBytes(str(root / job.rel), data))
            changed.append(job.rel)
            _pause()
        if _read(root / job.caption_rel) != job.caption.encode("utf-8"):
            writer.apply(WriteText(str(root / job.caption_rel), job.caption))
            changed.append(job.caption_rel)
            _pause()

    keep = {e["path"] for e in entries + others} | {e["caption"] for e in entries + others if e.get("caption")}
    manifest_text = json.dumps({"version": 1, "items": others + entries}, indent=2) + "\n"
    mpath = root / MANIFEST
    if (entries or mpath.exists()) and _read(mpath) != manifest_text.encode("utf-8"):
        writer.apply(WriteText(str(mpath), manifest_text))
        changed.append(MANIFEST)
        _pause()

    if toml_edit is not None:
        writer.apply(toml_edit)
        changed.append(CONFIG_NAME)
        _pause()

    # crops no longer in the plan (earlier plans) go to the backup folder, if they are klint's
    stale = set()
    for e in old_entries:
        stale.update({e["path"], e.get("caption") or e["path"].rsplit(".", 1)[0] + ".txt"})
    derived_dir = root / DERIVED_DIR
    if derived_dir.is_dir() and not derived_dir.is_symlink():
        for p in derived_dir.rglob("*"):
            if p.is_file() and _DERIVED_NAME.search(p.name.replace(".txt", ".png")):
                stale.add(p.relative_to(root).as_posix())
    stale -= keep | {c.rel for c in plan.crops} | {c.caption_rel for c in plan.crops}
    from curate.dataset.derived import plain_rel

    for rel in sorted(stale):
        src = root / rel
        if not plain_rel(root, rel) or not src.is_file():
            continue
        if not ours(rel, _read(src)):
            notes.append(f"left alone {rel}: not in the plan, but not what klint wrote there either")
            continue
        dest = writer.backup_dir / rel
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        except OSError as exc:
            from curate.errors import os_error

            raise os_error(exc, src, "cannot move to the backup folder") from None
        changed.append(f"{rel} (moved to backup)")
    return changed


def rebalance_cmd(target, *, strategy: str = "repeats", dry_run: bool = False, out_dir: str | None = None,
                  use_cache: bool = True, no_progress: bool = False) -> int:
    if dry_run:
        return _rebalance(target, strategy, True, out_dir, use_cache, no_progress)
    from curate.dataset.lock import dataset_lock

    with dataset_lock(target.root, "klint fix --rebalance"):
        return _rebalance(target, strategy, False, out_dir, use_cache, no_progress)


def _rebalance(target, strategy: str, dry_run: bool, out_dir: str | None, use_cache: bool, no_progress: bool) -> int:
    import click

    from curate.cli.output import safe_text
    from curate.dataset.scan import scan

    dataset = scan(target.root)
    if not dry_run and dataset.leftovers:
        from curate.dataset.lock import remove_leftovers

        remove_leftovers(dataset.leftovers)
    root = dataset.root
    if out_dir is None:
        out_prefix = DERIVED_DIR
    else:
        out = Path(out_dir).resolve()
        try:
            out_prefix = out.relative_to(root).as_posix()
        except ValueError:
            raise KlintError(f"--out {out_dir}: must be inside the dataset {target.root} so trainers see the "
                             f"crops (copy the folder elsewhere afterwards)") from None
        if out_prefix in ("", "."):
            raise KlintError(f"--out {out_dir}: must be a sub-folder of the dataset, not its root")
    raw, targets, ratio = _settings(root)
    avg, stage2 = _avg_repeats(target.config)
    records = _collect(dataset, target.config, out_prefix, use_cache, no_progress)
    stored = {r.rel: int(target.config.repeats.get(r.rel, 1)) for r in records}
    plan = make_plan(records, strategy, resolution=target.config.resolution, targets=targets, max_ratio=ratio,
                     avg_repeats=avg, out_prefix=out_prefix, stored=stored)
    tables = plan.tables(stage2)
    click.echo(safe_text(f"Rebalance plan for {dataset.display_root} (strategy: {strategy})"))
    click.echo(render_table(plan), nl=False)
    for note in _notes(plan, dataset.display):
        click.echo(safe_text(note))
    if dry_run:
        click.echo("Dry run: nothing written.")
    else:
        had_own = (root / CONFIG_NAME).is_file()
        notes: list[str] = []
        changed = apply_plan(root, plan, raw, tables, target.config, notes)
        for note in notes:
            click.echo(safe_text(note))
        src = target.config.source
        if changed and not had_own and src is not None and src.name == "pyproject.toml":
            click.echo(f"Created {dataset.display(CONFIG_NAME)} with the [tool.klint] settings of {src} copied in "
                       f"(a dataset's klint.toml takes precedence).")
        if changed:
            click.echo(safe_text(f"Wrote {len(changed)} file(s): " + ", ".join(changed[:6])
                                 + (f", ... ({len(changed) - 6} more)" if len(changed) > 6 else "")))
            click.echo(safe_text(f"Plan stored in {dataset.display(CONFIG_NAME)} ([repeats], [rebalance])."))
        else:
            click.echo("Nothing to change: the stored plan is already up to date.")
    if not plan.balanced():
        return 1
    return 0

