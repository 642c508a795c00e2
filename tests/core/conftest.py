"""Puts ``tests/core`` on the import path (pytest's rootdir-conftest rule), so the test
folders below it share ``engine_helpers``, ``golden_specs`` and ``spec_strategies``."""
