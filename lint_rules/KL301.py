from curate.engine.rule import Rule


class KL301(Rule):
    """Image shows no usable person.

    Why: every photo in a character dataset teaches the trigger word; a photo where pose
    detection finds nobody (an object, scenery, a person too occluded to see) binds the
    trigger to something that is not the character.

    Example: `img_04.jpg` is a photo of the character's car.

    Use instead: remove the photo from the training folder, or replace it with one of the person.

    Fix safety: no fix; klint never deletes images.

    Options: none.
    """

    code = "KL301"
    name = "subject.none"
    groups = ("all", "subject")
    severity = "error"
    needs = ("framing",)

    def check(self, ctx, opts):
        for item in ctx.dataset.images:
            fr = ctx.result("framing", item)
            if fr is None or fr.get("framing") != "none":
                continue  # unreadable images are the image rules' business
            if fr.get("framing_reason") == "tiny":
                continue  # a person, only too small: subject.small reports it
            if fr.get("people", 0) == 0:
                msg = "no person found in the image"
            else:
                msg = "a person is detected but too little of the body is visible to use"
            yield self.diag(ctx, item.rel_image, msg, value=fr.get("people", 0))
