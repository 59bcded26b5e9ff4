"""`face` analysis: the largest face's recognition embedding per image, when a face model is set.

Configured by `rule-options."dataset.identity-outlier".face-model` (or a top-level `face-model`).
With none configured it returns nothing and imports nothing; onnxruntime/insightface load only
on a cache miss with a model configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.analysis.base import Analysis

RULE_KEYS = ("dataset.identity-outlier", "KL701")


def face_model_setting(config) -> str | None:
    for key in RULE_KEYS:
        value = (config.rule_options.get(key) or {}).get("face-model")
        if value:
            break
    else:
        value = config.extra.get("face-model")
    if not value:
        return None
    p = Path(str(value)).expanduser()
    if not p.is_absolute() and config.source is not None:
        p = Path(config.source).parent / p
    return str(p)


class FaceAnalysis(Analysis):
    name = "face"
    version = "1"
    scope = "image"
    label = "faces"

    def fingerprint(self, config) -> str:
        return face_model_setting(config) or ""

    def run_batch(self, items, ctx, advance):
        setting = face_model_setting(ctx.config)
        if setting is None:
            return [None] * len(items)  # nothing to compute, nothing cached
        from curate.errors import KlintError

        from .faces import load_face_model, load_image_bgr

        model = load_face_model(setting)
        out: list[dict[str, Any] | None] = []
        for item in items:
            try:
                faces = model.faces(load_image_bgr(item.image))
            except KlintError:
                out.append(None)  # unreadable images are image.* rules' business
            else:
                best = max(faces, key=lambda f: f.area) if faces else None
                out.append({"faces": len(faces),
                            "embedding": None if best is None else [round(float(v), 5) for v in best.normed],
                            "det_score": None if best is None else round(best.score, 4)})
            advance(1)
        return out
