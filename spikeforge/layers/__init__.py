"""Time-aware building blocks for time-first ``[T, B, ...]`` tensors (DESIGN "layers/").

- :class:`TimeDistributed` / :func:`seq_to_ann`: fold T into the batch for stateless modules.
- :class:`BatchNormTB`: BN with statistics over (T, B, spatial) jointly.
- :class:`ThresholdDependentBatchNorm` (alias :data:`TdBN`): tdBN, SPEC §6.2.
- :func:`convert_sync_batchnorm`: both share their statistics over processes (``--sync-bn``).
- :class:`TimeFixedDropout`: one dropout mask per sample, reused at every step (SPEC §7.2).
- :class:`VotingLayer`: the PLIF networks' average-pool vote over the feature dim (SPEC §7.2).
- :class:`SEWConnect`: SEW ResNet's ADD / AND / IAND connect functions (SPEC §7.1).

Every layer takes a plain ``[T, B, ...]`` tensor (bptt) or a ``Dual`` (ssf/dsr) from ``streams``. Imports the core
and ``neuron`` only; never ``methods``, ``models`` or anything above them.
"""
from spikeforge.layers.batchnorm import BatchNormTB, TdBN, ThresholdDependentBatchNorm, convert_sync_batchnorm
from spikeforge.layers.dropout import TimeFixedDropout
from spikeforge.layers.sew import SEWConnect
from spikeforge.layers.time_distributed import TimeDistributed, seq_to_ann
from spikeforge.layers.voting import VotingLayer

__all__ = [
    "BatchNormTB",
    "SEWConnect",
    "TdBN",
    "ThresholdDependentBatchNorm",
    "TimeDistributed",
    "TimeFixedDropout",
    "VotingLayer",
    "convert_sync_batchnorm",
    "seq_to_ann",
]
