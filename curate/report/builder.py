"""Build the self-contained HTML report from a lint result and the per-image inspect records."""

from __future__ import annotations

import base64
import hashlib
import math
import os
import time
from collections import Counter, defaultdict
from html import escape
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from curate import __version__
from curate.engine.diagnostic import SEVERITY_ORDER, Diagnostic
from curate.errors import KlintError
from curate.report.template import CSS, JS

# (key, heading, what it means)
FRAMINGS = (
    ("close", "Close-up", "shoulders up"),
    ("half", "Half-body", "waist up"),
    ("full", "Full-body", "head to feet"),
    ("none", "No usable person", "no one detected, or too small"),
    ("unknown", "Framing not analysed", "no framing result"),
)
FRAMED = ("close", "half", "full")
LABEL = {k: h for k, h, _ in FRAMINGS}
# the curation notes warn when one lighting setup or background holds this share or more
DOMINANT_SHARE = 0.7
DISPLAY_MAX = 256  # CSS px of a grid thumbnail's longer side
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def framing_of(rec: dict[str, Any]) -> str:
    f = rec.get("framing")
    if f not in LABEL or (rec.get("error") and f == "none"):
        return "unknown"
    return f


def _stem(rel: str) -> str:
    p = PurePosixPath(rel)
    return str(p.with_suffix("")) if p.suffix else rel


def collect_records(result, records: Iterable[dict[str, Any]] | None = None, *,
                    use_cache: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """One record per image: inspect records (or `records`, when given) over basic facts from the scan.

    Returns (records, note); note says why framing/lighting data is absent, or None.
    """
    ds = result.dataset
    images = result.context.results.get("image", {})
    base: dict[str, dict[str, Any]] = {}
    for it in ds.images:
        facts = images.get(it.rel_image) or {}
        base[it.rel_image] = {
            "path": ds.display(it.rel_image), "rel": it.rel_image, "key": it.key,
            "width": facts.get("width"), "height": facts.get("height"), "caption": it.caption_text,
            "readable": facts.get("readable", True), "abspath": it.image,
        }
    note = None
    if records is None:
        try:
            from curate.inspect import inspect_records
        except ImportError as exc:
            if exc.name != "curate.inspect":
                raise
            note = "framing, lighting and background analysis is not available in this build"
        else:
            records = inspect_records(result, use_cache=use_cache)
    if records is not None:
        for rec in records:
            rel = rec.get("rel")
            if rel in base:
                base[rel].update({k: v for k, v in rec.items() if v is not None or k not in base[rel]})
    return list(base.values()), note


def thumbnail(path: Path, size: int) -> tuple[str, int, int, int, int] | None:
    """(base64 JPEG, thumb width, thumb height, full width, full height) upright, or None if unreadable."""
    from io import BytesIO

    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            full_w, full_h = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientations that swap the axes
                full_w, full_h = full_h, full_w
            im.draft("RGB", (size, size))  # JPEG decodes at a reduced scale: much faster for big photos
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                flat = Image.new("RGB", im.size, (255, 255, 255))
                flat.paste(im, mask=im.getchannel("A"))
                im = flat
            else:
                im = im.convert("RGB")
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = BytesIO()
            im.save(buf, "JPEG", quality=80, optimize=True)
    except Exception:  # any broken image still gets a card, just without a picture
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii"), im.width, im.height, full_w, full_h


def _fmt_pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def composition(records: list[dict[str, Any]], config=None):
    """The framing mix of the report's records (repeats included), from `curate.composition`, the
    function lint and rebalance use; images whose framing was not analysed count as `none`."""
    from curate.composition import composition as compute, for_dataset

    pairs = [(framing_of(r), r.get("repeats", 1) or 1) for r in records if not r.get("replaced_by")]
    return for_dataset(config, pairs) if config is not None else compute(pairs)


def _describe(field: str, members: list[dict[str, Any]]) -> str:
    """A few words (HTML) about a cluster: backdrop kind and average colour for backgrounds."""
    if field != "background":
        return ""
    infos = [r["background"] for r in members]
    plain = sum(1 for i in infos if i.get("plain")) * 2 > len(infos)
    rgbs = [i["mean_rgb"] for i in infos if isinstance(i.get("mean_rgb"), list) and len(i["mean_rgb"]) == 3]
    swatch = ""
    if rgbs:
        avg = [round(255 * min(1.0, max(0.0, sum(c[k] for c in rgbs) / len(rgbs)))) for k in range(3)]
        swatch = f'<span class="swatch" style="background:rgb({avg[0]},{avg[1]},{avg[2]})"></span>'
    if not any("plain" in i for i in infos):
        return swatch
    return swatch + ("plain backdrop" if plain else "busy scene")


def clusters(records: list[dict[str, Any]], field: str, key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        info = r.get(field)
        if isinstance(info, dict) and info.get(key) is not None:
            label = str(info[key])
            if field == "background" and isinstance(info[key], int):
                label = f"Background {info[key] + 1}"  # people count from 1
            elif field == "lighting":
                label = label.replace("/", " · ")
            groups[label].append(r)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _overlay(rec: dict[str, Any]) -> str:
    w, h = _num(rec.get("width")), _num(rec.get("height"))
    if not w or not h:
        return ""
    unit = max(w, h) / 200  # stroke/radius in image pixels that look ~1 CSS px on the thumbnail
    parts: list[str] = []
    box = rec.get("subject_box")
    if isinstance(box, (list, tuple)) and len(box) == 4 and all(_num(v) is not None for v in box):
        x0, y0, x1, y1 = (float(v) for v in box)
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none" '
                     f'stroke="#ffd400" stroke-width="{2 * unit:.1f}"/>')
    kps = rec.get("keypoints")
    people: list[Any] = []
    if isinstance(kps, list) and kps:
        nested = isinstance(kps[0], list) and kps[0] and isinstance(kps[0][0], (list, tuple))
        people = kps if nested else [kps]
    for person in people:
        pts: list[tuple[float, float] | None] = []
        for p in person if isinstance(person, list) else ():
            ok = isinstance(p, (list, tuple)) and len(p) >= 2 and _num(p[0]) is not None and _num(p[1]) is not None
            if ok and (len(p) < 3 or (_num(p[2]) or 0) >= 0.3) and (p[0] > 0 or p[1] > 0):
                pts.append((float(p[0]), float(p[1])))
            else:
                pts.append(None)
        if len(pts) == 17:
            for a, b in COCO_SKELETON:
                if pts[a] and pts[b]:
                    parts.append(f'<line x1="{pts[a][0]:.1f}" y1="{pts[a][1]:.1f}" x2="{pts[b][0]:.1f}" '
                                 f'y2="{pts[b][1]:.1f}" stroke="#00e0ff" stroke-width="{1.5 * unit:.1f}"/>')
        for pt in pts:
            if pt:
                parts.append(f'<circle cx="{pt[0]:.1f}" cy="{pt[1]:.1f}" r="{2.2 * unit:.1f}" fill="#ff3d7f"/>')
    if not parts:
        return ""
    return (f'<svg viewBox="0 0 {w:.0f} {h:.0f}" preserveAspectRatio="none" aria-hidden="true">'
            + "".join(parts) + "</svg>")


def _identity_threshold(result) -> float | None:
    from curate.analysis.identity import dataset_identity

    return dataset_identity(result.context).get("threshold")


TEXT_COLOUR = {"error": "#ff2d2d", "warning": "#ff9f1a", "info": "#8fa3b8"}


def _text_boxes(rec: dict[str, Any]) -> str:
    """Burned-in text regions (image.text-overlay), always drawn: a watermark must be seen at a glance."""
    w, h = _num(rec.get("width")), _num(rec.get("height"))
    text = rec.get("text")
    regions = text.get("regions") if isinstance(text, dict) else None
    if not w or not h or not isinstance(regions, list) or not regions:
        return ""
    unit = max(w, h) / 200
    parts = []
    for r in regions:
        box = r.get("box") if isinstance(r, dict) else None
        if not (isinstance(box, list) and len(box) == 4 and all(_num(v) is not None for v in box)):
            continue
        x0, y0, x1, y1 = (float(v) for v in box)
        colour = TEXT_COLOUR.get(str(r.get("severity")), "#8fa3b8")
        label = escape(f'{r.get("kind", "text")}: {r.get("text") or "unreadable"}')
        parts.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none" '
                     f'stroke="{colour}" stroke-width="{1.8 * unit:.1f}" stroke-dasharray="{4 * unit:.1f} '
                     f'{2 * unit:.1f}"><title>{label}</title></rect>')
    if not parts:
        return ""
    return (f'<svg class="textboxes" viewBox="0 0 {w:.0f} {h:.0f}" preserveAspectRatio="none" role="img" '
            f'aria-label="text regions">' + "".join(parts) + "</svg>")


class _Page:
    """Accumulates the HTML; thumbnails are defined once as CSS classes and reused everywhere."""

    def __init__(self, result, records, note, thumb_size: int):
        self.result, self.records, self.note, self.size = result, records, note, thumb_size
        self.thumbs: dict[str, tuple[str, int, int, int, int] | None] = {}
        self.css_class: dict[str, str] = {}
        for i, rec in enumerate(records):
            t = thumbnail(rec["abspath"], thumb_size) if rec.get("abspath") else None
            self.thumbs[rec["rel"]] = t
            self.css_class[rec["rel"]] = f"t{i}"
            if t is not None and not (_num(rec.get("width")) and _num(rec.get("height"))):
                rec["width"], rec["height"] = t[3], t[4]
        from curate.report.faces import FaceChips

        self.faces = FaceChips(records, _identity_threshold(result))
        self.by_key: dict[str, list[Diagnostic]] = defaultdict(list)
        self.dataset_level: list[Diagnostic] = []
        keys = {rec["key"] for rec in records}
        for d in result.diagnostics:
            k = _stem(d.rel) if d.rel else None
            if k in keys:
                self.by_key[k].append(d)
            else:
                self.dataset_level.append(d)

    # -- pieces -----------------------------------------------------------------------------------
    def thumb_css(self) -> str:
        out = []
        for rel, t in self.thumbs.items():
            if t is not None:
                out.append(f'.{self.css_class[rel]}{{background-image:url("data:image/jpeg;base64,{t[0]}")}}')
        out.append(self.faces.css())
        return "\n".join(out)

    def mini(self, rec: dict[str, Any]) -> str:
        cls = self.css_class[rec["rel"]]
        name = escape(rec["path"])
        return f'<div class="mini {cls}" title="{name}" role="img" aria-label="{name}"></div>'

    def header(self) -> str:
        ds, cfg = self.result.dataset, self.result.context.config
        diags = self.result.diagnostics
        sev = Counter(d.severity for d in diags)
        fixable = sum(1 for d in diags if d.fix is not None)
        if sev["error"]:
            verdict, vclass = "Not ready to train", "error"
            why = f"{_plural(sev['error'], 'error')} to fix first"
        elif sev["warning"]:
            verdict, vclass = "Trainable, with warnings", "warning"
            why = f"{_plural(sev['warning'], 'warning')} worth a look"
        else:
            verdict, vclass = "Ready to train", "ok"
            why = "no errors or warnings"
        if fixable:
            why += f"; {fixable} fixable with <code>klint fix</code>"
        name = Path(ds.root).resolve().name or str(ds.root)
        trigger = escape(cfg.trigger) if cfg.trigger else '<span class="sub">not set</span>'
        captions = sum(1 for it in ds.images if it.caption_text is not None)
        stats = [
            ("", len(ds.images), "images"),
            ("", captions, "captioned"),
            ("error", sev["error"], "errors"),
            ("warning", sev["warning"], "warnings"),
            ("info", sev["info"], "notes"),
        ]
        stat_html = "".join(f'<div class="stat {c}"><b>{n}</b><span>{escape(label)}</span></div>'
                            for c, n, label in stats)
        return (
            '<header class="top"><div>'
            f'<h1>{escape(name)}</h1>'
            f'<div class="where"><span class="mono">{escape(ds.display_root or str(ds.root))}</span> · trigger '
            f'<b class="mono">{trigger}</b> · {escape(cfg.model)} · {cfg.resolution}px</div>'
            f'</div><div class="verdict {vclass}">{verdict}<small>{why}</small></div></header>'
            f'<div class="stats">{stat_html}</div>'
        )

    def composition(self) -> str:
        from curate.composition import NOUN, pct

        comp = composition(self.records, self.result.context.config)
        counts = Counter(framing_of(r) for r in self.records)
        framed = comp.framed_images
        parts = ['<section id="composition"><h2>Composition</h2>']
        parts.append('<div class="sub small">Target: a third each of close-ups, half-body and full-body shots '
                     'of the photos with a person in them (dashed lines mark ⅓ and ⅔). Shares count repeats, '
                     'as training does.</div>')
        total = sum(counts.values())
        if total:
            order = (*FRAMED, "none", "unknown")
            segs = "".join(
                f'<div class="seg {k}" style="width:{100 * counts[k] / total:.3f}%" title="{LABEL[k]}: {counts[k]}">'
                f'{LABEL[k]} {counts[k]}</div>' for k in order if counts[k])
        else:
            segs = '<div class="seg unknown" style="width:100%">no images</div>'
        # the thirds are of the shots with a person in them, so the markers sit within that part of the bar
        markers = ""
        if framed:
            markers = "".join(f'<div class="target" style="left:{100 * framed * f / total:.3f}%"><span>{t}</span></div>'
                              for f, t in ((1 / 3, "⅓"), (2 / 3, "⅔")))
        parts.append(f'<div class="bar-wrap"><div class="bar">{segs}</div>{markers}</div>')
        rows = []
        missing = []
        for k in FRAMED:
            label = LABEL[k]
            state = comp.status(k)
            if state == "low":
                need, ideal = comp.to_add(k), comp.to_add(k, comp.targets[k])
                more = f" ({ideal} for {pct(comp.targets[k])})" if ideal > need else ""
                status = f'<span class="status-low">short: add {need}{more}</span>'
                missing.append(f"{need} {NOUN[k]} photo{'s' if need != 1 else ''}")
            elif state == "high":
                status = f'<span class="status-high">over {pct(comp.ceiling(k))}</span>'
            elif state == "ok":
                status = '<span class="status-ok">on target</span>'
            else:
                status = '<span class="sub">n/a</span>'
            images = f"{comp.counts[k]}" + (f' <span class="sub small">×{comp.weights[k]} with repeats</span>'
                                            if comp.weighted else "")
            rows.append(f'<tr><td><span class="dot {k}"></span>{label} <span class="sub small">'
                        f'{escape(dict((a, c) for a, _, c in FRAMINGS)[k])}</span></td>'
                        f'<td class="num">{images}</td>'
                        f'<td class="num">{pct(comp.shares[k]) if framed else "–"}</td>'
                        f'<td class="num">{pct(comp.targets[k])}</td><td>{status}</td></tr>')
        for k in ("none", "unknown"):
            if counts[k]:
                rows.append(f'<tr><td><span class="dot {k}"></span>{LABEL[k]}</td><td class="num">{counts[k]}</td>'
                            f'<td class="num sub">–</td><td class="num sub">–</td>'
                            f'<td class="sub">not counted in the mix</td></tr>')
        parts.append('<table class="comp"><thead><tr><th>Framing</th><th class="num">Images</th>'
                     '<th class="num">Share</th><th class="num">Target</th><th>Status</th></tr></thead><tbody>'
                     + "".join(rows) + "</tbody></table>")
        if missing:
            parts.append(f'<p class="missing"><b>Missing:</b> {", ".join(missing)}, to reach at least '
                         f'{pct(min(comp.floor(k) for k in comp.short))} each (the dataset.composition threshold).</p>')
        elif framed:
            parts.append(f'<p class="sub">Each framing is within {100 * comp.tolerance:.0f} points of its target.</p>')
        if self.note:
            parts.append(f'<p class="sub small">{escape(self.note)}.</p>')
        parts.append("</section>")
        return "".join(parts)

    def cluster_block(self, title: str, field: str, key: str, explain: str) -> str:
        groups = clusters(self.records, field, key)
        total = sum(len(g) for _, g in groups)
        out = [f'<div><h2>{escape(title)}</h2>']
        if not groups:
            out.append('<p class="sub">Not analysed for this dataset.</p></div>')
            return "".join(out)
        from curate.analysis.variety import effective_number

        effective = effective_number([len(g) for _, g in groups])
        out.append(f'<p class="sub small">{_plural(len(groups), "cluster")} over {_plural(total, "image")} '
                   f'(effective number {effective}: {_plural(len(groups), "equally common setup")} would give '
                   f'{len(groups)}, one dominant setup gives close to 1). {escape(explain)}</p>')
        # a long tail of one-image clusters says "all different"; one row says it better than many
        singles = [g[0] for _, g in groups if len(g) == 1]
        rows = [(label, members, False) for label, members in groups if len(members) > 1 or len(singles) < 3]
        if len(singles) >= 3:
            rows.append(("All different" if len(singles) == total else f"{len(singles)} one-offs", singles, True))
        for label, members, one_off in rows:
            share = len(members) / total
            dominant = share >= DOMINANT_SHARE and total > 1 and not one_off
            tag = '<span class="tag">dominates</span>' if dominant else ""
            desc = "each on its own" if one_off else _describe(field, members)
            strip = "".join(self.mini(r) for r in sorted(members, key=lambda r: r["rel"]))
            out.append(
                f'<div class="cluster{" dominant" if dominant else ""}"><div class="cluster-head">'
                f'<h3>{escape(label)}{tag}</h3><span class="sub small">{desc}</span>'
                f'<span class="sub">{_plural(len(members), "image")} · {_fmt_pct(share)}</span></div>'
                f'<div class="share"><div style="width:{100 * share:.1f}%"></div></div>'
                f'<div class="strip">{strip}</div></div>')
        out.append("</div>")
        return "".join(out)

    def variety(self) -> str:
        return ('<section id="variety"><div class="clusters">'
                + self.cluster_block("Lighting", "lighting", "bucket",
                                     "The seed recipe wants at least 3 different lighting setups.")
                + self.cluster_block("Backgrounds", "background", "cluster",
                                     "Varied backgrounds keep the scene out of the identity.")
                + "</div></section>")

    def diag_items(self, diags: Iterable[Diagnostic], with_path: bool = False) -> str:
        out = []
        for d in sorted(diags, key=lambda d: (SEVERITY_ORDER[d.severity], d.code)):
            fix = ""
            if d.fix is not None:
                fix = f' <span class="chip">fix: {escape(d.fix.applicability)}</span>'
            related = ""
            if d.related:
                related = f' <span class="sub small">(with {escape(", ".join(d.related))})</span>'
            where = f'<span class="mono">{escape(d.path)}</span>: ' if with_path and d.rel else ""
            sev = escape(d.severity)
            out.append(f'<li class="{sev}"><span class="sev {sev}">{sev}</span>'
                       f'<code>{escape(d.code)}</code> <span class="rule">{escape(d.name)}</span><br>'
                       f'{where}{escape(d.message)}{fix}{related}</li>')
        return f'<ul class="diags">{"".join(out)}</ul>'

    def card(self, rec: dict[str, Any]) -> str:
        diags = self.by_key.get(rec["key"], [])
        worst = min((SEVERITY_ORDER[d.severity] for d in diags), default=None)
        sev = {0: "error", 1: "warning", 2: "info"}.get(worst, "none")
        t = self.thumbs.get(rec["rel"])
        name = escape(rec["rel"])
        if t is not None:
            scale = min(1.0, DISPLAY_MAX / max(t[1], t[2]))
            w, h = round(t[1] * scale), round(t[2] * scale)
            thumb = (f'<div class="thumb {self.css_class[rec["rel"]]}" style="width:{w}px;height:{h}px" role="img" '
                     f'aria-label="{name}">{_overlay(rec)}{_text_boxes(rec)}</div>')
        else:
            thumb = (f'<div class="thumb broken" style="width:{DISPLAY_MAX}px;height:{DISPLAY_MAX * 2 // 3}px">'
                     'image could not be read</div>')
        framing = framing_of(rec)
        chips = []
        conf = _num(rec.get("framing_confidence"))
        chips.append(f'<span class="chip {framing}">{LABEL[framing].lower()}'
                     f'{f" · {conf:.2f}" if conf is not None else ""}</span>')
        if _num(rec.get("width")) and _num(rec.get("height")):
            chips.append(f'<span class="chip">{int(rec["width"])}×{int(rec["height"])}</span>')
        people = _num(rec.get("people"))
        if people is not None:
            chips.append(f'<span class="chip">{_plural(int(people), "person", "people")}</span>')
        frac = _num(rec.get("subject_fraction"))
        if frac is not None:
            chips.append(f'<span class="chip">subject {_fmt_pct(frac)}</span>')
        head = _num(rec.get("head_height_px"))
        if head is not None:
            chips.append(f'<span class="chip">head {head:.0f}px</span>')
        if rec.get("face_visible") is not None:
            chips.append(f'<span class="chip">face {"visible" if rec["face_visible"] else "not visible"}</span>')
        light = rec.get("lighting")
        if isinstance(light, dict) and light.get("bucket") is not None:
            chips.append(f'<span class="chip">light: {escape(str(light["bucket"]).replace("/", " · "))}</span>')
        bg = rec.get("background")
        if isinstance(bg, dict) and bg.get("cluster") is not None:
            n = bg["cluster"] + 1 if isinstance(bg["cluster"], int) else bg["cluster"]
            chips.append(f'<span class="chip">background {escape(str(n))}</span>')
        text = rec.get("text")
        if isinstance(text, dict) and text.get("regions"):
            n_text = len(text["regions"])
            chips.append(f'<span class="chip text-{escape(str(text.get("worst")))}">{_plural(n_text, "text region")}'
                         f' · {_fmt_pct(float(text.get("coverage") or 0))}</span>')
        repeats = _num(rec.get("repeats"))
        if repeats is not None and repeats != 1:
            chips.append(f'<span class="chip">×{int(repeats)} repeats</span>')
        cap = rec.get("caption")
        if cap is None:
            caption = '<p class="caption missing-cap">no caption</p>'
        else:
            caption = f'<p class="caption">{escape(cap)}</p>'
        if rec.get("error"):
            caption += f'<p class="sub small">not analysed: {escape(str(rec["error"]))}</p>'
        body = self.diag_items(diags) if diags else '<div class="clean">✓ no problems</div>'
        text = escape(f'{rec["path"]} {cap or ""}'.lower())
        return (f'<article class="card sev-{sev}" data-sev="{sev}" data-text="{text}">{thumb}'
                f'<div class="info"><div class="name" title="{escape(rec["path"])}">{name}</div>'
                f'<div class="meta">{self.faces.card_html(rec)}{"".join(chips)}</div>'
                f'{caption}{body}</div></article>')

    def grid(self) -> str:
        by_framing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rec in self.records:
            by_framing[framing_of(rec)].append(rec)
        has_overlay = any(_overlay(r) for r in self.records)
        toolbar = ('<div class="toolbar"><button class="on" data-filter="all">All</button>'
                   '<button data-filter="problems">With problems</button>'
                   '<button data-filter="error">Errors</button><button data-filter="warning">Warnings</button>'
                   '<input type="search" id="search" placeholder="Filter by file name or caption">')
        if has_overlay:
            toolbar += '<label><input type="checkbox" id="overlay"> pose overlay</label>'
        toolbar += "</div>"
        out = [f'<section id="images"><h2>Images by framing</h2>{toolbar}']
        for k, heading, meaning in FRAMINGS:
            recs = sorted(by_framing.get(k, []), key=lambda r: r["rel"])
            if not recs:
                continue
            out.append(f'<div class="group" id="group-{k}"><h3><span class="dot {k}"></span>{heading}'
                       f' <span class="count">(<span class="shown">{len(recs)}</span>) · {escape(meaning)}</span></h3>'
                       f'<div class="cards">{"".join(self.card(r) for r in recs)}</div></div>')
        if not self.records:
            out.append('<p class="sub">No images found.</p>')
        out.append("</section>")
        return "".join(out)

    def dataset_section(self) -> str:
        diags = self.result.diagnostics
        out = ['<section id="dataset"><h2>Dataset-level findings</h2>']
        if self.dataset_level:
            out.append(self.diag_items(self.dataset_level, with_path=True))
        else:
            out.append('<p class="clean">✓ nothing beyond the per-image findings</p>')
        if diags:
            per_rule: dict[tuple[str, str, str], int] = Counter((d.code, d.name, d.severity) for d in diags)
            rows = "".join(
                f'<tr><td><span class="sev {escape(s)}">{escape(s)}</span></td><td><code>{escape(c)}</code></td>'
                f'<td>{escape(n)}</td><td class="num">{k}</td></tr>'
                for (c, n, s), k in sorted(per_rule.items(),
                                           key=lambda kv: (SEVERITY_ORDER[kv[0][2]], -kv[1], kv[0][0])))
            out.append('<h3 style="margin-top:16px">By rule</h3><table><thead><tr><th>Severity</th><th>Code</th>'
                       f'<th>Rule</th><th class="num">Count</th></tr></thead><tbody>{rows}</tbody></table>'
                       '<p class="sub small">Details: <code>klint rule CODE</code>.</p>')
        out.append("</section>")
        return "".join(out)

    def render(self) -> str:
        body = (f"{self.header()}{self.composition()}{self.variety()}{self.faces.strip()}{self.grid()}"
                f"{self.dataset_section()}")
        return page(f"klint report · {Path(self.result.dataset.root).resolve().name}", body,
                    extra_css=self.thumb_css())


def page(title: str, body: str, *, extra_css: str = "", script: str | None = JS) -> str:
    """The self-contained page every klint HTML output uses (`klint report`, `klint eval`): the
    report's stylesheet, a CSP that lets nothing load from outside, `body` inside <main>, a footer."""
    # nothing may load from outside, and only our own script may run, even if escaping ever slipped
    if script:
        js_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        scripts, tail = f"'sha256-{js_hash}'", f"<script>{script}</script>"
    else:
        scripts, tail = "'none'", ""
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><style>{CSS}\n{extra_css}</style></head>'
        f'<body><main>{body}<footer>klint {escape(__version__)} · {stamp}</footer></main>{tail}</body></html>\n'
    )


def build_report(result, *, thumb_size: int = 256, records: list[dict[str, Any]] | None = None,
                 use_cache: bool = True) -> str:
    """The report page as one HTML string. `records` overrides `collect_records(result)` (for tests)."""
    records, note = collect_records(result, records, use_cache=use_cache)
    return _Page(result, records, note, thumb_size).render()


def write_report(result, output: Path, *, thumb_size: int = 256, use_cache: bool = True) -> Path:
    """Build and atomically write the report; refuses to replace anything but a file."""
    from curate.fix.apply import atomic_write

    output = Path(output)
    if output.is_dir():
        raise KlintError(f"{output}: is a directory; give a file name like report.html")
    if not output.parent.is_dir():
        raise KlintError(f"{output.parent}: output folder does not exist")
    try:
        ds_root = Path(result.dataset.root).resolve()
        inside = output.resolve().is_relative_to(ds_root)
    except OSError:
        inside = False
    if inside and output.exists() and output.suffix.lower() not in (".html", ".htm"):
        raise KlintError(f"{output}: refusing to overwrite a non-HTML file inside the dataset")
    html = build_report(result, thumb_size=thumb_size, use_cache=use_cache)
    if output.exists():
        mode = output.stat().st_mode & 0o7777
    else:
        mask = os.umask(0)  # mkstemp files are 0600; a report is meant to be shared like any new file
        os.umask(mask)
        mode = 0o666 & ~mask
    try:
        atomic_write(output, html.encode("utf-8"), mode)
    except OSError as exc:
        raise KlintError(f"{output}: cannot write report ({exc.strerror or exc})") from None
    return output
