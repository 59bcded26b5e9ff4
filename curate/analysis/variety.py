"""Dataset-wide variety: lighting buckets, background clusters.

The figure users see is `effective_number`: exp(entropy) of the bucket / cluster sizes, shown
as "effective number" by lint, inspect and the report alike. The Vendi scores kept in the
summaries (exp(entropy) of the eigenvalues of a similarity matrix) are an internal, continuous
view that is not shown, since it does not match the counted setups.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

VARIETY_VERSION = 1  # bump when the summaries below change
BG_SIMILAR = 0.80  # Bhattacharyya coefficient above which two backgrounds are "the same place"


def vendi(K) -> float:
    import numpy as np

    K = np.asarray(K, dtype=np.float64)
    n = K.shape[0]
    if n == 0:
        return 0.0
    lam = np.linalg.eigvalsh(K / n)
    lam = lam[lam > 1e-12]
    return float(math.exp(-(lam * np.log(lam)).sum()))


def effective_number(sizes: Sequence[int]) -> float:
    """The "effective number of distinct setups" every command shows (one decimal).

    exp(Shannon entropy) of the group sizes: k for k equally common setups (lighting buckets,
    background clusters), less when a few dominate (sizes 8, 1, 1 give 1.9), 1 for one setup.
    """
    return round(entropy_effective(sizes), 1)


def entropy_effective(counts: Sequence[int]) -> float:
    """exp(Shannon entropy) of a count distribution."""
    total = sum(counts)
    if total == 0:
        return 0.0
    return math.exp(-sum(c / total * math.log(c / total) for c in counts if c))


def cluster(sim, threshold: float) -> list[int]:
    """Average-linkage agglomerative clustering on a similarity matrix; labels by size.

    Keeps a matrix of summed similarities between clusters so each merge is one vectorised
    update (a warm re-lint of a 60-image set runs this on every call).
    """
    import numpy as np

    S = np.array(sim, dtype=np.float64)
    n = S.shape[0]
    W = S.copy()  # W[a, b] = sum of S over members of a x members of b
    size = np.ones(n)
    members: list[list[int]] = [[i] for i in range(n)]
    active = list(range(n))  # cluster ids in the order the merges keep them
    while len(active) > 1:
        idx = np.array(active)
        avg = W[np.ix_(idx, idx)] / np.outer(size[idx], size[idx])
        avg[np.tril_indices(len(idx))] = -np.inf
        flat = int(np.argmax(avg))  # first maximum in row-major order, like a nested loop
        i, j = divmod(flat, len(idx))
        if avg[i, j] < threshold:
            break
        a, b = active[i], active[j]
        W[a, :] += W[b, :]
        W[:, a] += W[:, b]
        size[a] += size[b]
        members[a].extend(members[b])
        del active[j]
    groups = [members[a] for a in active]
    groups.sort(key=lambda g: (-len(g), min(g)))
    labels = [0] * n
    for k, g in enumerate(groups):
        for i in g:
            labels[i] = k
    return labels


def lighting_summary(lightings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    buckets = Counter(l["bucket"] for l in lightings)
    n = sum(buckets.values())
    out: dict[str, Any] = {"n": n, "buckets": dict(buckets.most_common()), "distinct": len(buckets),
                           "largest": None, "largest_share": 0.0, "effective": 0.0, "vendi": 0.0}
    if not n:
        return out
    top, cnt = buckets.most_common(1)[0]
    out.update(largest=top, largest_share=round(cnt / n, 3), effective=round(entropy_effective(list(buckets.values())), 2))
    # continuous view: RBF kernel on scaled descriptors (so near-identical setups count as one)
    feats = []
    for l in lightings:
        cct = l.get("cct") or 6500
        feats.append([l["brightness"][1] / 0.12, l["contrast"] / 25.0, l["balance"] / 0.1, (1e6 / cct) / 25.0])
    F = np.array(feats)
    d2 = ((F[:, None, :] - F[None, :, :]) ** 2).sum(-1)
    out["vendi"] = round(vendi(np.exp(-d2 / 2.0)), 2)
    return out


def background_summary(hists: Sequence[Sequence[float]], threshold: float = BG_SIMILAR) -> dict[str, Any]:
    import numpy as np

    n = len(hists)
    if n == 0:
        return {"n": 0, "labels": [], "clusters": 0, "largest_share": 0.0, "vendi": 0.0, "sizes": []}
    X = np.array(hists, dtype=np.float64)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    S = np.clip(X @ X.T, 0.0, 1.0)
    labels = cluster(S, threshold)
    sizes = [c for _, c in sorted(Counter(labels).items())]
    return {"n": n, "labels": labels, "clusters": len(sizes), "sizes": sizes,
            "largest_share": round(max(sizes) / n, 3), "vendi": round(vendi(S), 2)}


def dataset_variety(ctx) -> dict[str, Any]:
    """Lighting and background summaries for the whole dataset, computed once per lint."""
    memo = getattr(ctx, "_klint_variety", None)
    if memo is not None:
        return memo
    rels, lightings, hists = [], [], []
    for item in ctx.dataset.images:
        res = ctx.result("scene", item)
        if not res:
            continue
        rels.append(item.rel_image)
        lightings.append(res["lighting"])
        hists.append(res["background"]["hist"])

    def compute() -> dict[str, Any]:
        bg = background_summary(hists)
        return {
            "lighting": lighting_summary(lightings),
            "background": bg,
            "bucket_of": {r: l["bucket"] for r, l in zip(rels, lightings)},
            "cluster_of": dict(zip(rels, bg["labels"])),
            "rels": rels,
        }

    memoise = getattr(ctx, "dataset_memo", None)
    inputs = [VARIETY_VERSION, BG_SIMILAR, rels, lightings, hists]
    memo = memoise("variety", inputs, compute) if memoise else compute()
    ctx._klint_variety = memo
    return memo
