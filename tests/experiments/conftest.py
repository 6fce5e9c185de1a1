import pytest

from app.experiments import service


@pytest.fixture(autouse=True)
def fresh_experiment_cache():
    """The per-process caches (definitions, members' subjects) must not outlive the tables that
    `clean_tables` empties between tests."""
    service.invalidate()
    service._member_subjects.clear()
    yield
    service.invalidate()
    service._member_subjects.clear()
