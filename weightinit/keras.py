"""Keras 3 adapter: a spec from a Keras model, and weights loaded into one.

    spec = spec_from_model(model, seed=1234)
    result = load_weights(model, client.init(spec))  # LoadResult(missing, unexpected)

Needs the ``[keras]`` extra. See ``docs/client.md``. ``assign_into`` is the deprecated
name of ``load_weights``.
"""

from weightinit.service.extras import require

require("keras", "keras", "weightinit.keras")  # one line naming the extra, not a traceback

from weightinit.service.adapters.keras_helpers import (  # noqa: E402  (after the check)
    assign_into,
    load_weights,
    match_paths,
    spec_from_model,
)
from weightinit.service.adapters.weights_source import LoadResult  # noqa: E402

__all__ = ["LoadResult", "assign_into", "load_weights", "match_paths", "spec_from_model"]
