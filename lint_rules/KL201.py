from curate.analysis.imagestats import readable_images
from curate.engine.rule import Rule


class KL201(Rule):
    """Image is an exact duplicate of another (same pixels).

    Why: a copy doubles that photo's weight in every epoch, so the LoRA overfits its pose,
    clothes and lighting. Copies usually differ only in name or metadata, so file hashes miss
    them; klint hashes the decoded pixels.

    Example: `img_03.jpg` and `export/img_03 (1).jpg` with different EXIF but the same image.

    Use instead: keep one; if you want a photo to count more, raise its repeats instead.

    Fix safety: no fix; klint never deletes images. Severity: error (a copy is never
    intended). The first file by path is kept; every other copy gets one diagnostic naming
    it. Large JPEGs are hashed at their draft decode scale, so a JPEG and a lossless PNG of the
    same picture are reported by KL202 (distance 0) rather than here.

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
    """(kept rel, [copy rels]) for every pixel hash shared by more than one image."""
    groups: dict[str, list[str]] = {}
    for item, rec in readable_images(ctx):
        h = rec.get("pixel_hash")
        if h:
            groups.setdefault(h, []).append(item.rel_image)
    out = []
    for rels in groups.values():
        if len(rels) > 1:
            rels = sorted(rels)
            out.append((rels[0], rels[1:]))
    return sorted(out)
