"""Fixture modules shared by the whole suite (pytest only honours pytest_plugins in the root conftest)."""

pytest_plugins = ["tests.fixtures_models", "tests.fixtures_serving"]

# The longest files, started first (one per worker) so that `make test` has no long tail: pytest-xdist hands
# out whole files in collection order (`--dist loadfile --no-loadscope-reorder`, see the Makefile).
SLOW_FIRST = ("tests/test_stack.py", "tests/test_demo.py")


def pytest_collection_modifyitems(config, items) -> None:
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: every other file keeps its order
