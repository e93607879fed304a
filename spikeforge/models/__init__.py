"""Model zoo: ``create_model(name, num_classes=None, method="bptt", **kw)`` and ``list_models()``.

Owns the architectures (SPEC §7) and their heads; the method a model is built with decides its neurons and head.
Imports the core, ``neuron``, ``layers`` and ``methods``; never ``losses``, ``tools``, ``train`` or the commands.
"""
from __future__ import annotations

import textwrap
from typing import Any

from torch import nn

from spikeforge.output import ModelOutput
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


def create_model(name: str, num_classes: int | None = None, method: Any = "bptt", **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``.

    Args:
        name: a registered model (all are listed below; ``list_models("sew*")`` filters them).
        num_classes: classes K of the readout (default: the model's data set).
        method: ``"bptt"``, ``"ssf"``, ``"dsr"`` or a :class:`~spikeforge.methods.Method` from
            ``get_method(name, **options)``: the same forward spikes, another backward.
        **kwargs: the builder's options, e.g. ``T`` (time steps) and ``neuron`` (a mapping: ``kind``
            ``if``/``lif``/``plif``, ``decay``, ``v_threshold``, ``v_reset``, ``surrogate``); options that
            are None are dropped, so unset CLI options never override a model's defaults (timm's habit).
            An option the builder does not take raises.

    Shape:
        Input ``[B, *input_shape]`` (static samples, repeated over the model's T steps) or
        ``[T, B, *input_shape]`` (sequences, e.g. event frames); ``model.input_shape`` is one sample's shape.
        ``model(x)`` returns logits ``[B, K]``; ``model.forward_output(x)`` also the per-step outputs ``[T, B, K]``.

    Returns:
        the model (an ``nn.Module``); ``sum(p.numel() for p in model.parameters())`` its size
        (``spikeforge models`` lists every name with its parameter count).

    Example:
        >>> model = create_model("digits_snn", method="ssf", T=4)
        >>> model(torch.rand(2, 64)).shape
        torch.Size([2, 10])

    Registered models:
    {names}
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return MODELS.build(name, method=method, **kwargs)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching the shell pattern ``pattern`` (``"sew*"``, ``"*resnet*"``)."""
    return MODELS.names(pattern)


create_model.__doc__ = (create_model.__doc__ or "").replace(
    "{names}", textwrap.fill(", ".join(MODELS.names()), 100, subsequent_indent="    "))
