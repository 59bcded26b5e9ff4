"""Per-file analyses, cached by content. Heavy models load only on a cache miss."""
