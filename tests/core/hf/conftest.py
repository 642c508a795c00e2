"""The hf tests need torch and transformers (the [hf] extra, in the test extra): skipped
as a whole where they are missing (e.g. the numpy-compat CI job)."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
