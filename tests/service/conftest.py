"""Puts ``tests/service`` on the import path (pytest's rootdir-conftest rule), so the test
folders below it find their shared helpers; each folder's own helpers sit beside its tests."""
