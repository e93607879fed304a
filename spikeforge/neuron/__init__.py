"""Spiking neurons (SPEC §2), surrogate gradients (§3) and their multi-step kernels.

Owns the dynamics of the LIF family in one place: the nodes (IF, LIF, PLIF, the DSR neuron, the non-spiking
readout), the surrogates, the kernels (reference loop, fused C++ and Triton, each with its no-grad window pass)
the seq-stream run of a node over windows (:mod:`.seq_fire`) and the :class:`~.grad_rule.GradRule` interface
(how a node is differentiated; BPTT here, the one-step dispatch and the one place that records the membrane).
Imports only the core (``registry``, ``streams``); never ``layers``, ``methods``, ``models`` or anything above
them: a training method hands its :class:`~.grad_rule.GradRule` to a node when the node is built, the node does
not know the methods.
"""
from spikeforge.neuron import surrogate
from spikeforge.neuron.kernels import KERNELS
from spikeforge.neuron.dsr import DSRNode
from spikeforge.neuron.grad_rule import GradRule, SurrogateBPTT
from spikeforge.neuron.node import BaseNode, IFNode, LIFNode, PLIFNode, Readout

__all__ = ["BaseNode", "DSRNode", "GradRule", "SurrogateBPTT", "IFNode", "LIFNode", "PLIFNode", "Readout", "surrogate", "KERNELS"]
