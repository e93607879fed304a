"""The dataset registry (its own module so format modules can import it without cycles)."""
from spikeforge.registry import Registry

DATASETS = Registry("dataset")
