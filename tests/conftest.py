from __future__ import annotations

import pytest

from curate.testing import shared_photos


@pytest.fixture(scope="session")
def photos():
    """The real photos in ../shared/photos (not shipped with klint)."""
    root = shared_photos()
    if root is None:
        pytest.skip("real test photos are missing: no ../shared/photos beside this checkout and no $KLINT_TEST_PHOTOS")
    return root
