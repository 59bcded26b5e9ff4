"""The dataset as klint sees it: image/caption pairs keyed by their path without extension."""

from __future__ import annotations

import dataclasses
from pathlib import Path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
CAPTION_EXT = ".txt"
# folders klint owns inside a dataset; the cache is never linted, derived crops are
CACHE_DIR = ".klint_cache"
OWN_DIR = "_klint"


@dataclasses.dataclass
class Item:
    """One training sample: an image and/or its caption (either may be missing)."""

    key: str  # posix path relative to the dataset root, without extension
    image: Path | None = None
    caption: Path | None = None
    caption_text: str | None = None
    caption_error: str | None = None
    caption_raw: bytes | None = dataclasses.field(default=None, repr=False)  # as read, for compare-before-write

    @property
    def rel_image(self) -> str | None:
        return None if self.image is None else self.key + self.image.suffix

    @property
    def rel_caption(self) -> str:
        return self.key + CAPTION_EXT


@dataclasses.dataclass
class Dataset:
    root: Path
    display_root: str  # the root as the user typed it, for messages
    items: list[Item]
    lfs_pointers: list[str] = dataclasses.field(default_factory=list)
    # names with a dataset extension that are not regular files (FIFOs, devices, links to them): rel -> kind
    special: dict[str, str] = dataclasses.field(default_factory=dict)
    # captions that are links leading outside the dataset (never read, never written)
    outside_links: list[str] = dataclasses.field(default_factory=list)
    # hidden temp files a killed klint left beside the files it was writing
    leftovers: list[Path] = dataclasses.field(default_factory=list)

    @property
    def images(self) -> list[Item]:
        return [it for it in self.items if it.image is not None]

    @property
    def captioned(self) -> list[Item]:
        return [it for it in self.items if it.image is not None and it.caption_text is not None]

    def display(self, rel: str) -> str:
        """How a dataset-relative path is shown to the user."""
        if self.display_root in ("", "."):
            return rel
        return f"{self.display_root.rstrip('/')}/{rel}"

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    def by_key(self, key: str) -> Item | None:
        for it in self.items:
            if it.key == key:
                return it
        return None
