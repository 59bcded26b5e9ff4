from curate.engine.rule import Rule


class KL701(Rule):
    """Photo's face looks like a different person from the rest of the set.

    Why: one stranger (a friend in a group shot, a look-alike, a mislabelled file) pulls the learned
    identity towards an average of two people. A face-recognition embedding compares identities
    directly: photos of one person sit close together, a different person sits far away.

    Example: 14 photos of Jane and `img_09.jpg`, whose largest face is her sister.

    Use instead: remove or replace the photo, or crop it to the right person.

    Fix safety: no fix; klint never deletes images.

    Options: `face-model` (folder of an insightface pack such as buffalo_l or antelopev2; without it
    the rule is skipped with one info line), `min-similarity` (flag photos whose median cosine
    similarity to the other faces is below, default 0.3), `min-faces` (faces needed to judge, default 4).
    """

    code = "KL701"
    name = "dataset.identity-outlier"
    groups = ("all", "dataset", "identity")
    severity = "warning"
    needs = ("face",)
    options = {"face-model": None, "min-similarity": 0.3, "min-faces": 4}

    def check(self, ctx, opts):
        from plugins.pulid.analysis import face_model_setting

        if face_model_setting(ctx.config) is None:
            yield self.diag(ctx, "", "identity check skipped: no face recognition model configured; set "
                            '`[rule-options."dataset.identity-outlier"] face-model = "/path/to/buffalo_l"` '
                            'in klint.toml (needs `pip install -e ".[infer]"`)', severity="info")
            return
        embs = {}
        for item in ctx.dataset.images:
            res = ctx.result("face", item)
            if res and res.get("embedding"):
                embs[item.rel_image] = res["embedding"]
        if len(embs) < int(opts["min-faces"]):
            return
        import numpy as np

        rels = sorted(embs)
        m = np.asarray([embs[r] for r in rels], dtype=np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True) + 1e-12
        sims = m @ m.T
        threshold = float(opts["min-similarity"])
        for i, rel in enumerate(rels):
            others = np.delete(sims[i], i)
            med = float(np.median(others))
            if med < threshold:
                closest = rels[int(np.argmax(np.where(np.arange(len(rels)) == i, -2, sims[i])))]
                yield self.diag(ctx, rel, f"face looks like a different person: median similarity {med:.2f} to "
                                f"the other {len(others)} faces (below {threshold:g})", value=round(med, 3),
                                threshold=threshold, related=[closest])
