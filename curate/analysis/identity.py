"""The set's identity from its subject faces: one function that lint, inspect and report share.

The identity is the medoid face (the photo whose median distance to the others is smallest),
so a stranger or two cannot pull it the way they pull a mean. People are told apart by
average-linkage clustering at the same-person threshold.
"""

from __future__ import annotations

from typing import Any

from curate.analysis.face import default_threshold, distance, subject_face

MIN_FACES = 4
SPLIT_SHARE = 0.25  # a second person with at least this share of the faces is a split set


def _pairwise(embs: list[list[float]]) -> list[list[float]]:
    n = len(embs)
    d = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d[i][j] = d[j][i] = distance(embs[i], embs[j])
    return d


def _median(vals: list[float]) -> float:
    s = sorted(vals)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _clusters(d: list[list[float]], threshold: float) -> list[list[int]]:
    """Average-linkage agglomeration, merging while the closest pair of groups is under threshold."""
    groups = [[i] for i in range(len(d))]
    while len(groups) > 1:
        best, pair = None, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                link = sum(d[i][j] for i in groups[a] for j in groups[b]) / (len(groups[a]) * len(groups[b]))
                if best is None or link < best:
                    best, pair = link, (a, b)
        if best is None or best >= threshold:
            break
        a, b = pair
        groups[a] = groups[a] + groups[b]
        del groups[b]
    return sorted(groups, key=lambda g: (-len(g), g))


def compute(embs: dict[str, list[float]], embedder: str, threshold: float | None = None,
            split_share: float = SPLIT_SHARE) -> dict[str, Any]:
    """Identity facts of a set of embeddings {rel: embedding} from one embedder."""
    thr = default_threshold(embedder) if threshold is None else float(threshold)
    rels = sorted(embs)
    n = len(rels)
    out: dict[str, Any] = {"embedder": embedder, "threshold": thr, "n": n, "medoid": None, "distance": {},
                           "nearest": {}, "people": [], "split": False}
    if n == 0:
        return out
    d = _pairwise([embs[r] for r in rels])
    if n == 1:
        out.update(medoid=rels[0], distance={rels[0]: 0.0}, people=[rels])
        return out
    med = min(range(n), key=lambda i: (_median([d[i][j] for j in range(n) if j != i]), rels[i]))
    out["medoid"] = rels[med]
    out["distance"] = {r: round(d[med][i], 4) for i, r in enumerate(rels)}
    for i, r in enumerate(rels):
        j = min((j for j in range(n) if j != i), key=lambda j: d[i][j])
        out["nearest"][r] = [rels[j], round(d[i][j], 4)]
    groups = _clusters(d, thr)
    out["people"] = [[rels[i] for i in g] for g in groups]
    big = [g for g in groups if len(g) >= max(2, split_share * n)]
    out["split"] = len(big) >= 2
    return out


def dataset_identity(ctx) -> dict[str, Any]:
    """`compute` over the dataset's subject faces, memoised per dataset state (warm runs skip it).

    Settings come from the config (identity-outlier's `max-distance`, identity-split's
    `min-share`), so lint, inspect and report all see the same identity.
    """
    threshold, split_share = configured_threshold(ctx.config), configured_split_share(ctx.config)
    embs: dict[str, list[float]] = {}
    embedders: set[str] = set()
    for item in ctx.dataset.images:
        face = subject_face(ctx, item)
        if face and face.get("embedding"):
            embs[item.rel_image] = face["embedding"]
            embedders.add(face.get("embedder") or "")
    if len(embedders) > 1:
        # two back-ends' embeddings live in different spaces; the analysis fingerprint keeps them
        # apart, so this only happens with a hand-edited cache
        embs = {}
    embedder = next(iter(embedders), "")
    inputs = {"faces": sorted((r, ctx.digests.get(r, "")) for r in embs), "embedder": embedder,
              "threshold": threshold, "split_share": split_share}
    return ctx.dataset_memo("identity", inputs, lambda: compute(embs, embedder, threshold, split_share))


def _option(config, keys: tuple[str, ...], name: str):
    value = None
    for key in keys:
        value = (config.rule_options.get(key) or {}).get(name, value)
    return value


def configured_threshold(config) -> float | None:
    """dataset.identity-outlier's `max-distance`, which dataset.identity-split shares."""
    value = _option(config, ("KL701", "dataset.identity-outlier"), "max-distance")
    return None if value is None else float(value)


def configured_split_share(config) -> float:
    value = _option(config, ("KL702", "dataset.identity-split"), "min-share")
    return SPLIT_SHARE if value is None else float(value)
