import re

from curate.engine.diagnostic import Fix, WriteText
from curate.engine.rule import Rule

ORDER = {"close": 0, "half": 1, "full": 2}


def line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class KL511(Rule):
    """Caption's framing words contradict the photo.

    Why: framing words teach the LoRA what "full body" means; a caption that says "full body"
    on a close-up teaches the opposite and weakens prompt control over shot size.

    Example: `jane_doe, full body shot, smiling` on a head-and-shoulders photo.

    Use instead: `jane_doe, close portrait, smiling`.

    Fix safety: unsafe; replaces the contradicting words with the seed's phrase for the
    detected framing, which may be wrong when detection is.

    Options: `min_confidence` (detection confidence needed to flag close vs full, default 0.5),
    `adjacent_confidence` (needed to flag neighbouring framings, close vs half or half vs full,
    default 0.85: neighbours are where people disagree too).
    """

    code = "KL511"
    name = "caption.framing-mismatch"
    groups = ("all", "caption")
    severity = "warning"
    fix_availability = "sometimes"
    needs = ("framing", "caption")
    options = {"min_confidence": 0.5, "adjacent_confidence": 0.85}

    def check(self, ctx, opts):
        from curate.analysis.framing import SEED_PHRASE, caption_framing_terms

        for item in ctx.dataset.captioned:
            fr = ctx.result("framing", item) or {}
            seen = fr.get("framing")
            if seen not in ORDER:
                continue
            conf = float(fr.get("framing_confidence") or 0.0)
            terms = caption_framing_terms(ctx, item)
            if any(t["framing"] == seen for t in terms):
                continue  # a caption may name two shots ("close-up ... full body reflection")
            for t in terms:
                gap = abs(ORDER[t["framing"]] - ORDER[seen])
                need = float(opts["min_confidence"]) if gap == 2 else float(opts["adjacent_confidence"])
                if gap == 0 or conf < need:
                    continue
                text = item.caption_text
                # take a trailing "shot" along, so "full body shot" does not become "close portrait shot"
                tail = re.match(r"[\s-]*shot\b", text[t["end"]:], re.IGNORECASE)
                end = t["end"] + (tail.end() if tail else 0)
                new = text[:t["start"]] + SEED_PHRASE[seen] + text[end:]
                line, col = line_col(text, t["start"])
                fix = Fix(f"replace \"{t['text']}\" with \"{SEED_PHRASE[seen]}\"",
                          (WriteText(str(ctx.dataset.abspath(item.rel_caption)), new),), "unsafe")
                yield self.diag(ctx, item.rel_caption,
                                f"caption says \"{t['text']}\" but the image is a {seen} shot "
                                f"(confidence {conf:.2f})", fix=fix, line=line, col=col,
                                end_col=col + len(t["text"]), value=seen)
                break
