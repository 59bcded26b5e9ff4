from curate.analysis.image import hamming
from curate.analysis.imagestats import pick_best, readable_images
from curate.dataset.derived import derived_sources
from curate.engine.rule import Rule
from lint_rules.KL201 import exact_groups


class KL202(Rule):
    """Image is a near-duplicate of another (same photo re-encoded, resized or re-toned).

    Why: near-copies weigh one moment twice, like exact copies, and quietly shrink the
    variety of pose, light and background the LoRA sees.

    Example: `beach.jpg` and `beach_small.jpg` (a downscaled, re-compressed export); two
    consecutive frames of a video.

    Use instead: keep the better one (klint names it: most pixels, then sharper at one common
    scale, then better exposed) and drop the rest; a flipped copy weighs the same moment twice.

    Fix safety: no fix; klint never deletes images. Severity: warning. Test: 64-bit pHash
    (imagehash-compatible) Hamming distance <= `max_distance`, or a second band where pHash
    and dHash must both be <= `loose_distance` and sum to <= `loose_sum` (90% crops land
    here), each also against the other image's mirrored hashes, so a horizontally flipped
    copy pairs up, and against the hashes of the other's centre at 90%, 85% and 80% of each side
    (both within `max_distance` / `loose_distance`), so a cropped copy pairs up. The message names the kind where the sizes tell it: mirrored, resized,
    crop, edited or re-encoded copy. Measured on the real test
    photos (`python benchmarks/image_calibration.py`): half-size, JPEG q50 and +15%
    brightness copies were 0-6 from their original, a 3% crop 10-14 (pHash misses crops and
    flips); distinct photos were 16+ apart except frames of one video clip (0-16) and shots
    from one motion-capture studio (8-12). Exact duplicates are KL201's and are left out
    here; crops klint derived (`_klint/derived/manifest.json`) are never compared with their
    own source. Each look-alike group keeps its best image; every other member gets one
    diagnostic naming it and listing its matches in `related`.

    Crops at any position: an image whose sides are 77-95% of another's (an unresized crop)
    is also compared with that image's windows of the matching size, every 2% of the side
    (area-averaged pHash and dHash, each within `window_distance` and summing to at most
    `window_sum`). On 60 random crops of the real photos 57 matched (the rest at 10;
    `python benchmarks/image_calibration.py`, "crop windows"); distinct frames of one video
    came 10-11 near a window, two expressions of one sitting 6, but all are the same size, so
    no window stands for them: the size test keeps them apart. A tighter crop (a close-up
    cut from a full-body shot) is left alone: it gives the LoRA another framing.

    Options: `max_distance` (default 6, of 64 bits), `loose_distance` (default 10),
    `loose_sum` (default 16), `window_distance` (default 6), `window_sum` (default 9).
    """

    code = "KL202"
    name = "image.near-duplicate"
    groups = ("all", "image", "duplicates")
    severity = "warning"
    needs = ("image",)
    options = {"max_distance": 6, "loose_distance": 10, "loose_sum": 16, "window_distance": 6, "window_sum": 9}

    def check(self, ctx, opts):
        limit, loose, loose_sum = int(opts["max_distance"]), int(opts["loose_distance"]), int(opts["loose_sum"])
        window_limit, window_sum = int(opts["window_distance"]), int(opts["window_sum"])
        derived = derived_sources(ctx.dataset.root)
        copies = {rel for _, rels in exact_groups(ctx) for rel in rels}
        nodes: list[tuple[str, dict]] = []
        for item, rec in readable_images(ctx):
            # exact copies are KL201's: only the kept file of each pixel group takes part
            if rec.get("phash") and item.rel_image not in copies:
                nodes.append((item.rel_image, rec))
        n = len(nodes)
        edges: dict[int, dict[int, tuple[int, str]]] = {i: {} for i in range(n)}
        ph = [int(r["phash"], 16) for _, r in nodes]
        for i, j, d in _close_pairs(ph, max(limit, loose)):
            _link(nodes, edges, derived, i, j, d, limit, loose, loose_sum, mirror=False)
        # a horizontal flip: the image's hash against the other's mirrored hash
        mirrored = [int(r.get("phash_mirror") or r["phash"], 16) for _, r in nodes]
        for i in range(n):
            for j in range(i + 1, n):
                d = (ph[i] ^ mirrored[j]).bit_count()
                if d <= max(limit, loose) and j not in edges[i]:
                    _link(nodes, edges, derived, i, j, d, limit, loose, loose_sum, mirror=True)
        # a cropped copy: its whole-image hashes against the other's centre-crop hashes
        dh = [int(r.get("dhash") or "0", 16) for _, r in nodes]
        for i in range(n):
            for j in range(n):
                if i == j or j in edges[i]:
                    continue
                for cp, cd in nodes[j][1].get("crop_hashes") or ():
                    d = (ph[i] ^ int(cp, 16)).bit_count()
                    if d <= limit and (dh[i] ^ int(cd, 16)).bit_count() <= loose:
                        ri, rj = nodes[i][0], nodes[j][0]
                        if derived.get(ri) != rj and derived.get(rj) != ri:
                            edges[i][j] = edges[j][i] = (d, "crop")
                        break
        for i, j, d in _window_crops(nodes, edges, window_limit, window_sum):
            ri, rj = nodes[i][0], nodes[j][0]
            if derived.get(ri) != rj and derived.get(rj) != ri:
                edges[i][j] = edges[j][i] = (d, "crop")
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
            best_rel = pick_best([nodes[k] for k in group])
            best = next(k for k in group if nodes[k][0] == best_rel)
            for k in group:
                if k == best:
                    continue
                matches = sorted(edges[k], key=lambda m: (edges[k][m][0], nodes[m][0]))
                if best in edges[k]:
                    d, kind = edges[k][best]
                    how = f"{kind}, pHash distance {d}/64"
                else:
                    near = matches[0]
                    d, kind = edges[k][near]
                    how = f"via {ctx.dataset.display(nodes[near][0])}, {kind}, pHash distance {d}/64"
                msg = f"near-duplicate of {ctx.dataset.display(best_rel)} ({how}); keep that one"
                related = [best_rel] + [nodes[m][0] for m in matches if m != best]
                yield self.diag(ctx, nodes[k][0], msg, value=d, threshold=limit, related=related)


def _link(nodes, edges, derived, i, j, d, limit, loose, loose_sum, mirror: bool) -> None:
    (ri, a), (rj, b) = nodes[i], nodes[j]
    if derived.get(ri) == rj or derived.get(rj) == ri:
        return
    dh_b = b.get("dhash_mirror") if mirror else b.get("dhash")
    dd = hamming(a["dhash"], dh_b) if a.get("dhash") and dh_b else 64
    # the loose band needs both hashes to agree: on the real photos, distinct shots of one
    # studio or one video sat at pHash 10-12 with dHash 3-10, never both close
    if d > limit and not (d <= loose and dd <= loose and d + dd <= loose_sum):
        return
    edges[i][j] = edges[j][i] = (d, _kind(a, b, d, mirror))


# a window of kept fraction k stands for an unresized crop whose sides are k of the source's,
# give or take half the grid step and rounding
WINDOW_SIZE_SLACK = 0.025


def _window_crops(nodes, edges, limit: int, total: int):
    """(crop, source, pHash distance) where one image is an unresized crop at any position of another.

    The smaller image's whole hash is compared only with the other's windows of the kept
    fraction its size implies: distinct shots of one studio or video have the same size, so
    no window stands for them, and a window of the wrong scale never gets a chance to match.
    """
    scales = [_scales(b) for _, b in nodes]
    for i, (_, a) in enumerate(nodes):
        try:
            pa, da = int(a["box_hash"][:16], 16), int(a["box_hash"][16:32], 16)
        except (KeyError, TypeError, ValueError):  # before version 6, or a damaged cache entry
            continue
        for j, (_, b) in enumerate(nodes):
            if i == j or j in edges[i] or not scales[j]:
                continue
            rx, ry = int(a["width"]) / int(b["width"]), int(a["height"]) / int(b["height"])
            for k, packed in scales[j]:
                if abs(rx - k) > WINDOW_SIZE_SLACK or abs(ry - k) > WINDOW_SIZE_SLACK:
                    continue
                for p, d in window_hashes(packed):
                    dp, dd = (pa ^ p).bit_count(), (da ^ d).bit_count()
                    if dp <= limit and dd <= limit and dp + dd <= total:
                        yield i, j, dp
                        break
                else:
                    continue
                break


def _scales(rec: dict) -> list[tuple[float, str]]:
    """(kept fraction, packed windows) of a record; empty when absent or not as klint writes it."""
    out = []
    windows = rec.get("crop_windows")
    for keep, packed in (windows.items() if isinstance(windows, dict) else ()):
        try:
            out.append((float(keep), packed))
        except ValueError:
            continue
    return out


def window_hashes(packed: str):
    """(pHash, dHash) of each window in one `crop_windows` entry; nothing for a damaged entry."""
    import base64
    import binascii

    try:
        raw = base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return
    for w in range(0, len(raw) - 15, 16):
        yield int.from_bytes(raw[w:w + 8], "big"), int.from_bytes(raw[w + 8:w + 16], "big")


def _kind(a: dict, b: dict, d: int, mirror: bool) -> str:
    """What separates two look-alikes, as far as the facts tell: flip, resize, crop or edit."""
    if mirror:
        return "mirrored copy"
    wa, ha, wb, hb = int(a["width"]), int(a["height"]), int(b["width"]), int(b["height"])
    if (wa, ha) == (wb, hb):
        return "re-encoded or lightly edited copy" if d == 0 else "edited copy"
    if abs(wa / ha - wb / hb) > 0.01 * (wa / ha):
        return "crop"
    return "resized copy" if d <= 6 else "crop or resized copy"


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
