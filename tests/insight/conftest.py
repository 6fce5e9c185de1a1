import pytest

from app.community import views


@pytest.fixture(autouse=True)
def no_views_from_other_tests():
    """The view buffer is per process: drop what earlier tests left (their ids are reused)."""
    views._pending.clear()
    yield
    views._pending.clear()
