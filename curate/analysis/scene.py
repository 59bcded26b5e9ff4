"""The "scene" analysis: lighting and background descriptors (numpy only, no model).

Lighting: brightness percentiles -> key (low/normal/high), L* contrast, key-light side from
the subject's face region (left/front/right), colour temperature by McCamy's CCT of the
grey-world mean of near-neutral pixels (warm/neutral/cool). `bucket` joins key/side/temp.

Background: people are masked out with their dilated pose boxes; the rest is described by a
square-rooted HSV histogram (16x4x4, unit length, so dot products are Bhattacharyya
coefficients) plus edge density. Clustering happens dataset-wide in `curate.analysis.variety`.
"""

from __future__ import annotations

from typing import Any

from curate.analysis.base import Analysis

THUMB = 160  # long side; descriptors are colour statistics, detail does not matter
H_BINS, S_BINS, V_BINS = 16, 4, 4

KEY_LOW, KEY_HIGH = 0.30, 0.64  # median brightness cuts
SIDE_CUT = 0.12  # (left - right) / (left + right) on the face region
WARM_K, COOL_K = 4600.0, 7800.0  # sRGB white is 6500 K


def _thumb(path):
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        w0, h0 = im.size
        if im.format == "JPEG":
            f = THUMB / max(w0, h0)
            im.draft("RGB", (max(1, int(w0 * f)), max(1, int(h0 * f))))
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((THUMB, THUMB))
        return np.asarray(im, dtype=np.float32) / 255.0


def _srgb_to_linear(c):
    import numpy as np

    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def mccamy_cct(rgb_lin) -> float | None:
    """Correlated colour temperature (K) of a linear-sRGB colour, McCamy's cubic."""
    r, g, b = (float(v) for v in rgb_lin)
    X = 0.4124 * r + 0.3576 * g + 0.1805 * b
    Y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    Z = 0.0193 * r + 0.1192 * g + 0.9505 * b
    s = X + Y + Z
    if s <= 1e-6:
        return None
    x, y = X / s, Y / s
    if abs(0.1858 - y) < 1e-6:
        return None
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449 * n**3 + 3525 * n**2 + 6823.3 * n + 5520.33
    return float(min(max(cct, 1000.0), 25000.0))


def _lightness(rgb_lin):
    """CIE L* (0..100) from linear sRGB."""
    import numpy as np

    Y = rgb_lin[..., 0] * 0.2126 + rgb_lin[..., 1] * 0.7152 + rgb_lin[..., 2] * 0.0722
    return np.where(Y > 0.008856, 116 * np.cbrt(Y) - 16, 903.3 * Y)


def _face_region(pose: dict | None, w: int, h: int, sx: float, sy: float):
    """Thumbnail box around the primary subject's head (or upper body, or the centre)."""
    persons = (pose or {}).get("persons") or []
    if persons:
        p = persons[0]
        kp = p.get("kp") or []
        head = [(x * sx, y * sy) for x, y, c in kp[:5] if c >= 0.5] if kp else []
        if len(head) >= 2:
            xs, ys = [q[0] for q in head], [q[1] for q in head]
            span = max(max(xs) - min(xs), max(ys) - min(ys), 4.0)
            cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
            r = 1.2 * span
            return cx - r, cy - r, cx + r, cy + r
        x0, y0, x1, y1 = p["box"]
        return x0 * sx, y0 * sy, x1 * sx, y0 * sy + 0.4 * (y1 - y0) * sy
    return 0.25 * w, 0.15 * h, 0.75 * w, 0.75 * h


def describe_scene(rgb, pose: dict | None) -> dict[str, Any]:
    import numpy as np

    h, w = rgb.shape[:2]
    full_w = (pose or {}).get("width") or w
    full_h = (pose or {}).get("height") or h
    sx, sy = w / full_w, h / full_h
    lin = _srgb_to_linear(rgb)
    lum = np.sqrt(0.241 * rgb[..., 0] ** 2 + 0.691 * rgb[..., 1] ** 2 + 0.068 * rgb[..., 2] ** 2)
    p5, p50, p95 = (float(v) for v in np.percentile(lum, [5, 50, 95]))
    L = _lightness(lin)
    l5, l95 = np.percentile(L, [5, 95])
    contrast = float(l95 - l5)
    key = "low" if p50 < KEY_LOW else "high" if p50 > KEY_HIGH else "normal"

    # side: compare the two halves of the face region (image left = subject's right)
    x0, y0, x1, y1 = _face_region(pose, w, h, sx, sy)
    x0, x1 = int(max(0, x0)), int(min(w, x1))
    y0, y1 = int(max(0, y0)), int(min(h, y1))
    balance = 0.0
    if x1 - x0 >= 4 and y1 - y0 >= 2:
        region = L[y0:y1, x0:x1]
        mid = region.shape[1] // 2
        left, right = float(region[:, :mid].mean()), float(region[:, mid:].mean())
        if left + right > 1e-3:
            balance = (left - right) / (left + right)
    side = "left" if balance > SIDE_CUT else "right" if balance < -SIDE_CUT else "front"

    # colour temperature from near-neutral, well-exposed pixels (grey world on what should be grey)
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    mask = (sat < 0.35) & (mx > 0.12) & (mx < 0.97)
    pix = lin[mask] if mask.sum() >= 0.02 * mask.size else lin.reshape(-1, 3)
    cct = mccamy_cct(pix.mean(axis=0))
    temp = "neutral" if cct is None else "warm" if cct < WARM_K else "cool" if cct > COOL_K else "neutral"
    lighting = {
        "brightness": [round(p5, 3), round(p50, 3), round(p95, 3)],
        "contrast": round(contrast, 1),
        "key": key,
        "side": side,
        "balance": round(balance, 3),
        "cct": None if cct is None else round(cct),
        "temperature": temp,
        "bucket": f"{key}/{side}/{temp}",
    }

    # background: everything outside the dilated person boxes
    bg = np.ones((h, w), dtype=bool)
    for p in (pose or {}).get("persons") or []:
        if p["conf"] < 0.35:
            continue
        bx0, by0, bx1, by1 = p["box"]
        dx, dy = 0.1 * (bx1 - bx0), 0.1 * (by1 - by0)
        bg[int(max(0, (by0 - dy) * sy)):int(min(h, (by1 + dy) * sy + 1)),
           int(max(0, (bx0 - dx) * sx)):int(min(w, (bx1 + dx) * sx + 1))] = False
    frac = float(bg.mean())
    if frac < 0.08:
        # subject fills the frame: the border strip is the best view of what is behind
        bg[:] = False
        m = max(2, int(0.06 * min(h, w)))
        bg[:m, :] = bg[:, :m] = bg[:, -m:] = True
    hsv = _hsv(rgb)
    sel = hsv[bg]
    hi = np.minimum((sel[:, 0] * H_BINS).astype(int), H_BINS - 1)
    si = np.minimum((sel[:, 1] * S_BINS).astype(int), S_BINS - 1)
    vi = np.minimum((sel[:, 2] * V_BINS).astype(int), V_BINS - 1)
    hist = np.bincount((hi * S_BINS + si) * V_BINS + vi, minlength=H_BINS * S_BINS * V_BINS).astype(np.float64)
    hist /= max(hist.sum(), 1.0)
    gray = rgb.mean(axis=2)
    gx = np.abs(np.diff(gray, axis=1))
    gy = np.abs(np.diff(gray, axis=0))
    edges = np.zeros_like(gray)
    edges[:, 1:] += gx
    edges[1:, :] += gy
    edge_density = float((edges[bg] > 0.08).mean()) if bg.any() else 0.0
    background = {
        "hist": [round(float(v), 4) for v in np.sqrt(hist)],
        "edge_density": round(edge_density, 4),
        "plain": edge_density < 0.04,
        "fraction": round(frac, 3),
        "mean_rgb": [round(float(v), 3) for v in rgb[bg].mean(axis=0)] if bg.any() else None,
    }
    return {"lighting": lighting, "background": background}


def _hsv(rgb):
    import numpy as np

    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    d = mx - mn
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(d > 1e-6, d, 1.0)
    hue = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    hue = np.where(d > 1e-6, hue, 0.0)
    sat = np.where(mx > 1e-6, d / np.maximum(mx, 1e-6), 0.0)
    return np.stack([hue % 1.0, sat, mx], axis=-1)


class SceneAnalysis(Analysis):
    name = "scene"
    version = "1"
    scope = "image"
    needs = ("pose",)
    label = "Describing lighting and backgrounds"

    def fingerprint(self, config) -> str:
        from curate.analysis.pose import PoseAnalysis

        return PoseAnalysis().fingerprint(config)

    def run_batch(self, items, ctx, advance):
        poses = ctx.results.get("pose", {})
        out = []
        for item in items:
            try:
                rgb = _thumb(item.image)
            except Exception:
                out.append(None)
                advance(1)
                continue
            out.append(describe_scene(rgb, poses.get(item.rel_image)))
            advance(1)
        return out
