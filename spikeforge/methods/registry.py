"""The method registry (its own module so method modules can import it without cycles)."""
from spikeforge.registry import Registry

METHODS = Registry("method")
