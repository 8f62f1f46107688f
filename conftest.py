"""Root conftest: shared fixtures for every test directory (tests/, services/*/tests/)."""

pytest_plugins = ["hotline.testing.fixtures"]
