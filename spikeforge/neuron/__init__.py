"""Spiking neurons (SPEC §2), surrogate gradients (§3) and their multi-step kernels.

Owns the dynamics of the LIF family in one place: the nodes (IF, LIF, PLIF, the DSR neuron, the non-spiking
readout), the surrogates, the kernels (reference loop, fused C++ and Triton, each with its no-grad window pass)
and the seq-stream run of a node over windows (:mod:`.seq_fire`). Imports only the core (``registry``,
``streams``); never ``layers``, ``methods``, ``models`` or anything above them: a training method attaches its
backward to a node, the node does not know the methods.
"""
from spikeforge.neuron import surrogate
from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.dsr import DSRNode
from spikeforge.neuron.node import BaseNode, IFNode, LIFNode, PLIFNode, Readout

__all__ = ["BaseNode", "DSRNode", "IFNode", "LIFNode", "PLIFNode", "Readout", "surrogate", "KERNELS"]
