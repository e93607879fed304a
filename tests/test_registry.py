"""The one registry mechanism (:mod:`spikeforge.registry`): an unknown name lists the choices and suggests
close ones (every kind: models, methods, surrogates, losses, datasets, ...)."""
import pytest

from spikeforge.registry import Registry, build_from, lookup_in


def test_unknown_name_suggests_close_names_and_lists_all():
    reg = Registry("model")
    for name in ("sew_resnet18", "sew_resnet34", "resnet19"):
        reg.register(name, lambda: None)
    with pytest.raises(ValueError, match=r"model 'sew_resnet19' is not registered; did you mean: sew_resnet18, "
                                         r"sew_resnet34, resnet19\? choose one of: resnet19, sew_resnet18, sew_resnet34"):
        reg.get("sew_resnet19")
    with pytest.raises(ValueError, match=r"model 'vgg' is not registered; choose one of: "):
        reg.get("vgg")


def _surrogates() -> Registry:
    reg = Registry("surrogate")

    @reg.register("atan")
    class ATan:
        def __init__(self, alpha: float = 2.0) -> None:
            self.alpha = alpha

        def __call__(self, x):
            return x

    reg.register("sigmoid", lambda alpha=4.0: ("sigmoid", alpha))
    return reg


def test_build_from_a_name_a_mapping_or_a_callable():
    reg = _surrogates()
    assert reg.build("atan").alpha == 2.0
    assert reg.build("atan", alpha=3.0).alpha == 3.0
    assert reg.build({"name": "atan", "alpha": 4.0}).alpha == 4.0
    assert reg.build({"name": "atan", "alpha": 4.0}, alpha=3.0).alpha == 4.0  # the mapping wins over defaults
    assert reg.build({"name": "atan"}, alpha=3.0).alpha == 3.0
    mine = reg.build("atan")
    assert reg.build(mine) is mine
    fn = abs
    assert reg.build(fn) is fn


def test_build_errors_name_the_kind_the_name_the_options_and_the_valid_ones():
    reg = _surrogates()
    with pytest.raises(ValueError) as err:
        reg.build({"name": "atan", "beta": 1.0})
    assert str(err.value) == ("surrogate 'atan': bad option in {'beta': 1.0}: _surrogates.<locals>.ATan.__init__() got an "
                              "unexpected keyword argument 'beta'; valid options: alpha")
    with pytest.raises(ValueError) as err:
        reg.build("sigmoid", alpha=1.0, slope=2.0)
    assert str(err.value) == ("surrogate 'sigmoid': bad option in {'alpha': 1.0, 'slope': 2.0}: "
                              "_surrogates.<locals>.<lambda>() got an unexpected keyword argument 'slope'; "
                              "valid options: alpha")
    with pytest.raises(ValueError) as err:
        reg.build({"name": "arctan", "alpha": 2.0})
    assert str(err.value) == "surrogate 'arctan' is not registered; did you mean: atan? choose one of: atan, sigmoid"
    with pytest.raises(ValueError) as err:
        reg.build({"alpha": 2.0})
    assert str(err.value) == "surrogate mapping needs a 'name', got {'alpha': 2.0}"
    with pytest.raises(ValueError) as err:
        reg.build(abs, alpha=2.0)
    assert str(err.value) == "surrogate: keyword arguments ['alpha'] need a registered name, got a callable"
    with pytest.raises(TypeError, match="surrogate must be a name or a callable, got int"):
        reg.build(3)


def test_build_lists_passed_on_options_and_unreadable_signatures():
    def net(method: str = "bptt", **kw):
        raise TypeError("Net.__init__() got an unexpected keyword argument 'width'")

    reg = Registry("model")
    reg.register("net", net)
    reg.register("builtin", dict.fromkeys)
    with pytest.raises(ValueError) as err:
        reg.build("net", method="ssf", width=3)
    assert str(err.value) == ("model 'net': bad option in {'method': 'ssf', 'width': 3}: Net.__init__() got an "
                              "unexpected keyword argument 'width'; valid options: method, **kw")
    with pytest.raises(ValueError, match=r"^model 'builtin': bad option in \{'x': 1\}: .*; valid options: "):
        reg.build("builtin", x=1)


def test_lookup_in_a_plain_mapping():
    table = {"quadrant": 1, "dilated": 2}
    assert lookup_in("window kind", table, "dilated") == 2
    with pytest.raises(ValueError) as err:
        lookup_in("window kind", table, "dilate")
    assert str(err.value) == "window kind 'dilate' is not registered; did you mean: dilated? choose one of: dilated, quadrant"
    assert build_from("fusion", {"mean": lambda: "mean"}, {"name": "mean"}) == "mean"
