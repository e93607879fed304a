"""Spiking cells of Yao et al.'s token mixer (SPEC §7.4): ``CELLS`` (name -> builder).

A cell runs the four windows G1..G4 of one block in turn, each window's neurons starting from a
membrane fused from earlier ones (:mod:`.fusions`). Its :meth:`SpikingCell.chain` takes the binary
window tokens ``[4, B, ws, ws, d]`` and returns spikes ``[4, B, ws, ws, out_dim]``.

- ``lstm``: bidirectional ``nn.LSTM(d, h)`` over the ws² tokens of a window (raster order), the
  neuron on its output [h_fwd; h_bwd] (out_dim 2h); the LSTM's own h/c never spike. The membrane map
  of the previous block (``old``, carried across blocks by the network) feeds the chain: G1 f(old1, old2),
  G2 f(new1, old2), G3 f(old3, new2), G4 f(old4, new3) (the code's LSTM file).
- ``rnn`` / ``birnn`` / ``gru``: supplement Table 2, not in the code (inferred): the LSTM swapped for
  a unidirectional ``nn.RNN(tanh)`` (out_dim h), a bidirectional one (2h), a bidirectional ``nn.GRU``
  (2h; bidirectional as the LSTM it replaces — our choice). Same chain.
- ``cnn``: conv3x3(d→h) → neuron c1 → conv3x3(h→h) → neuron c2 (out_dim h), the window transposed
  spatially as the code's ``transpose(1, 3)`` does; c1, c2 start at 0 in each block; G_k (k ≥ 2):
  c1_in = c1 of G_{k−1}, c2_in = f(c1, c2 of G_{k−1}) (the code's CNN file).

The recurrent net / conv input is the encoded window, which does not depend on the chain, so with
``batch_windows=True`` (default) the four windows go through the LSTM / each conv as one batch of 4B;
only the elementwise fusion + neuron steps run window by window. ``batch_windows=False`` is the
code's literal order (one call per window); both give identical values.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from spikeforge.methods import Method
from spikeforge.models.yao.fusions import Fusion
from spikeforge.models.yao.neuron import YaoNeuron

__all__ = ["CELLS", "ConvCell", "RecurrentCell", "SpikingCell"]

class SpikingCell(nn.Module):
    """Base class. Attributes: ``out_dim`` (spike channels), ``carries_map`` (uses the previous block's membrane map)."""

    out_dim: int
    carries_map: bool = False

    def __init__(self, batch_windows: bool = True) -> None:
        super().__init__()
        self.batch_windows = bool(batch_windows)

    def chain(self, xb: Tensor, old: Tensor | None, fusion: Fusion) -> tuple[Tensor, Tensor | None]:
        """xb ``[4, B, ws, ws, d]`` binary tokens; old ``[4, B, ws, ws, out_dim]`` windows of the previous
        membrane map (``carries_map`` cells) or None → (spikes ``[4, B, ws, ws, out_dim]``, new membranes
        of the same shape or None)."""
        raise NotImplementedError

    def _per_window(self, fn, xb: Tensor) -> Tensor:
        """``fn`` on the 4 windows as one batch ``[4B, ...]`` (or one call per window); returns ``[4, B, ...]``."""
        if self.batch_windows:
            out = fn(xb.flatten(0, 1))
            return out.reshape(4, xb.shape[1], *out.shape[1:])
        return torch.stack([fn(w) for w in xb.unbind(0)])


class RecurrentCell(SpikingCell):
    """A recurrent net over the window tokens, then the Yao neuron on its output (LSTM-file chain).

    Args:
        d: token width; h: hidden size per direction; rnn: ``nn.LSTM``/``nn.RNN``/``nn.GRU``;
        bidirectional: both directions (out_dim 2h) or forward only (h); method, neuron: see :class:`YaoNeuron`.
    """

    carries_map = True

    def __init__(self, d: int, h: int, rnn: type[nn.RNNBase], bidirectional: bool, method: Method,
                 neuron: Mapping[str, Any] | None = None, batch_windows: bool = True) -> None:
        super().__init__(batch_windows)
        self.rnn = rnn(d, h, num_layers=1, bias=True, batch_first=True, bidirectional=bidirectional)
        self.out_dim = h * (2 if bidirectional else 1)
        self.neuron = YaoNeuron(method, neuron)

    def currents(self, xb: Tensor) -> Tensor:
        """``[4, B, ws, ws, d]`` → the net's output I ``[4, B, ws, ws, out_dim]`` (tokens in raster order)."""
        ws = xb.shape[2]

        def run(w: Tensor) -> Tensor:  # [n, ws, ws, d] -> [n, ws, ws, out]
            return self.rnn(w.flatten(1, 2))[0].unflatten(1, (ws, ws))

        return self._per_window(run, xb)

    def chain(self, xb: Tensor, old: Tensor | None, fusion: Fusion) -> tuple[Tensor, Tensor]:
        if old is None:
            raise ValueError(f"{type(self).__name__}: the LSTM-file chain needs the previous membrane map (old)")
        current = self.currents(xb)
        o1, o2, o3, o4 = old.unbind(0)
        s1, m1 = self.neuron(current[0], fusion(o1, o2))
        s2, m2 = self.neuron(current[1], fusion(m1, o2))
        s3, m3 = self.neuron(current[2], fusion(o3, m2))
        s4, m4 = self.neuron(current[3], fusion(o4, m3))
        return torch.stack([s1, s2, s3, s4]), torch.stack([m1, m2, m3, m4])


class ConvCell(SpikingCell):
    """conv3x3 → neuron → conv3x3 → neuron (CNN-file chain). Args: d: in channels; h: channels; method, neuron."""

    def __init__(self, d: int, h: int, method: Method, neuron: Mapping[str, Any] | None = None,
                 batch_windows: bool = True) -> None:
        super().__init__(batch_windows)
        self.conv1 = nn.Conv2d(d, h, 3, padding=1)
        self.conv2 = nn.Conv2d(h, h, 3, padding=1)
        self.neuron1 = YaoNeuron(method, neuron)
        self.neuron2 = YaoNeuron(method, neuron)
        self.out_dim = h

    @staticmethod
    def _conv(conv: nn.Conv2d, w: Tensor) -> Tensor:
        """Channels-last ``[n, ws, ws, c]`` through ``conv`` via the code's ``transpose(1, 3)`` (spatially transposed)."""
        return conv(w.transpose(1, 3)).transpose(1, 3)

    def chain(self, xb: Tensor, old: Tensor | None, fusion: Fusion) -> tuple[Tensor, None]:
        j1 = self._per_window(lambda w: self._conv(self.conv1, w), xb)
        s1, c1 = [], []
        for k in range(4):
            s, c = self.neuron1(j1[k], c1[-1] if k else None)
            s1.append(s)
            c1.append(c)
        j2 = self._per_window(lambda w: self._conv(self.conv2, w), torch.stack(s1))
        s2, c2 = [], []
        for k in range(4):
            s, c = self.neuron2(j2[k], fusion(c1[k - 1], c2[-1]) if k else None)
            s2.append(s)
            c2.append(c)
        return torch.stack(s2), None


def lstm_cell(d: int, h: int, method: Method, **kw: Any) -> RecurrentCell:
    """Bidirectional LSTM (the code's; always bidirectional): out_dim 2h."""
    return RecurrentCell(d, h, nn.LSTM, True, method, **kw)


def rnn_cell(d: int, h: int, method: Method, **kw: Any) -> RecurrentCell:
    """Unidirectional tanh RNN (Table 2 "RNN", inferred): out_dim h."""
    return RecurrentCell(d, h, nn.RNN, False, method, **kw)


def birnn_cell(d: int, h: int, method: Method, **kw: Any) -> RecurrentCell:
    """Bidirectional tanh RNN (Table 2 "Bi-RNN", inferred): out_dim 2h."""
    return RecurrentCell(d, h, nn.RNN, True, method, **kw)


def gru_cell(d: int, h: int, method: Method, **kw: Any) -> RecurrentCell:
    """Bidirectional GRU (Table 2 "GRU", inferred; direction assumed as the LSTM's): out_dim 2h."""
    return RecurrentCell(d, h, nn.GRU, True, method, **kw)


def cnn_cell(d: int, h: int, method: Method, **kw: Any) -> ConvCell:
    """Two conv3x3 + neurons (the code's CNN file): out_dim h."""
    return ConvCell(d, h, method, **kw)


#: cell name (``YaoSNN(cell=...)``) -> builder ``(d, h, method, **options) -> SpikingCell``
CELLS: dict[str, Callable[..., SpikingCell]] = {
    "lstm": lstm_cell, "rnn": rnn_cell, "birnn": birnn_cell, "gru": gru_cell, "cnn": cnn_cell}
