"""PyTorch adapter: a spec from a ``torch.nn.Module``, and weights loaded into one.

    with empty_weights():                          # parameters on meta, buffers real
        model = MyModel()
    spec = spec_from_model(model, seed=1234)
    result = load_weights(model, client.init(spec))  # LoadResult(missing, unexpected)

Needs the ``[torch]`` extra. See ``docs/client.md``. ``spec_from_module`` and
``load_into`` are the deprecated names of ``spec_from_model`` and ``load_weights``.
"""

from weightinit.service.extras import require

require("torch", "torch", "weightinit.torch")  # one line naming the extra, not a traceback

from weightinit.service.adapters.torch_distributed import (  # noqa: E402  (after the check)
    ShardedLoadResult,
    load_sharded,
)
from weightinit.service.adapters.torch_helpers import (  # noqa: E402
    UnsupportedModuleError,
    spec_from_model,
    spec_from_module,
    tied_names,
)
from weightinit.service.adapters.torch_loading import empty_weights, load_into, load_weights  # noqa: E402
from weightinit.service.adapters.weights_source import LoadResult  # noqa: E402

__all__ = ["LoadResult", "ShardedLoadResult", "UnsupportedModuleError", "empty_weights",
           "load_into", "load_sharded", "load_weights", "spec_from_model", "spec_from_module",
           "tied_names"]
