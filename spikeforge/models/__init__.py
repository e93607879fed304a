"""Model zoo: ``create_model(name, num_classes=None, method="bptt", **kw)`` and ``list_models()``."""
from __future__ import annotations

from typing import Any

from torch import nn

from spikeforge.models.output import ModelOutput
from spikeforge.models.registry import MODELS

from spikeforge.models import digits as _digits  # noqa: E402,F401  (registers "digits_snn")
from spikeforge.models import plif_net as _plif_net  # noqa: E402,F401  (plif_{mnist,fmnist,nmnist,cifar10,cifar10dvs,dvsgesture})
from spikeforge.models import preact_resnet as _preact_resnet  # noqa: E402,F401  (preact_resnet{18,20,32,44,56,110})
from spikeforge.models import resnet19 as _resnet19  # noqa: E402,F401  (resnet19)
from spikeforge.models import vgg as _vgg  # noqa: E402,F401  (vgg11_dvs, vggsnn_dvs)
from spikeforge.models import sew_resnet as _sew_resnet  # noqa: E402,F401  (sew_resnet*, spiking_resnet*, plain_net*)
from spikeforge.models import sew_small as _sew_small  # noqa: E402,F401  (sew_7b_gesture, sew_wide7b_cifar10dvs, sew_cifar10_small)
from spikeforge.models import yao as _yao  # noqa: E402,F401  (yao_{lstm,cnn,rnn,birnn,gru}_snn, yao_resmlp12)

__all__ = ["MODELS", "ModelOutput", "create_model", "list_models"]


def create_model(name: str, num_classes: int | None = None, method: str = "bptt", **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``. Keyword arguments that are None are dropped, so unset
    CLI options never override a model's defaults (timm's habit)."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return MODELS.get(name, method=method, **kwargs)


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.names(pattern)
