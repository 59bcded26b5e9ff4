"""The report's face pieces: a face chip per card and the identity strip (strangers first).

Numbers come from the inspect records' `face` field (curate.inspect.face_records), so the page
shows exactly what `klint inspect` and the identity rules see.
"""

from __future__ import annotations

import base64
from html import escape
from io import BytesIO
from pathlib import Path
from typing import Any

CHIP = 72


def face_chip(path: Path, box, size: int = CHIP) -> str | None:
    """Base64 JPEG of the face box (with a margin), upright, or None."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            x0, y0, x1, y1 = box
            m = 0.2 * max(x1 - x0, y1 - y0)
            crop = im.crop((int(max(0, x0 - m)), int(max(0, y0 - m)), int(min(im.width, x1 + m)),
                            int(min(im.height, y1 + m))))
            crop.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = BytesIO()
            crop.save(buf, "JPEG", quality=82)
    except Exception:  # a broken image just has no chip
        return None
    return base64.b64encode(buf.getvalue()).decode("ascii")


class FaceChips:
    def __init__(self, records: list[dict[str, Any]], threshold: float | None):
        self.threshold = threshold
        self.css_class: dict[str, str] = {}
        self.data: dict[str, str] = {}
        for i, rec in enumerate(records):
            face = rec.get("face") or {}
            if face.get("box") and rec.get("abspath"):
                chip = face_chip(rec["abspath"], face["box"])
                if chip:
                    self.css_class[rec["rel"]] = f"f{i}"
                    self.data[rec["rel"]] = chip
        self.records = records

    def css(self) -> str:
        rules = [f'.{self.css_class[r]}{{background-image:url("data:image/jpeg;base64,{d}")}}' for r, d in self.data.items()]
        rules.append(f".facechip{{width:{CHIP}px;height:{CHIP}px;background-size:cover;background-position:center;"
                     "border-radius:6px;display:inline-block;vertical-align:middle;margin-right:6px}"
                     ".stranger{outline:3px solid #d33}.strip{display:flex;flex-wrap:wrap;gap:8px}"
                     ".strip figure{margin:0;text-align:center;font-size:12px}")
        return "\n".join(rules)

    def _is_stranger(self, d) -> bool:
        return d is not None and self.threshold is not None and d > self.threshold

    def card_html(self, rec: dict[str, Any]) -> str:
        face = rec.get("face") or {}
        parts = []
        if rec["rel"] in self.css_class:
            cls = self.css_class[rec["rel"]] + (" stranger" if self._is_stranger(face.get("identity_distance")) else "")
            parts.append(f'<div class="facechip {cls}" role="img" aria-label="face"></div>')
        d, s = face.get("identity_distance"), face.get("sharpness")
        if d is not None:
            parts.append(f'<span class="chip">identity {d:.2f}</span>')
        if s is not None:
            parts.append(f'<span class="chip">face sharpness {s:.2f}</span>')
        if face.get("yaw"):
            parts.append(f'<span class="chip">{escape(face["yaw"])}</span>')
        if not face.get("box") and face.get("reason"):
            parts.append(f'<span class="chip">no face: {escape(face["reason"])}</span>')
        return "".join(parts)

    def strip(self) -> str:
        rows = [r for r in self.records if (r.get("face") or {}).get("identity_distance") is not None
                and r["rel"] in self.css_class]
        if len(rows) < 2:
            return ""
        rows.sort(key=lambda r: -r["face"]["identity_distance"])
        figs = []
        for r in rows:
            d = r["face"]["identity_distance"]
            cls = self.css_class[r["rel"]] + (" stranger" if self._is_stranger(d) else "")
            figs.append(f'<figure><div class="facechip {cls}" title="{escape(r["path"])}"></div>'
                        f'<figcaption>{d:.2f}</figcaption></figure>')
        thr = f" (faces beyond {self.threshold:g} are outlined: likely someone else)" if self.threshold else ""
        return ('<section id="identity"><h2>Identity</h2><p class="sub">Each face by its distance from the '
                f'set\'s identity, farthest first{escape(thr)}.</p><div class="strip">{"".join(figs)}</div></section>')
