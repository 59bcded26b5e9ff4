from curate.engine.rule import Rule


class KL602(Rule):
    """Optimizer known to fail for a character LoRA on klein.

    Why: adafactor's adaptive scaling does not converge for identity on klein-9B: the face
    drifts to a generic "stock photo" average by ~1K steps (the seed's known failure). It is
    fine for style LoRAs. On klein-4B the seed has no report, so it is only a warning there.

    Example: `[train] optimizer = "adafactor"` with `model = "klein-9b"` (kind "character").

    Use instead: `optimizer = "adamw8bit"` (lr 1e-4, the standard recipe), or set
    `kind = "style"` if this really is a style LoRA.

    Fix safety: no automatic fix; the optimizer is a training choice.

    Options: `warn_4b` (also warn for klein-4B character runs, default true).
    """

    code = "KL602"
    name = "train.optimizer"
    groups = ("all", "train")
    severity = "error"
    options = {"warn_4b": True}

    def check(self, ctx, opts):
        from curate.fix.trainplan import config_location, train_settings
        from curate.recipes import ADAFACTOR_REASON, OPTIMIZERS

        if not ctx.config.train:
            return
        s = train_settings(ctx.config)
        rel, line = config_location(ctx.config, ctx.dataset.root, "train", "optimizer")
        opt = str(s.optimizer).lower()
        if opt not in OPTIMIZERS:
            yield self.diag(ctx, rel, f"unknown optimizer {s.optimizer!r} (known: {', '.join(OPTIMIZERS)})",
                            line=line, value=s.optimizer)
            return
        if s.kind not in ("character", "style"):
            rel_k, line_k = config_location(ctx.config, ctx.dataset.root, "train", "kind")
            yield self.diag(ctx, rel_k, f"[train] kind must be \"character\" or \"style\", got {s.kind!r}",
                            line=line_k, value=s.kind)
            return
        if opt != "adafactor" or s.kind != "character":
            return
        if s.model == "klein-9b":
            yield self.diag(ctx, rel, ADAFACTOR_REASON, line=line, value=opt)
        elif opts.get("warn_4b", True):
            yield self.diag(ctx, rel, f"adafactor for a character LoRA on {s.model}: the seed reports it failing on "
                            f"klein-9B (face averages out by ~1K steps) and never tested 4B; the recipes use "
                            f"adamw8bit", severity="warning", line=line, value=opt)
