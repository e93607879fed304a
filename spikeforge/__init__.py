"""spikeforge: train deep spiking neural networks directly and fast on PyTorch."""
__version__ = "0.1.0"
