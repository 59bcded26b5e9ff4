from curate.engine.rule import Rule


class KL701(Rule):
    """Photo's face looks like a different person from the rest of the set.

    Why: one stranger (a friend in a group shot, a look-alike, a mislabelled file) pulls the learned
    identity towards an average of two people. A face-recognition embedding compares identities
    directly: photos of one person sit close together, a different person sits far away.

    How: every photo's subject face (the face on the pose subject's head) is embedded with dlib's
    ResNet face descriptor (offline, shipped by the face-recognition-models package). The set's
    identity is its medoid face, the photo whose median distance to the others is smallest, so a
    stranger cannot pull it. A photo whose face is farther from it than the threshold is flagged,
    with the nearest other photo for comparison. When the set holds two people in similar numbers,
    dataset.identity-split reports it instead.

    Example: 14 photos of Jane and `img_09.jpg`, whose largest face is her sister.

    Use instead: remove or replace the photo, or crop it to the right person.

    Fix safety: no fix; klint never deletes images.

    Options: `max-distance` (Euclidean distance to the set's identity above which a face is
    another person; default 0.55 for dlib, measured on the shared identity photos where no
    same-person pair reached 0.53, 1.18 for insightface = cosine 0.3), `min-faces` (faces
    needed to judge, default 4). A top-level `face-model` key (an insightface antelopev2 /
    buffalo_l folder) swaps in insightface's embedding; the two are never compared.
    """

    code = "KL701"
    name = "dataset.identity-outlier"
    groups = ("all", "dataset", "identity")
    severity = "warning"
    needs = ("face",)
    options = {"max-distance": None, "min-faces": 4}

    def check(self, ctx, opts):
        from curate.analysis.face import backend_problem
        from curate.analysis.identity import dataset_identity

        if not any(ctx.results.get("face", {}).values()) and backend_problem():
            yield self.diag(ctx, "", f"identity check skipped: {backend_problem()}", severity="info")
            return
        ident = dataset_identity(ctx)
        need = int(opts["min-faces"])
        if ident["n"] < need:
            yield self.diag(ctx, "", f"identity check needs {need} photos with a detected face; found {ident['n']}",
                            severity="info", value=ident["n"], threshold=need)
            return
        if ident["split"]:
            return  # two people in similar numbers: dataset.identity-split names them
        limit = ident["threshold"]
        medoid = ident["medoid"]
        for rel, dist in sorted(ident["distance"].items(), key=lambda kv: -kv[1]):
            if dist <= limit:
                continue
            near, near_d = ident["nearest"][rel]
            yield self.diag(ctx, rel, f"face looks like a different person: distance {dist:.2f} from the set's "
                            f"identity (threshold {limit:g}, identity photo {ctx.dataset.display(medoid)}); "
                            f"nearest photo {ctx.dataset.display(near)} at {near_d:.2f}",
                            value=round(dist, 3), threshold=limit, related=[near])
