"""The vectorised average-linkage clustering equals the textbook nested-loop definition."""

import numpy as np
import pytest

from curate.analysis.variety import cluster


def reference(S, threshold):
    groups = [[i] for i in range(len(S))]
    while len(groups) > 1:
        best, pair = -1.0, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                s = float(S[np.ix_(groups[a], groups[b])].mean())
                if s > best:
                    best, pair = s, (a, b)
        if best < threshold:
            break
        a, b = pair
        groups[a] = groups[a] + groups[b]
        del groups[b]
    groups.sort(key=lambda g: (-len(g), min(g)))
    labels = [0] * len(S)
    for k, g in enumerate(groups):
        for i in g:
            labels[i] = k
    return labels


@pytest.mark.parametrize("seed", range(12))
def test_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    X = rng.random((n, 6)) ** 3
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    S = X @ X.T
    threshold = float(rng.uniform(0.5, 0.95))
    assert cluster(S, threshold) == reference(S, threshold)


def test_two_obvious_groups():
    S = np.array([[1, .9, .1, .1], [.9, 1, .1, .1], [.1, .1, 1, .95], [.1, .1, .95, 1]])
    assert cluster(S, 0.8) == [0, 0, 1, 1]
    assert cluster(S, 0.99) == [0, 1, 2, 3]
