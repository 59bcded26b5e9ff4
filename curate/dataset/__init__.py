from curate.dataset.model import CAPTION_EXT, IMAGE_EXTS, Dataset, Item
from curate.dataset.scan import scan

__all__ = ["CAPTION_EXT", "IMAGE_EXTS", "Dataset", "Item", "scan"]
