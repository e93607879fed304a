"""No host synchronisation in a training step: counted on the CPU with a
dispatch mode (:class:`spikeforge.bench.dispatch.OpCounter`) — scalar reads, tensors made from host values
(a host-to-device copy on CUDA), value-dependent shapes. Before the fix a ResNet-19 bptt step made 55
(λ, κ, V_th and the readout gains rebuilt from Python floats on every call)."""
import pytest
import torch

from spikeforge.bench.dispatch import OpCounter
from spikeforge.methods import get_method
from spikeforge.models import create_model

CASES = [("resnet19", "bptt", 2), ("resnet19", "ssf", 3), ("resnet19", "dsr", 2), ("preact_resnet18", "ssf", 2),
         ("sew_resnet18", "bptt", 2), ("plif_cifar10", "bptt", 2), ("digits_snn", "dsr", 4)]


def one_step(model, x, y, opt):
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize("name,method,T", CASES)
def test_a_training_step_makes_no_host_sync(name, method, T):
    torch.manual_seed(0)
    kw = {"window_mb": 0.01} if method != "bptt" else {}  # several windows of time under ssf/dsr
    model = create_model(name, method=get_method(method, **kw), T=T)
    size = [16 if d is None else d for d in model.input_shape]
    x, y = torch.rand(2, *size), torch.randint(0, model.num_classes, (2,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    one_step(model, x, y, opt)  # first use: lazy builds, optimizer state
    with OpCounter() as count:
        one_step(model, x, y, opt)
    assert count.ops > 50
    assert dict(count.syncs) == {}


def test_op_counter_sees_each_kind_of_sync():
    x = torch.rand(6)
    with OpCounter() as count:
        x.sum().item()
        torch.tensor(0.9)
        x[x > 0.5]
        x.nonzero()
        torch.full((), 0.9)  # filled on the device: not a sync
    assert dict(count.syncs) == {"aten._local_scalar_dense": 1, "aten.lift_fresh": 1, "aten.index": 1,
                                 "aten.nonzero": 1}


class _Unobserved:
    """Iterates a loader with the dispatch modes switched off (its CPU-side indexing is not a device sync)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        from torch.utils._python_dispatch import _disable_current_modes

        with _disable_current_modes():
            it = iter(self.loader)
        while True:
            with _disable_current_modes():
                batch = next(it, None)
            if batch is None:
                return
            yield batch


def test_training_loop_reads_the_host_once_per_step(tmp_path):
    """The engine's loop: metrics accumulate on the device; the one read per step is the non-finite-loss guard
    (the step is not applied when the loss is NaN)."""
    from spikeforge.train import config as C
    from spikeforge.train import engine, loop

    recipe = C.load_recipe("digits")
    # SGD: Adam's step counter is a CPU tensor read with .item() (no device sync on CUDA, but the same op here)
    cfg = C.resolve({**recipe, "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "train": {**recipe["train"], "epochs": 1}})
    d = engine.setup("cpu")
    parts = engine.build_parts(cfg, d)
    parts.loaders["train"] = _Unobserved(parts.loaders["train"])  # data loading is host work, not the step's
    prog = loop.Progress()
    counter = OpCounter()
    steps = []

    def on_step():
        steps.append(prog.global_step)

    with loop.StopFlag() as stop, counter:
        out = loop.train_epoch(parts, prog, stop, on_step)
    assert len(steps) == 22 and 0 <= out["acc"] <= 1
    assert counter.syncs["aten._local_scalar_dense"] == len(steps)
    assert set(counter.syncs) == {"aten._local_scalar_dense"}


@pytest.mark.parametrize("name,method", [("resnet19", "ssf"), ("resnet19", "dsr"), ("plif_cifar10", "ssf")])
def test_no_scalar_is_made_per_window(name, method):
    """λ, κ, V_th and the other per-layer constants are made once per layer call: one step over T windows of one
    step each makes exactly as many 0-dim tensors from host numbers as one step over a single window of all of T
    (and no host sync in either)."""
    seen = {}
    for window_mb in (0.001, 4096.0):
        torch.manual_seed(0)
        model = create_model(name, method=get_method(method, window_mb=window_mb, store_mb=0), T=4)
        size = [16 if d is None else d for d in model.input_shape]
        x, y = torch.rand(2, *size), torch.randint(0, model.num_classes, (2,))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        one_step(model, x, y, opt)
        with OpCounter() as count:
            one_step(model, x, y, opt)
        assert dict(count.syncs) == {}
        seen[window_mb] = count
    small, whole = seen[0.001], seen[4096.0]
    assert small.ops > whole.ops  # the small budget really ran several windows per layer
    assert small.scalars == whole.scalars
