"""The hook engine: stage tables, masks, selectors, and the handle that attaches them."""

from .hooks import CompressionHandle
from .selectors import Selector, StageInput
from .trace import Trace, cache_bytes, cache_lengths

__all__ = ["CompressionHandle", "Selector", "StageInput", "Trace", "cache_bytes", "cache_lengths"]
