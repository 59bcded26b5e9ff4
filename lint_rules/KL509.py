from pathlib import Path

from curate.analysis.text import QWEN_TEMPLATE, TEXT_WINDOW
from curate.engine.rule import Rule
from curate.errors import KlintError

_TOKENIZERS: dict[str, object] = {}


def _load_tokenizer(path: str):
    if path not in _TOKENIZERS:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise KlintError(f"caption.too-long: tokenizer folder {path} does not exist")
        try:
            from transformers import AutoTokenizer

            _TOKENIZERS[path] = AutoTokenizer.from_pretrained(str(p), local_files_only=True, trust_remote_code=False)
        except Exception as exc:  # any loading failure is a config problem for the user
            raise KlintError(f"caption.too-long: cannot load a tokenizer from {path}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return _TOKENIZERS[path]


class KL509(Rule):
    """Caption is longer than Klein's text encoder reads.

    Why: FLUX.2 [klein] encodes the prompt with Qwen3 inside a chat template and keeps at most 512
    tokens (diffusers' `max_sequence_length`); the rest of a longer caption is cut off silently and
    never trains.

    Example: a 450-word descriptive paragraph.

    Use instead: keep captions to the scene, pose, lighting and framing - a few dozen words.

    Fix safety: no fix; klint will not decide what to cut.

    Options: `max-tokens` (default 512), `tokenizer` (path to a local Hugging Face tokenizer folder
    for an exact count; without it klint uses a conservative estimate: Qwen's pre-tokeniser split,
    words over 6 letters counted as one token per 4 letters, digits one each, plus the template).
    """

    code = "KL509"
    name = "caption.too-long"
    groups = ("all", "caption")
    severity = "warning"
    needs = ("caption",)
    options = {"max-tokens": TEXT_WINDOW, "tokenizer": None}

    def check(self, ctx, opts):
        limit = int(opts.get("max-tokens") or TEXT_WINDOW)
        tok_path = opts.get("tokenizer")
        tok = _load_tokenizer(str(tok_path)) if tok_path else None
        for item in ctx.dataset.items:
            text = item.caption_text
            res = ctx.result("caption", item)
            if not text or res is None:
                continue
            if tok is not None:
                n = len(tok(QWEN_TEMPLATE.replace("{p}", text), add_special_tokens=False)["input_ids"])
                how = ""
            else:
                n = int(res.get("tokens_estimate", 0))
                how = "about "
            if n > limit:
                yield self.diag(ctx, item.rel_caption,
                                f"caption is {how}{n} tokens with the chat template; Klein's Qwen3 text encoder "
                                f"reads {limit}, the rest is cut off", value=n, threshold=limit)
