"""``bptt``: surrogate-gradient backpropagation through time (the neurons' own kernel backward)."""
from __future__ import annotations

from spikeforge.methods.base import Method
from spikeforge.methods.registry import METHODS

__all__ = ["BPTT"]


@METHODS.register("bptt")
class BPTT(Method):
    """Exact spike dynamics forward; reverse loop over T with the surrogate derivative backward."""

    name = "bptt"

    def __init__(self) -> None:
        super().__init__()
