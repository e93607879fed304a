"""Spiking neurons (SPEC §2), surrogate gradients (§3) and their multi-step kernels."""
from spikeforge.neuron import surrogate
from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.dsr import DSRNode
from spikeforge.neuron.node import BaseNode, IFNode, LIFNode, PLIFNode, Readout

__all__ = ["BaseNode", "DSRNode", "IFNode", "LIFNode", "PLIFNode", "Readout", "surrogate", "KERNELS"]
