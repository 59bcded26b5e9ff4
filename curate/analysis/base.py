"""What an analysis is: a named, versioned function of one file's content."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

if TYPE_CHECKING:
    from curate.config import Config
    from curate.dataset.model import Item

Progress = Callable[[int], None]


class Analysis:
    """Subclasses compute a JSON-able dict per image (or per caption) in batches.

    The cache key is the file content hash + `version` + `fingerprint(config)`, so bump
    `version` when the output changes and put every setting that changes it in `fingerprint`.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    scope: ClassVar[Literal["image", "caption"]] = "image"
    needs: ClassVar[tuple[str, ...]] = ()  # other analyses whose results `run_batch` reads
    label: ClassVar[str] = ""  # progress-bar text; empty = no bar (fast analyses)

    def fingerprint(self, config: Config) -> str:
        return ""

    def run_batch(self, items: list[Item], ctx: Any, advance: Progress) -> list[dict[str, Any]]:
        raise NotImplementedError
