"""dyncheck.cloning.clone makes the copy copy.deepcopy makes, on every reference model and
on the module shapes that take its generic path."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer

from dyncheck.cloning import clone
from dyncheck.target import resolve
from reference_models import GOOD_TARGETS
from reference_models.buggy import BUGGY_TARGETS


def _layout(model: nn.Module) -> list[tuple]:
    """Names, classes, and which names share one module or one parameter."""
    modules: dict[int, int] = {}
    parameters: dict[int, int] = {}
    rows: list[tuple] = []
    for name, module in model.named_modules(remove_duplicate=False):
        rows.append((name, type(module).__qualname__, modules.setdefault(id(module), len(modules))))
    for name, parameter in model.named_parameters(remove_duplicate=False):
        rows.append((name, type(parameter).__name__, parameters.setdefault(id(parameter), len(parameters))))
    return rows


def _attributes(model: nn.Module) -> list[tuple[str, str, type]]:
    return [(name, key, type(value)) for name, module in model.named_modules() for key, value in vars(module).items()]


def _storages(model: nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()] if t.numel()}


def _same_copy(model: nn.Module) -> nn.Module:
    expected, cloned = copy.deepcopy(model), clone(model)
    assert _layout(cloned) == _layout(expected)
    assert _attributes(cloned) == _attributes(expected)
    want, got = expected.state_dict(), cloned.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    assert not _storages(cloned) & _storages(model), "the clone shares a tensor with the original"
    return cloned


@pytest.mark.parametrize("text", [*GOOD_TARGETS, *BUGGY_TARGETS])
def test_clone_is_deepcopy_on_every_reference_model(text):
    model = resolve(text).build()
    if any(isinstance(b, UninitializedBuffer) for b in model.buffers()):
        # copy.deepcopy refuses a lazy layer's buffer before its first call (LazyBatchNorm1d):
        # clone makes a new one, as uninitialised (tests/test_lazy.py)
        with pytest.raises(ValueError, match="uninitialized"):
            copy.deepcopy(model)
        cloned = clone(model)
        assert _layout(cloned) == _layout(model)
        assert _attributes(cloned) == _attributes(model)
        return
    if any(t.grad_fn is not None for m in model.modules() for t in vars(m).values() if isinstance(t, torch.Tensor)):
        # copy.deepcopy refuses a tensor computed from parameters and kept on a module (the
        # legacy weight_norm's weight, causal_tcn): clone holds it detached, the rest as deepcopy
        with pytest.raises(RuntimeError, match="graph leaves"):
            copy.deepcopy(model)
        cloned = clone(model)
        assert _layout(cloned) == _layout(model)
        want, got = model.state_dict(), cloned.state_dict()
        assert list(got) == list(want) and all(torch.equal(got[key], want[key]) for key in want)
        assert not _storages(cloned) & _storages(model), "the clone shares a tensor with the original"
        return
    if any(isinstance(v, staticmethod) for m in model.modules() for v in vars(m).values()):
        # copy.deepcopy refuses to pickle a staticmethod kept on the instance (rotary
        # embeddings' function, causal_attention.RotarySelfAttention): clone shares it
        with pytest.raises(TypeError, match="staticmethod"):
            copy.deepcopy(model)
        cloned = clone(model)
        assert _layout(cloned) == _layout(model)
        assert cloned.rotary.apply_rotary_emb is model.rotary.apply_rotary_emb
        assert not _storages(cloned) & _storages(model), "the clone shares a tensor with the original"
        return
    _same_copy(model)


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Embedding(5, 3)
        self.decoder = nn.Linear(3, 5, bias=False)
        self.decoder.weight = self.encoder.weight
        self.again = self.encoder  # one module under two names
        self.config = {"sizes": [5, 3]}
        self.same_config = self.config
        self.register_buffer("steps", torch.zeros(()))
        self.scale = torch.ones(2)  # a plain tensor attribute


def test_shared_parameters_modules_and_objects_stay_shared():
    cloned = _same_copy(_Tied())
    assert cloned.decoder.weight is cloned.encoder.weight
    assert cloned.again is cloned.encoder
    assert cloned.same_config is cloned.config
    cloned.config["sizes"].append(7)
    assert _Tied().config["sizes"] == [5, 3]


class _Buffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("running", torch.arange(6.0))
        self.register_buffer("alias", self.running.detach())  # another tensor, the same storage
        self.register_buffer("tail", self.running[2:])  # a view of it
        self.register_buffer("marked", torch.ones(2))
        self.marked.note = "kept"  # a tensor with an attribute of its own
        self.register_buffer("strided", torch.zeros(3, 4).t())  # not contiguous
        self.register_buffer("count", torch.tensor(0, dtype=torch.long))
        self.register_buffer("graded", torch.zeros(3))
        self.graded.grad = torch.ones(3)  # a gradient on a tensor that does not require one
        self.kernel = (3, 3)


def test_buffers_keep_what_deepcopy_keeps():
    # Buffers that alone hold their storage are copied directly; shared storage, views,
    # attributes and strides come out as copy.deepcopy makes them.
    model = _Buffers()
    cloned = _same_copy(model)
    assert cloned.alias.untyped_storage().data_ptr() == cloned.running.untyped_storage().data_ptr()
    assert cloned.tail._base is cloned.running or cloned.tail.untyped_storage().data_ptr() == cloned.running.untyped_storage().data_ptr()
    cloned.running.add_(1)
    assert cloned.alias.tolist() == cloned.running.tolist() and cloned.tail.tolist() == cloned.running[2:].tolist()
    assert model.running.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert cloned.marked.note == "kept"
    assert cloned.strided.stride() == model.strided.stride()
    assert cloned.kernel == (3, 3) and cloned.count.dtype == torch.long
    assert cloned.graded.grad is not None and cloned.graded.grad.tolist() == [1.0, 1.0, 1.0]


def test_a_closure_keeps_what_deepcopy_keeps():
    # copy.deepcopy copies functions as they are: the lambda still reads the original
    # (dyncheck.copies detects exactly this), and clone must not differ from it.
    model = nn.Linear(2, 2)
    model.project = lambda x: x @ model.weight.t()
    cloned = clone(model)
    assert cloned.project is model.project


class _OwnDeepcopy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.copies = 0

    def __deepcopy__(self, memo):
        new = _OwnDeepcopy()
        new.copies = self.copies + 1
        return new


class _OwnState(nn.Linear):
    def __getstate__(self):
        state = super().__getstate__()
        state["restored"] = False
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.restored = True


def test_classes_with_their_own_copy_protocol_are_copied_their_way():
    wrapper = nn.Sequential(_OwnDeepcopy(), _OwnState(2, 2))
    cloned = clone(wrapper)
    assert cloned[0].copies == 1
    assert cloned[1].restored is True
    assert _layout(cloned) == _layout(copy.deepcopy(wrapper))


def test_hooks_are_copied_as_deepcopy_copies_them():
    model = nn.Linear(2, 2)
    model.register_forward_hook(functools.partial(lambda scale, module, args, out: out * scale, 2.0))
    cloned = _same_copy(model)
    x = torch.ones(1, 2)
    torch.testing.assert_close(cloned(x), model(x))


def test_non_modules_go_to_deepcopy():
    value = {"a": [torch.ones(1)]}
    cloned = clone(value)
    assert torch.equal(cloned["a"][0], value["a"][0])
    assert cloned["a"] is not value["a"] and cloned["a"][0] is not value["a"][0]


class _Symmetric(nn.Module):
    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.triu() + weight.triu(1).transpose(-1, -2)


def _parametrized() -> nn.Module:
    layer = nn.Linear(4, 4)
    torch.nn.utils.parametrize.register_parametrization(layer, "weight", _Symmetric())
    return layer


@pytest.mark.parametrize("make", [
    _parametrized,
    lambda: torch.nn.utils.parametrizations.weight_norm(nn.Linear(4, 3)),
    lambda: torch.nn.utils.spectral_norm(nn.Linear(4, 3)),
    lambda: nn.LazyLinear(3),
    lambda: nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)),
], ids=["parametrize", "weight_norm", "spectral_norm", "lazy", "batch_norm"])
def test_torch_module_kinds_clone_as_deepcopy_does(make):
    model = make()
    expected, cloned = copy.deepcopy(model), clone(model)
    x = torch.randn(2, 4)
    torch.manual_seed(0)
    want = expected(x)
    torch.manual_seed(0)
    torch.testing.assert_close(cloned(x), want, rtol=0, atol=0)
    assert not {id(p) for p in cloned.parameters()} & {id(p) for p in model.parameters()}


class _TableAnew(nn.Module):
    """A module whose ``__getstate__`` hands out a new dict for an attribute on every call:
    an object nothing in the original holds, freed once its module is copied unless the copy
    keeps it alive."""

    def __init__(self, entry: int):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.table = {"entry": entry}

    def __getstate__(self):
        table = dict(self.table)
        return {**super().__getstate__(), "table": table}


def test_objects_a_getstate_makes_keep_their_ids_for_the_whole_copy():
    # Without keeping them alive, the second module's new dict can land where the first's
    # was freed, and the memo then hands out the first one's copy.
    model = nn.Sequential(*(_TableAnew(i) for i in range(40)))
    cloned = _same_copy(model)
    assert [m.table["entry"] for m in cloned] == list(range(40))


class _LegacyWeightNormBlock(nn.Module):
    """A convolution under the legacy torch.nn.utils.weight_norm (locuslab's TCN), also
    reached through a Sequential: its ``weight`` is a tensor computed from ``weight_g`` and
    ``weight_v``, which copy.deepcopy refuses."""

    def __init__(self) -> None:
        super().__init__()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated for parametrizations.weight_norm
            self.conv = nn.utils.weight_norm(nn.Conv1d(3, 4, 2, padding=1))
        self.net = nn.Sequential(self.conv, nn.ReLU())

    def forward(self, x):
        return self.net(x)[:, :, :-1]


def test_the_legacy_weight_norm_is_cloned_where_deepcopy_refuses():
    model = _LegacyWeightNormBlock()
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(model)
    copied = clone(model)
    x = torch.randn(2, 3, 5)
    assert torch.equal(copied(x), model(x))
    assert copied.conv is copied.net[0] and copied.conv.weight_g is not model.conv.weight_g
    with torch.no_grad():
        copied.conv.weight_g.mul_(2.0)  # the copy's weight follows its own parameters
    assert not torch.equal(copied(x), model(x))


def test_tied_weights_says_the_deepcopy_it_could_not_look_at(dyncheck_run, pytester):
    pytester.makepyfile(legacy_norm="""
        import warnings
        import torch
        from torch import nn
        from dyncheck.strategies import tensors


        class Block(nn.Module):
            __dyncheck__ = {"inputs": {"x": tensors(shape=("batch", 3, "length"))}}

            def __init__(self):
                super().__init__()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    self.conv = nn.utils.weight_norm(nn.Conv1d(3, 4, 2, padding=1))
                self.net = nn.Sequential(self.conv, nn.ReLU())

            def forward(self, x):
                return self.net(x)[:, :, :-1]
    """)
    run = dyncheck_run("--dyncheck", "legacy_norm:Block", "--dyncheck-invariants=tied_weights,state_roundtrip")
    assert run.outcomes() == {
        "dyncheck::legacy_norm:Block::tied_weights": "PASSED", "dyncheck::legacy_norm:Block::state_roundtrip": "PASSED",
    }, run.text
    assert "ties through copy.deepcopy not checked on" in run.text and "parametrizations.weight_norm" in run.text
