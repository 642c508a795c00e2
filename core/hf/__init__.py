"""Hugging Face models as weightinit plans: a config in, every tensor ``save_pretrained``
writes out, each with the distribution its family's own init gives it.

transformers and torch are imported only when a ``huggingface`` spec is planned (the
``[hf]`` extra); without them such a request fails with ``ExtraMissing`` (a 422 that
names the extra). See docs/huggingface.md.
"""

from weightinit.core.hf.families import SUPPORTED_FAMILIES
from weightinit.core.hf.source import HuggingFaceSource

__all__ = ["SUPPORTED_FAMILIES", "HuggingFaceSource"]
