"""Yao et al. (ACML 2023): windowed spiking LSTM/CNN/RNN/GRU token mixers at T = 1 (SPEC §7.4).

Registers ``yao_{lstm,cnn,rnn,birnn,gru}_snn`` and ``yao_resmlp12`` in the model registry.
Its parts by name (plain mappings): ``CELLS``, ``FUSIONS``, ``ENCODERS``, ``PRESETS``.
"""
from spikeforge.models.yao.cells import CELLS
from spikeforge.models.yao.encoding import ENCODERS
from spikeforge.models.yao.fusions import FUSIONS
from spikeforge.models.yao.network import PRESETS, YaoSNN
from spikeforge.models.yao.resmlp import YaoResMLP12, convert_to_snn

__all__ = ["CELLS", "ENCODERS", "FUSIONS", "PRESETS", "YaoResMLP12", "YaoSNN", "convert_to_snn"]
