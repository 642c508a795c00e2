"""Puts ``tests/`` on the import path (pytest's rootdir-conftest rule), so every test
folder shares ``live_server``."""
