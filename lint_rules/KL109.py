from pathlib import Path

from curate.analysis.ocr import SEVERITY_RANK, item_regions
from curate.dataset.derived import replacements
from curate.engine.diagnostic import Fix, WriteCrop, WriteText
from curate.engine.rule import Rule

_KIND = {"watermark": "watermark", "tiled": "tiled watermark", "date-stamp": "date stamp", "subtitle": "subtitle",
         "overlay": "overlay text", "scene": "text in the scene", "clothing": "print on the subject's clothes"}


def _show(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return f'"{text[:limit]}{"…" if len(text) > limit else ""}"' if text else "unreadable text"


class KL109(Rule):
    """Photo carries burned-in text: a watermark, signature, date stamp, subtitle or logo.

    Why: a LoRA learns whatever repeats across its photos. A stock watermark, a photographer's
    signature in a corner or a camera date stamp comes back, smeared, in every generated image;
    it is learned fastest when it sits in the same place in several photos.

    Example: a press photo with "Getty Images" in the bottom-left corner; a video frame with a
    subtitle line; an orange "12/08/2016" stamp from a film camera.

    Use instead: the clean original, a crop without the mark (`klint fix --unsafe-fixes` writes one
    to `_klint/derived/` when the mark sits at the frame's edge and the crop keeps the subject at
    the training resolution), or inpaint the mark in an image editor.

    Fix safety: unsafe. The crop is a new file under `_klint/derived/` with a copy of the caption
    and a `text-crop` manifest entry; from then on it replaces its source in training and in this
    rule, and the source file itself is never touched (delete the entry to undo).

    How it decides (PP-OCR text detection + recognition from the rapidocr-onnxruntime wheel):
    - error: a watermark word, URL, handle or © anywhere (shutterstock, getty images, "photo by",
      www., .com, @name, ...), or one string tiled three or more times across the frame;
    - warning: a date stamp or timestamp; any readable text in a corner or border band (outer
      16 % of a side); a wide line in the bottom band (subtitle);
    - info: text inside the picture (a shop sign, a book cover), or a print on the subject's own
      clothes (inside the subject's box, away from the border) — part of the scene, not an overlay.
    Text under `min_height` of the frame high is ignored: at 1024 px it is a few pixels of texture.
    The same text or the same corner mark in several photos is reported once more, as an error,
    by dataset.repeated-text (KL203).

    Options: `min_height` (share of the frame height below which text is ignored, default 0.012);
    `extra_words` (strings that count as watermarks here, e.g. your photographer's name);
    `scene_text` ("info" to list text in the scene, "ignore" to stay silent about it; default "info").
    """

    code = "KL109"
    name = "image.text-overlay"
    groups = ("all", "image")
    severity = "warning"
    fix_availability = "sometimes"
    needs = ("ocr", "framing")
    options = {"min_height": 0.012, "extra_words": [], "scene_text": "info"}

    def check(self, ctx, opts):
        from curate.fix.clean_crop import clean_crop_box, clean_rel

        replaced = replacements(ctx.dataset.root)
        quiet_scene = str(opts.get("scene_text", "info")).lower() == "ignore"
        for item in ctx.dataset.images:
            if item.rel_image in replaced:
                continue  # a clean crop stands in for it
            regions = item_regions(ctx, item, opts)
            if quiet_scene:
                regions = [r for r in regions if r.severity != "info"]
            if not regions:
                continue
            regions.sort(key=lambda r: (SEVERITY_RANK[r.severity], -r.area))
            worst = regions[0].severity
            shown = [r for r in regions if r.severity == worst][:3]
            parts = [f"{_show(r.text)} ({_KIND[r.kind]}) in the {r.where}" if r.zone != "centre"
                     else f"{_show(r.text)} ({_KIND[r.kind]})" for r in shown]
            more = len([r for r in regions if r.severity == worst]) - len(shown)
            cover = sum(r.area for r in regions)
            msg = "; ".join(parts) + (f" and {more} more" if more > 0 else "")
            if worst == "info":
                yield self.diag(ctx, item.rel_image, f"text in the photo: {msg}; fine if it belongs to the scene",
                                severity="info", value=round(cover, 4))
                continue
            ocr = ctx.result("ocr", item) or {}
            fr = ctx.result("framing", item) or {}
            plan = clean_crop_box(ocr.get("width") or 0, ocr.get("height") or 0, regions, fr.get("subject_box"),
                                  int(ctx.config.resolution))
            fix = None
            if plan.box is not None:
                crop_rel = clean_rel(item.rel_image)
                root = Path(ctx.dataset.root)
                edits = [WriteCrop(str(root / crop_rel), item.rel_image, plan.box, f"text overlay removed: {plan.reason}")]
                if item.caption_text is not None:
                    edits.append(WriteText(str(root / (crop_rel[: -len(".png")] + ".txt")), item.caption_text))
                x0, y0, x1, y1 = plan.box
                fix = Fix(f"write a clean {x1 - x0}x{y1 - y0} crop to {crop_rel} ({plan.reason}); it replaces this "
                          f"photo in training", tuple(edits), applicability="unsafe")
                advice = "`klint fix --unsafe-fixes` can crop it away"
            else:
                advice = plan.reason
            yield self.diag(ctx, item.rel_image, f"{msg}, {100 * cover:.1f}% of the frame: a LoRA learns "
                            f"overlays that repeat; {advice}", severity=worst, fix=fix, value=round(cover, 4))
