from curate.engine.rule import Rule


class KL305(Rule):
    """Subject's face is blurred (motion, focus, heavy compression) even where the photo is sharp.

    Why: the face is what an identity LoRA learns. A sharp body under a smeared face passes
    image.blur, which takes the sharpest part of the image, yet teaches the trigger a soft face:
    generated faces come out waxy and lose skin and eye detail.

    How: the subject's face is aligned by its 5 landmarks onto a 64 px chip (eyes and mouth at
    fixed places, so the score does not depend on the photo's size) and scored by its
    contrast-normalised Laplacian energy. Faces with fewer than 56 real pixels are not scored
    (an upscaled small face always looks soft; subject.small speaks for them). Calibration
    (`python benchmarks/face_blur_calibration.py`, see README): sharp faces of the shared
    photos score well above the threshold; copies with only the face blurred fall under it.

    Example: a sharp full-body street photo in which the person turned their head mid-shot.

    Use instead: a photo where the face itself is in focus; drop frame grabs with a moving head.

    Fix safety: no fix.

    Options: `threshold` (face sharpness below which the face is blurred, default 0.42).
    """

    code = "KL305"
    name = "subject.face-blur"
    groups = ("all", "subject")
    severity = "warning"
    needs = ("face",)
    options = {"threshold": 0.42}

    def check(self, ctx, opts):
        from curate.analysis.face import subject_face

        thr = float(opts["threshold"])
        for item in ctx.dataset.images:
            face = subject_face(ctx, item)
            s = (face or {}).get("sharpness")
            if s is not None and s < thr:
                yield self.diag(ctx, item.rel_image, f"subject's face is blurred: sharpness {s:.2f} "
                                f"(needs {thr:g}+) on the aligned face", value=round(s, 3), threshold=thr)
