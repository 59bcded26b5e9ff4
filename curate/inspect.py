"""Per-image records of what the vision analyses found: the public `klint inspect` contract.

Keys (stable): path, rel, width, height, framing, framing_confidence, people, repeats,
subject_box, subject_fraction, face_visible, head_height_px, keypoints, lighting, background,
caption, replaced_by (the clean crop that trains in its place, else null), text (burned-in text: judged
regions with box/text/conf/where/kind/severity, coverage, worst), face (box, height_px, sharpness, yaw,
identity_distance, reason); extras: face_reason, extent_visible, extent_frame, others, error, head_px_train
(head height at the training resolution), framing_reason (why `none`: no person, too little body, tiny).
"""

from __future__ import annotations

from typing import Any

VISION = ("image", "pose", "face", "framing", "scene", "ocr")


def ensure_vision(result, use_cache: bool = True) -> None:
    """Run the vision analyses on a lint result whose rules did not need them."""
    ctx = result.context
    missing = {n for n in VISION if n not in ctx.results}
    if not missing:
        return
    from curate.analysis.cache import Cache
    from curate.engine.runner import run_analyses

    cache = Cache(ctx.dataset.root, enabled=use_cache)
    run_analyses(ctx, missing, cache)
    cache.save({it.rel_image for it in ctx.dataset.items if it.image is not None})


def inspect_records(result, *, use_cache: bool = True) -> list[dict[str, Any]]:
    """One record per image, in dataset order."""
    from curate.analysis.ocr import text_record
    from curate.analysis.variety import dataset_variety

    ensure_vision(result, use_cache=use_cache)
    ctx = result.context
    ds = ctx.dataset
    variety = dataset_variety(ctx)
    faces = face_records(ctx)
    repeats = ctx.config.repeats or {}
    from curate.dataset.derived import replacements

    replaced = replacements(ds.root)
    records = []
    for item in ds.images:
        rel = item.rel_image
        fr = ctx.result("framing", item) or {}
        pose = ctx.result("pose", item) or {}
        scene = ctx.result("scene", item) or {}
        img = ctx.result("image", item) or {}
        rec: dict[str, Any] = {
            "path": ds.display(rel),
            "rel": rel,
            "width": pose.get("width") or img.get("width"),
            "height": pose.get("height") or img.get("height"),
            "framing": fr.get("framing", "none"),
            "framing_confidence": fr.get("framing_confidence", 0.0),
            "people": fr.get("people", 0),
            "repeats": int(repeats.get(rel, 1)),
            "subject_box": fr.get("subject_box"),
            "subject_fraction": fr.get("subject_fraction", 0.0),
            "face_visible": fr.get("face_visible"),
            "face_reason": fr.get("face_reason"),
            "head_height_px": fr.get("head_height_px"),
            "head_px_train": fr.get("head_px_train"),
            "framing_reason": fr.get("framing_reason"),
            "keypoints": fr.get("keypoints"),
            "extent_visible": fr.get("extent_visible"),
            "extent_frame": fr.get("extent_frame"),
            "others": fr.get("others", []),
            "lighting": scene.get("lighting"),
            "background": None,
            "caption": item.caption_text,
            "face": faces.get(rel),
        }
        if scene.get("background"):
            bg = {k: v for k, v in scene["background"].items() if k != "hist"}
            bg["cluster"] = variety["cluster_of"].get(rel)
            rec["background"] = bg
        rec["text"] = text_record(ctx, item)
        rec["replaced_by"] = replaced.get(rel)  # a clean crop that trains in its place (not counted)
        if not pose:
            rec["error"] = img.get("error") or "image could not be analysed"
        records.append(rec)
    return records


def summary(records: list[dict[str, Any]], variety: dict[str, Any] | None = None, config=None) -> dict[str, Any]:
    """Dataset-level figures for the table footer (composition and variety
    from the same functions as lint and the report)."""
    from curate.composition import composition, for_dataset

    pairs = [(r.get("framing"), r.get("repeats", 1)) for r in records if not r.get("replaced_by")]
    comp = for_dataset(config, pairs) if config is not None else composition(pairs)
    out: dict[str, Any] = {"images": len(records), "framing": dict(comp.counts),
                           "framing_with_repeats": dict(comp.weights), "composition": comp}
    if variety:
        from curate.analysis.variety import effective_number

        li, bg = variety["lighting"], variety["background"]
        out["lighting"] = {"distinct": li["distinct"], "largest_share": li["largest_share"],
                           "effective": effective_number(list(li["buckets"].values())), "buckets": li["buckets"]}
        out["background"] = {"clusters": bg["clusters"], "largest_share": bg["largest_share"],
                             "effective": effective_number(bg["sizes"])}
    return out


def face_records(ctx) -> dict[str, dict[str, Any]]:
    """rel -> the `face` field of an inspect record (also what the report shows)."""
    from curate.analysis.face import subject_face, train_scale, yaw_class
    from curate.analysis.face_framing import face_head_px
    from curate.analysis.identity import dataset_identity

    ident = dataset_identity(ctx)
    out = {}
    for item in ctx.dataset.images:
        res = ctx.result("face", item)
        if not isinstance(res, dict):
            continue
        pose = ctx.result("pose", item) or {}
        face = subject_face(ctx, item)
        rec: dict[str, Any] = {"box": None, "height_px": None, "head_px": None, "sharpness": None,
                               "yaw": yaw_class(ctx, item), "identity_distance": None, "reason": res.get("reason"),
                               "faces": len(res.get("faces") or [])}
        if face:
            scale = train_scale(ctx.config.resolution, pose["width"], pose["height"]) if pose else 1.0
            rec.update(box=face["box"], height_px=round((face["box"][3] - face["box"][1]) * scale, 1),
                       head_px=round(face_head_px(face) * scale, 1), sharpness=face.get("sharpness"),
                       exposure=face.get("exposure"), yaw_offset=face.get("yaw_offset"),
                       identity_distance=ident["distance"].get(item.rel_image))
        out[item.rel_image] = rec
    return out
