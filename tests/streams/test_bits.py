"""PackedBool: spike trains one bit per value, read back exactly in any dtype."""
import pytest
import torch

from spikeforge.streams.bits import PackedBool


@pytest.mark.parametrize("shape", [(4, 2, 3), (3, 5, 7), (6, 2, 4, 4, 4), (5, 1, 1), (2, 3, 8)])
def test_round_trip_by_windows(shape):
    """Bits written window by window read back equal, in bool, float32 and float64, over any window."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) > 0.6
    bits = PackedBool(shape, "cpu")
    T = shape[0]
    for t0 in range(0, T, 2):
        bits.write(t0, x[t0:t0 + 2].float() if t0 % 4 else x[t0:t0 + 2])  # float input: nonzero = True
    assert bits.nbytes == T * -(-x[0].numel() // 8)
    assert torch.equal(bits.read(0, T), x)
    for dtype in (torch.float32, torch.float64):
        out = bits.read(1, T, dtype)
        assert out.dtype == dtype and torch.equal(out, x[1:].to(dtype))


def test_bit_order_by_hand():
    """Value j of a step is bit j mod 8 of byte j div 8."""
    bits = PackedBool((1, 10), "cpu")
    bits.write(0, torch.tensor([[1, 0, 1, 1, 0, 0, 0, 1, 0, 1]], dtype=torch.bool))
    assert bits.data.tolist() == [[1 + 4 + 8 + 128, 2]]


def test_write_outside_raises():
    bits = PackedBool((4, 2, 3), "cpu")
    with pytest.raises(ValueError, match="do not fit"):
        bits.write(3, torch.ones(2, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="do not fit"):
        bits.write(0, torch.ones(1, 2, 4, dtype=torch.bool))


def test_fire_lazy_keeps_spikes_packed():
    """A neuron's spikes under ssf take T·B·n/8 bytes and read back as its kernel's spikes."""
    from spikeforge.streams.dual import uniform_weights
    from spikeforge.neuron.seq_fire import fire_lazy
    from spikeforge.streams.lazy import LazySeq
    from spikeforge.neuron import LIFNode

    x = torch.rand(5, 3, 16, generator=torch.Generator().manual_seed(1)) * 2
    node = LIFNode(decay=0.7, backend="torch")
    fired = fire_lazy(node, LazySeq.of(x, window_bytes=2 * 3 * 16 * 4), uniform_weights(5), torch.float32)
    expected = node(x)
    assert torch.equal(fired.spikes.materialize(torch.float32), expected)
    assert fired.spikes.dtype == torch.bool and fired.spikes.stored is None


def test_pack_all_byte_patterns():
    """Every one of the 256 patterns of eight values packs to its own code and unpacks back (both halves of
    the gathering multiply, and the table)."""
    from spikeforge.streams.bits import pack_bits, unpack_bits

    codes = torch.arange(256)
    values = ((codes.unsqueeze(-1) >> torch.arange(8)) & 1).bool()  # [256, 8], value j = bit j
    packed = pack_bits(values.reshape(1, -1))
    assert packed.tolist() == [codes.tolist()]
    assert torch.equal(unpack_bits(packed, 256 * 8).view(256, 8), values)


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.float32, torch.bfloat16, torch.float16])
def test_unpack_every_byte_pattern_by_the_bit_definition(dtype):
    """All 256 byte values, two rows, n not a multiple of 8: value j of a row is bit j mod 8 of byte j div 8
    (written out with Python ints), in the dtype the next layer reads."""
    from spikeforge.streams.bits import unpack_bits

    data = torch.arange(256, dtype=torch.uint8).view(2, 128)
    n = 128 * 8 - 3
    out = unpack_bits(data, n, dtype)
    expected = [[(byte >> j) & 1 for byte in row for j in range(8)][:n] for row in data.tolist()]
    assert out.dtype == dtype and out.shape == (2, n)
    assert out.to(torch.int64).tolist() == expected
