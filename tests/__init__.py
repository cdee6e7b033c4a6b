"""postroom tests (a package so that conftest.py can import tests.support)."""
