"""NIR export and import, with the ``nir`` package (Neuromorphic Intermediate Representation 1.0).

:func:`export_nir` traces the network's layers (:mod:`spikeforge.tools.trace`) on an example input and
writes one NIR node per layer:

=====================================  ==========================================================
spikeforge                             NIR
=====================================  ==========================================================
``nn.Conv1d`` / ``nn.Conv2d``          ``Conv1d`` / ``Conv2d`` (zero padding; bias 0 when absent)
``nn.Linear``                          ``Affine`` (``Linear`` without bias)
BN over T·B right after a conv/linear  folded into it: W·γ/√(σ²+ε), (b − μ)·γ/√(σ²+ε) + β (eval statistics)
``nn.AvgPool2d``, even adaptive pool   ``AvgPool2d``;  ``SumPool2d`` imports as a sum pool
``nn.Flatten``, ``VotingLayer``        ``Flatten``;  an ``Affine`` averaging each group of v features
IF / LIF / PLIF, hard reset            ``IF`` / ``LIF`` (below)
SEW ADD  A + S                         ``Scale(1)`` with two incoming edges (NIR sums edges)
dropout (inference), identity          no node
``Readout(output="sequence")``         ``LI`` (λ < 1) or ``I`` (λ = 1)
=====================================  ==========================================================

Neurons are continuous-time in NIR; the export states the step ``dt`` used to discretise them
(forward Euler, ``v[t] = v + dt·dv/dt``). Our step H = λ·V + κ·X + (1 − λ)·v_reset maps to
LIF with τ = dt/(1 − λ), R = κ/(1 − λ), v_leak = v_reset; and for λ = 1 to IF with R = κ/dt. NIR fires
on v > V_th; our default fires on H ≥ V_th (``strict=False``): the two differ only where H equals V_th
exactly, and the node's metadata records which rule the model used (``import_nir`` restores it).

What NIR 1.0 cannot express raises ``ValueError`` naming the layer, never a different model: max-pool,
soft reset, SEW AND/IAND, DSR neurons (α-firing, V_th-valued spikes), BN that does not directly follow
a conv/linear (e.g. after an addition), the readout's final-potential output. A zoo model is exported
up to its per-step outputs ``[T, B, K]`` (``forward_features``); its logits are the readout of those,
``Σ_t λ_r^(T−1−t)·y_t / Σ_t λ_r^t``, which the graph's metadata states (``readout_decay``) rather than
encode as a graph node.
"""
from spikeforge.tools.nir_export import export_nir, layer_to_nir, to_nir_graph
from spikeforge.tools.nir_import import NIRNetwork, import_nir

__all__ = ["NIRNetwork", "export_nir", "import_nir", "layer_to_nir", "to_nir_graph"]
