"""PyTorch adapter: a spec from a ``torch.nn.Module``, and weights loaded into one.

Needs the ``[torch]`` extra. See ``docs/client.md``.
"""

from weightinit.service.torch_helpers import (
    UnsupportedModuleError,
    load_into,
    spec_from_module,
    tied_names,
)

__all__ = ["UnsupportedModuleError", "load_into", "spec_from_module", "tied_names"]
