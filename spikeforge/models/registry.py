"""The model registry (its own module so family modules can import it without cycles)."""
from spikeforge.registry import Registry

MODELS = Registry("model")
