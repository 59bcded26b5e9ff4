from curate.engine.rule import Rule


class KL101(Rule):
    """Image file cannot be read, or is not what its extension says.

    Why: a corrupt, truncated or empty file crashes some trainers mid-run and is silently
    skipped by others; a Git LFS pointer is a 130-byte text file, not your photo. A PNG named
    `.jpg` (or WebP named `.png`) opens in PIL, but tools that pick a decoder by extension
    (and some caching layers) choke on it.

    Example: `img_04.jpg` cut off during a copy; `img_05.png` that is really WebP data;
    `img_06.jpg` that reads `version https://git-lfs.github.com/spec/v1`.

    Use instead: re-export or re-download the image; rename it to its real format's
    extension; run `git lfs pull` for LFS pointers.

    Fix safety: no fix; klint never rewrites or renames images. Severity: error when the
    image cannot be decoded; warning for a wrong extension or an animated file (trainers use
    the first frame). Every other image rule skips unreadable images.

    Options: none.
    """

    code = "KL101"
    name = "image.unreadable"
    groups = ("all", "image")
    severity = "error"
    needs = ("image",)

    def check(self, ctx, opts):
        lfs = set(ctx.dataset.lfs_pointers)
        for rel in sorted(lfs):
            yield self.diag(ctx, rel, "Git LFS pointer, not the image: run `git lfs pull` before training")
        for item in ctx.dataset.images:
            rel = item.rel_image
            rec = ctx.result("image", item)
            if rel in lfs or rec is None:
                continue
            ext = item.image.suffix
            real = rec.get("format") or rec.get("sniffed_format")
            if not rec.get("readable"):
                msg = rec.get("error") or "cannot be decoded"
                if real and rec.get("ext_format") and real != rec["ext_format"]:
                    msg = f"{real} data named {ext}; {msg}"
                yield self.diag(ctx, rel, msg)
                continue
            if rec.get("ext_format") and real and real != rec["ext_format"]:
                yield self.diag(ctx, rel, f"{real} data named {ext}: rename it to {_ext_for(real)} (tools that pick "
                                f"the decoder by extension fail on it)", severity="warning",
                                value=real, threshold=rec["ext_format"])
            if int(rec.get("frames") or 1) > 1:
                yield self.diag(ctx, rel, f"animated image ({rec['frames']} frames): trainers use only the first "
                                f"frame; export the frame you want as a still", severity="warning",
                                value=int(rec["frames"]))


def _ext_for(fmt: str) -> str:
    return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}.get(
        fmt, f".{fmt.lower()}")
