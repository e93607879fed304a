"""The one registry mechanism (:mod:`spikeforge.registry`): an unknown name lists the choices and suggests
close ones (every kind: models, methods, surrogates, losses, datasets, ...)."""
import pytest

from spikeforge.registry import Registry


def test_unknown_name_suggests_close_names_and_lists_all():
    reg = Registry("model")
    for name in ("sew_resnet18", "sew_resnet34", "resnet19"):
        reg.register(name, lambda: None)
    with pytest.raises(ValueError, match=r"model 'sew_resnet19' is not registered; did you mean: sew_resnet18, "
                                         r"sew_resnet34, resnet19\? choose one of: resnet19, sew_resnet18, sew_resnet34"):
        reg.get("sew_resnet19")
    with pytest.raises(ValueError, match=r"model 'vgg' is not registered; choose one of: "):
        reg.get("vgg")
