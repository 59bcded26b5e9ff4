from __future__ import annotations

import pytest

from curate.testing import shared_photos


@pytest.fixture(scope="session")
def photos():
    """The real photos in ../shared/photos (not shipped with klint)."""
    root = shared_photos()
    if root is None:
        pytest.skip("../shared/photos is not present beside this checkout")
    return root
