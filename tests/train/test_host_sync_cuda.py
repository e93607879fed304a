"""On a GPU, the direct check of "no host synchronisation in a training step" (the CPU tests count the ops with a
dispatch mode instead): one step of each method under ``torch.cuda.set_sync_debug_mode("error")``, which raises on
any synchronising call. Skipped without CUDA."""
import pytest
import torch

from spikeforge.methods import get_method
from spikeforge.models import create_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("method", ["bptt", "ssf", "dsr"])
@pytest.mark.parametrize("window_mb", [None, 0.01])  # device-sized windows, and several windows per layer
def test_a_cuda_training_step_does_not_synchronise(method, window_mb):
    if method == "bptt" and window_mb is not None:
        pytest.skip("bptt has no windows")
    torch.manual_seed(0)
    kw = {} if window_mb is None else {"window_mb": window_mb}
    model = create_model("resnet19", method=get_method(method, **kw), T=4).cuda()
    x, y = torch.rand(8, 3, 32, 32, device="cuda"), torch.randint(0, 10, (8,), device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    step()  # first use: kernel builds, the window budget, optimizer state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
