"""Keras 3 adapter: a spec from a Keras model, and weights assigned into one.

Needs the ``[keras]`` extra. See ``docs/client.md``.
"""

from weightinit.service.keras_helpers import assign_into, match_paths, spec_from_model

__all__ = ["assign_into", "match_paths", "spec_from_model"]
