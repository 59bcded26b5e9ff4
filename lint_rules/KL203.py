from curate.analysis.ocr import item_regions, normalise_text
from curate.dataset.derived import replacements
from curate.engine.rule import Rule

SAME_PLACE_IOU = 0.5


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class KL203(Rule):
    """The same text, or a mark in the same place, appears in several photos.

    Why: the strongest sign of a watermark. What repeats across a dataset is what a LoRA
    learns best, so a signature or logo that sits in the same corner of several photos comes
    back in nearly every generated image, even when each photo's own mark looks faint.

    Example: five photos from one photographer, each signed "A. Kowalski" bottom right.

    Use instead: clean copies of those photos, or crops without the mark (image.text-overlay's
    fix writes them when the mark sits at the frame's edge).

    Fix safety: no fix here; fix each photo (KL109).

    How it decides: overlay-like text regions (image.text-overlay warnings and errors, not
    text in the scene or on the subject's clothes) are compared across photos by their
    normalised text (letters and digits) and by position (boxes in frame-relative coordinates
    overlapping by intersection-over-union >= 0.5 in the same corner or band).

    Options: `min_photos` (how many photos must share it, default 2).
    """

    code = "KL203"
    name = "dataset.repeated-text"
    groups = ("all", "dataset", "image")
    severity = "error"
    needs = ("ocr", "framing")
    options = {"min_photos": 2}

    def check(self, ctx, opts):
        need = max(2, int(opts["min_photos"]))
        replaced = replacements(ctx.dataset.root)
        marks = []  # (rel, normalised text, shown text, relative box, where)
        for item in ctx.dataset.images:
            if item.rel_image in replaced:
                continue
            ocr = ctx.result("ocr", item) or {}
            w, h = float(ocr.get("width") or 1), float(ocr.get("height") or 1)
            for r in item_regions(ctx, item):
                if r.severity == "info":
                    continue
                b = r.box
                marks.append((item.rel_image, normalise_text(r.text), r.text, (b[0] / w, b[1] / h, b[2] / w, b[3] / h),
                              r.where))
        groups: list[tuple[str, set[str]]] = []
        by_text: dict[str, set[str]] = {}
        rep_of: dict[str, str] = {}
        reps: list[str] = []  # OCR of one mark often drops an edge letter: "OWALSKI FOTO" is "KOWALSKI FOTO"
        for rel, key, _, _, _ in sorted(marks, key=lambda m: -len(m[1])):
            if len(key) < 3:
                continue
            rep = next((r for r in reps if key == r or (len(key) >= 5 and key in r)), None)
            if rep is None:
                reps.append(key)
                rep = key
            rep_of[key] = rep
            by_text.setdefault(rep, set()).add(rel)
        shown = {key: text for _, key, text, _, _ in marks}
        used: set[tuple[str, str]] = set()
        for key, rels in sorted(by_text.items(), key=lambda kv: -len(kv[1])):
            if len(rels) >= need:
                groups.append((f'the text "{" ".join(shown[key].split())[:40]}"', rels))
                used.update((r, key) for r in rels)
        # unread or differently read marks in the same place
        rest = [m for m in marks if (m[0], rep_of.get(m[1], m[1])) not in used]
        seen: set[int] = set()
        for i, a in enumerate(rest):
            if i in seen:
                continue
            rels = {a[0]}
            for j in range(i + 1, len(rest)):
                b = rest[j]
                if j not in seen and b[0] not in rels and b[4] == a[4] and _iou(a[3], b[3]) >= SAME_PLACE_IOU:
                    rels.add(b[0])
                    seen.add(j)
            if len(rels) >= need:
                groups.append((f"a text mark in the {a[4]}", rels))
        for what, rels in groups:
            names = sorted(rels)
            listed = ", ".join(ctx.dataset.display(r) for r in names[:5]) + (" ..." if len(names) > 5 else "")
            yield self.diag(ctx, "", f"{what} appears in {len(names)} photos ({listed}): a watermark the LoRA "
                            f"will learn; use clean copies or crop it away", value=len(names), threshold=need,
                            related=names)
