from curate.analysis.imagestats import pick_best, readable_images
from curate.dataset.derived import derived_sources
from curate.engine.rule import Rule


class KL202(Rule):
    """Image is a near-duplicate of another (same photo re-encoded, resized or re-toned).

    Why: near-copies weigh one moment twice, like exact copies, and quietly shrink the
    variety of pose, light and background the LoRA sees.

    Example: `beach.jpg` and `beach_small.jpg` (a downscaled, re-compressed export); two
    consecutive frames of a video.

    Use instead: keep the better one (sharper, then larger; klint names it) and drop the rest.

    Fix safety: no fix; klint never deletes images. Severity: warning. Test: 64-bit pHash
    (imagehash-compatible) Hamming distance <= `max_distance`. Measured on the real test
    photos (`python benchmarks/image_calibration.py`): half-size, JPEG q50 and +15%
    brightness copies were 0-6 from their original, a 3% crop 10-14 (pHash misses crops and
    flips); distinct photos were 16+ apart except frames of one video clip (0-16) and shots
    from one motion-capture studio (8-12). Exact duplicates are KL201's and are left out
    here; crops klint derived (`_klint/derived/manifest.json`) are never compared with their
    own source. Each look-alike group keeps its best image; every other member gets one
    diagnostic naming it and listing its matches in `related`.

    Options: `max_distance` (default 6, of 64 bits).
    """

    code = "KL202"
    name = "image.near-duplicate"
    groups = ("all", "image", "duplicates")
    severity = "warning"
    needs = ("image",)
    options = {"max_distance": 6}

    def check(self, ctx, opts):
        limit = int(opts["max_distance"])
        derived = derived_sources(ctx.dataset.root)
        seen_pixels: set[str] = set()
        nodes: list[tuple[str, dict, int]] = []
        for item, rec in readable_images(ctx):
            ph = rec.get("phash")
            if not ph:
                continue
            # exact copies are KL201's: only the first of each pixel group takes part
            if rec.get("pixel_hash") in seen_pixels:
                continue
            seen_pixels.add(rec.get("pixel_hash"))
            nodes.append((item.rel_image, rec, int(ph, 16)))
        n = len(nodes)
        edges: dict[int, dict[int, int]] = {i: {} for i in range(n)}
        for i, j, d in _close_pairs([h for _, _, h in nodes], limit):
            ri, rj = nodes[i][0], nodes[j][0]
            if derived.get(ri) == rj or derived.get(rj) == ri:
                continue
            edges[i][j] = edges[j][i] = d
        seen: set[int] = set()
        for start in range(n):
            if start in seen or not edges[start]:
                continue
            group, stack = [], [start]
            seen.add(start)
            while stack:
                k = stack.pop()
                group.append(k)
                for m in edges[k]:
                    if m not in seen:
                        seen.add(m)
                        stack.append(m)
            group.sort()
            best_rel = pick_best([(nodes[k][0], nodes[k][1]) for k in group])
            best = next(k for k in group if nodes[k][0] == best_rel)
            for k in group:
                if k == best:
                    continue
                matches = sorted(edges[k], key=lambda m: (edges[k][m], nodes[m][0]))
                if best in edges[k]:
                    how = f"pHash distance {edges[k][best]}/64"
                else:
                    near = matches[0]
                    how = (f"via {ctx.dataset.display(nodes[near][0])}, pHash distance {edges[k][near]}/64")
                msg = f"near-duplicate of {ctx.dataset.display(best_rel)} ({how}); keep that one"
                related = [best_rel] + [nodes[m][0] for m in matches if m != best]
                yield self.diag(ctx, nodes[k][0], msg, value=edges[k].get(best, edges[k][matches[0]]),
                                threshold=limit, related=related)


def _close_pairs(hashes: list[int], limit: int):
    """(i, j, distance) for i < j with Hamming distance <= limit."""
    n = len(hashes)
    if n < 200:
        for i in range(n):
            for j in range(i + 1, n):
                d = (hashes[i] ^ hashes[j]).bit_count()
                if d <= limit:
                    yield i, j, d
        return
    # large datasets: the same all-pairs scan, one row at a time in numpy (numpy is only
    # imported here, never on a small lint)
    import numpy as np

    arr = np.array(hashes, dtype=np.uint64)
    popcount = getattr(np, "bitwise_count", None)  # numpy >= 2.0
    if popcount is None:
        table = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)

        def popcount(x):
            return table[x.view(np.uint8)].reshape(-1, 8).sum(axis=1)
    for i in range(n - 1):
        dist = popcount(arr[i + 1:] ^ arr[i])
        for off in np.flatnonzero(dist <= limit):
            yield i, i + 1 + int(off), int(dist[off])
