from curate.engine.rule import Rule


class KL702(Rule):
    """The set holds two (or more) people in similar numbers under one trigger.

    Why: a character LoRA binds one identity to the trigger. With two people in similar numbers
    neither wins: the trigger learns a blend of both faces, and no single photo looks wrong
    enough for dataset.identity-outlier to single it out.

    How: the subject faces' dlib embeddings are grouped by average linkage at the same-person
    threshold of dataset.identity-outlier; two groups that each hold at least `min-share` of the
    faces (and at least 2) are two people.

    Example: 6 photos of Jane and 5 of her sister, all captioned `jane_doe`.

    Use instead: split the folder into one dataset per person, each with its own trigger.

    Fix safety: no fix; klint never moves or deletes images.

    Options: `min-share` (share of the faces the second person needs, default 0.25),
    `min-faces` (faces needed to judge, default 4). The distance threshold is
    dataset.identity-outlier's `max-distance`.
    """

    code = "KL702"
    name = "dataset.identity-split"
    groups = ("all", "dataset", "identity")
    severity = "error"
    needs = ("face",)
    options = {"min-share": 0.25, "min-faces": 4}

    def check(self, ctx, opts):
        from curate.analysis.identity import dataset_identity

        ident = dataset_identity(ctx)
        if ident["n"] < int(opts["min-faces"]) or not ident["split"]:
            return
        people = [g for g in ident["people"] if len(g) >= 2]
        parts = []
        for k, group in enumerate(people, 1):
            names = ", ".join(ctx.dataset.display(r) for r in group[:6]) + (", ..." if len(group) > 6 else "")
            parts.append(f"person {k} ({len(group)}): {names}")
        yield self.diag(ctx, "", f"{len(people)} different people in similar numbers share one trigger: "
                        + "; ".join(parts) + "; keep one person per dataset", value=len(people),
                        related=[r for g in people for r in g])
