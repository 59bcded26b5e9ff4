from curate.engine.rule import Rule


class KL305(Rule):
    """Subject's face is blurred (motion, focus, heavy compression) even where the photo is sharp.

    Why: the face is what an identity LoRA learns. A sharp body under a smeared face passes
    image.blur, which takes the sharpest part of the image, yet teaches the trigger a soft face:
    generated faces come out waxy and lose skin and eye detail.

    How: the subject's face is aligned by its 5 landmarks onto a 64 px chip (eyes and mouth at
    fixed places, so the scores do not depend on the photo's size). Two scores: the chip's
    contrast-normalised Laplacian energy (focus blur, heavy compression) and the weakest /
    strongest second-difference energy over four directions (image.motion-blur's measure on the
    face alone): a moving head smears the face along one direction, which keeps edges across
    the streak (so the Laplacian can stay high) but flattens detail along it. Faces with fewer
    than 56 real pixels are not scored (an upscaled small face always looks soft;
    subject.small speaks for them).

    Calibration (`python benchmarks/face_blur_calibration.py --limit 80`, only the face box of
    shared photos blurred; options chosen on the even-indexed half, the odd half held out):
    sharp originals score >= 0.47 sharpness and >= 0.097 ratio on both halves; horizontal
    motion over 8 % of the face height gives ratios of 0.01-0.16 (median 0.025). Vertical and
    diagonal smears stay nearer the originals' range and are caught less often (see README).

    Example: a sharp full-body street photo in which the person turned their head mid-shot.

    Use instead: a photo where the face itself is in focus; drop frame grabs with a moving head.

    Fix safety: no fix.

    Options: `threshold` (face sharpness below which the face is blurred, default 0.42);
    `max_ratio` (direction ratio below which the face is motion-blurred, default 0.08).
    """

    code = "KL305"
    name = "subject.face-blur"
    groups = ("all", "subject")
    severity = "warning"
    needs = ("face",)
    options = {"threshold": 0.42, "max_ratio": 0.08}

    def check(self, ctx, opts):
        from curate.analysis.face import subject_face

        thr = float(opts["threshold"])
        for item in ctx.dataset.images:
            face = subject_face(ctx, item)
            s = (face or {}).get("sharpness")
            why = None if s is None else face_blurred(s, face.get("direction_ratio"), opts)
            if why is not None:
                msg, value, limit = why
                yield self.diag(ctx, item.rel_image, f"subject's face is blurred: {msg} on the aligned face",
                                value=round(value, 3), threshold=limit)


def face_blurred(sharpness: float, ratio: float | None, opts) -> tuple[str, float, float] | None:
    """(message, value, threshold) when a face with these chip scores is blurred, else None.

    One place for the decision, shared with benchmarks/face_blur_calibration.py.
    """
    thr, iso = float(opts["threshold"]), float(opts["max_ratio"])
    if sharpness < thr:
        return f"sharpness {sharpness:.2f} (needs {thr:g}+)", sharpness, thr
    if ratio is not None and ratio < iso:
        # heavy JPEG on a small face can also strip one direction's detail: the message says both
        return (f"detail smeared along one direction, as motion blur or heavy compression leave it "
                f"(ratio {ratio:.3f} < {iso:g}, sharpness {sharpness:.2f})"), ratio, iso
    return None
