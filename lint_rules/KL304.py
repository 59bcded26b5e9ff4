from curate.engine.rule import Rule


class KL304(Rule):
    """Subject's face is not visible: turned away, covered, or cut by the frame.

    Why: identity lives in the face; a photo of the back of the head, a face behind a phone or
    a crop that cuts the face off teaches the trigger the clothes and body but not who it is.
    A few such photos are fine for body variety; many dilute the identity.

    How: two witnesses. Pose keypoints say where the head is and whether eyes, nose and ears
    show; the face analysis then scans that head. A face the detector finds on the subject's head
    is visible whatever the keypoints said; a head where pose saw no eyes or nose and the
    detector finds no face either is reported with pose's reason. A clear frontal head in pose
    (nose and eyes sure, both ears seen, at least 96 px high) on which the detector finds no face
    is reported too: the face is covered (a mask, a hand) or the subject is person-like but has no
    living face (a doll, figurine or mannequin). A statue or bust with a carved face is not
    caught: the detector finds a face on it, and nothing here tells stone from skin.

    Example: a mirror selfie with the phone in front of the face.

    Use instead: photos where the face is visible (profile is fine); keep turned-away shots few.

    Fix safety: no fix.

    Options: none.
    """

    code = "KL304"
    name = "subject.face-hidden"
    groups = ("all", "subject")
    severity = "warning"
    needs = ("framing", "face")

    def check(self, ctx, opts):
        from curate.analysis.face import subject_face
        from curate.analysis.face_framing import faceless_head

        for item in ctx.dataset.images:
            fr = ctx.result("framing", item)
            if faceless_head(fr, ctx.result("face", item)):
                yield self.diag(ctx, item.rel_image, "pose sees a head but no face is found on it: covered (mask, "
                                "hand) or not a living face (doll, figurine)?", value="no face found")
                continue
            if not fr or fr.get("framing") == "none" or fr.get("face_visible") is not False:
                continue
            if subject_face(ctx, item):
                continue  # the face detector found it: pose's keypoints were unsure
            reason = fr.get("face_reason") or "not visible"
            yield self.diag(ctx, item.rel_image, f"subject's face is {reason}", value=reason)
