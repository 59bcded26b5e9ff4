from curate.analysis.image import hamming
from curate.analysis.imagestats import readable_images
from curate.engine.rule import Rule


class KL201(Rule):
    """Image is an exact duplicate of another (same pixels).

    Why: a copy doubles that photo's weight in every epoch, so the LoRA overfits its pose,
    clothes and lighting. Copies usually differ only in name, metadata or file format, so file
    hashes miss them; klint hashes the decoded pixels.

    Example: `img_03.jpg` and `export/img_03 (1).jpg` with different EXIF but the same image;
    `img_03.png`, a lossless PNG re-save of `img_03.jpg`.

    Use instead: keep one; if you want a photo to count more, raise its repeats instead.

    Fix safety: no fix; klint never deletes images. Severity: error (a copy is never
    intended). Large JPEGs are analysed at their draft decode scale; when two files share
    size and pHash and dHash within 2 bits but not that draft-scale pixel hash (a JPEG and its PNG re-save),
    both are decoded at full resolution and compared by pixel hash, so "exact" always means
    every pixel is equal, never a perceptual distance of 0. The first file by path is kept;
    every other copy gets one diagnostic naming it.

    Options: none.
    """

    code = "KL201"
    name = "image.duplicate"
    groups = ("all", "image", "duplicates")
    severity = "error"
    needs = ("image",)

    def check(self, ctx, opts):
        for kept, copies in exact_groups(ctx):
            for rel in copies:
                yield self.diag(ctx, rel, f"exact duplicate of {ctx.dataset.display(kept)} (same pixels); "
                                f"keep one", related=[kept])


def exact_groups(ctx) -> list[tuple[str, list[str]]]:
    """(kept rel, [copy rels]) for every set of images with identical pixels."""
    images = list(readable_images(ctx))
    keys = {item.rel_image: rec.get("pixel_hash") for item, rec in images}
    # files that look identical at draft scale but hash differently: only a full decode can tell
    # (a draft decode and a full one differ by resampling, so their hashes may differ by a bit)
    look: dict[tuple, list] = {}
    for item, rec in images:
        if rec.get("phash") and rec.get("dhash"):
            look.setdefault((rec["width"], rec["height"]), []).append((item, rec))
    suspects: dict[str, object] = {}
    for members in look.values():
        for i, (a, ra) in enumerate(members):
            for b, rb in members[i + 1:]:
                if (ra.get("pixel_hash") != rb.get("pixel_hash") and hamming(ra["phash"], rb["phash"]) <= 2
                        and hamming(ra["dhash"], rb["dhash"]) <= 2):
                    suspects[a.rel_image], suspects[b.rel_image] = a.image, b.image
    if suspects:
        from curate.analysis.image import full_pixel_hash

        for rel, path in suspects.items():
            full = full_pixel_hash(path)
            if full:
                keys[rel] = "full:" + full
    groups: dict[str, list[str]] = {}
    for rel, key in keys.items():
        if key:
            groups.setdefault(key, []).append(rel)
    out = []
    for rels in groups.values():
        if len(rels) > 1:
            rels = sorted(rels)
            out.append((rels[0], rels[1:]))
    return sorted(out)
