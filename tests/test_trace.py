"""dyncheck.trace: modules that ran, parameters reached, the path and its description."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dyncheck
from dyncheck.tracing import Trace, default_loss, dense, densify_grads, floating_leaves, leaves, projection, trace
from reference_models.gated import DynamicNet as GatedNet
from reference_models.random_depth import DynamicNet as RandomDepthNet
from reference_models.shared import SharedNet

GATED_FC2 = {"fc2.weight", "fc2.bias"}
GATED_OTHERS = {"fc1.weight", "fc1.bias", "fc3.weight", "fc3.bias"}


@pytest.fixture
def gated() -> GatedNet:
    torch.manual_seed(0)
    return GatedNet(10, 5, 2)


def test_public_class_name():
    assert dyncheck.Trace is Trace


def test_public_name_is_the_function():
    # The module is dyncheck.tracing: a submodule named dyncheck.trace would replace the
    # package attribute `trace` with itself once imported.
    import dyncheck.tracing  # noqa: F401  (what the plugin and every invariant do)

    assert dyncheck.trace is trace


def test_gated_skipped_branch(gated):
    t = trace(gated, torch.randn(2, 10), 0.4)
    assert t.modules == ("fc1", "fc3")
    assert t.path == t.modules
    assert t.reached == frozenset(GATED_OTHERS)
    assert t.describe_path(gated) == "fc1 → fc3"
    assert t.output.shape == (2, 2)


def test_gated_taken_branch(gated):
    t = trace(gated, torch.randn(2, 10), 0.6)
    assert t.modules == ("fc1", "fc2", "fc3")
    assert t.reached == frozenset(GATED_OTHERS | GATED_FC2)
    assert t.describe_path(gated) == "fc1 → fc2 → fc3"


def test_paths_are_hashable_keys(gated):
    x = torch.randn(1, 10)
    paths = {trace(gated, x, c).path for c in (0.1, 0.4, 0.6, 0.9)}
    assert paths == {("fc1", "fc3"), ("fc1", "fc2", "fc3")}


def _depths(seed: int) -> int:
    random.seed(seed)
    return random.randint(0, 3)


def test_random_depth_keeps_repeats_and_folds_them():
    seed = next(s for s in range(100) if _depths(s) == 3)
    torch.manual_seed(0)
    model = RandomDepthNet(4, 3, 2)
    random.seed(seed)
    t = trace(model, torch.randn(1, 4))
    assert t.modules == ("input_layer", "hidden_layer", "hidden_layer", "hidden_layer", "output_layer")
    assert t.describe_path(model) == "input_layer → hidden_layer ×3 → output_layer"
    assert t.describe_path() == "input_layer → hidden_layer ×3 → output_layer"


def test_random_depth_zero_does_not_reach_the_hidden_layer():
    seed = next(s for s in range(100) if _depths(s) == 0)
    model = RandomDepthNet(4, 3, 2)
    random.seed(seed)
    t = trace(model, torch.randn(1, 4))
    assert t.modules == ("input_layer", "output_layer")
    assert "hidden_layer.weight" not in t.reached
    assert "hidden_layer.bias" not in t.reached


class _WithSequential(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        return self.head(self.body(x))


def test_describe_path_leaves_out_containers_when_given_the_model():
    model = _WithSequential()
    t = trace(model, torch.randn(2, 3))
    assert t.modules == ("body", "body.0", "body.1", "head")
    assert t.describe_path(model) == "body.0 → body.1 → head"
    assert t.describe_path() == "body → body.0 → body.1 → head"


def test_describe_path_with_nothing_run():
    class Identity(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.Linear(2, 2)

        def forward(self, x):
            return x * 2

    model = Identity()
    t = trace(model, torch.randn(1, 2))
    assert t.modules == ()
    assert t.describe_path(model) == "(no submodule ran)"
    assert t.reached == frozenset()


def test_the_path_of_a_model_without_submodules_is_the_model_itself():
    # pytorch-forecasting's LSTM (an nn.LSTM subclass) as the target: every failure said
    # "path: (no submodule ran)" although it ran.
    model = nn.LSTM(3, 4, batch_first=True)
    t = trace(model, torch.randn(2, 5, 3))
    assert t.describe_path(model) == "(the model alone: it has no submodules)"


def test_shared_parameter_is_reached_under_every_name():
    torch.manual_seed(0)
    model = SharedNet()
    t = trace(model, torch.randn(2, 8))
    # ModuleDict is never called itself, so it is not in modules either way
    assert t.modules == ("layers.input", "layers.hidden", "layers.output")
    assert t.describe_path(model) == "layers.input → layers.hidden → layers.output"
    assert t.reached == frozenset(
        f"layers.{layer}.{kind}" for layer in ("input", "hidden", "output") for kind in ("weight", "bias")
    )


def test_shared_parameter_reached_by_one_use_only_names_all_aliases():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3, bias=False)
            self.b = nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.a(x)  # b never runs, but its weight is a's

    t = trace(Tied(), torch.randn(1, 3))
    assert t.modules == ("a",)
    assert t.reached == frozenset({"a.weight", "b.weight"})


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.other = nn.Linear(4, 2)

    def forward(self, x):
        return F.linear(x, self.fc.weight)


def test_parameter_used_functionally_is_reached_without_its_module_running():
    t = trace(_Functional(), torch.randn(3, 4))
    assert "fc" not in t.modules
    assert t.modules == ()
    assert t.reached == frozenset({"fc.weight"})


def test_backward_fills_gradients(gated):
    t = trace(gated, torch.randn(2, 10), 0.4, backward=True)
    grads = {name: p.grad for name, p in gated.named_parameters()}
    assert all(grads[name] is not None for name in GATED_OTHERS)
    assert grads["fc2.weight"] is None and grads["fc2.bias"] is None
    assert t.loss is not None and t.loss.requires_grad


def test_no_backward_leaves_gradients_alone(gated):
    trace(gated, torch.randn(2, 10), 0.6)
    assert all(p.grad is None for p in gated.parameters())


def test_custom_loss(gated):
    def first_column(output):
        return output[:, 0].sum()

    x = torch.randn(2, 10)
    t = trace(gated, x, 0.6, loss=first_column, backward=True)
    assert torch.equal(t.loss, t.output[:, 0].sum())
    # only row 0 of fc3 feeds the first column
    assert torch.count_nonzero(gated.fc3.weight.grad[1]) == 0
    assert torch.count_nonzero(gated.fc3.weight.grad[0]) > 0


def test_custom_loss_that_reaches_nothing():
    model = _Functional()
    t = trace(model, torch.randn(3, 4), loss=lambda out: out.detach().sum())
    assert t.reached == frozenset()


def test_kwargs_are_passed(gated):
    t = trace(gated, x=torch.randn(1, 10), control=0.9)
    assert t.modules == ("fc1", "fc2", "fc3")


def test_loss_returning_a_non_tensor_raises(gated):
    with pytest.raises(TypeError, match="^the loss must return a tensor, got float$"):
        trace(gated, torch.randn(1, 10), 0.4, loss=lambda out: 1.0)


def _all_pre_hooks(model: nn.Module) -> list:
    return [hook for module in model.modules() for hook in module._forward_pre_hooks.values()]


def test_hooks_are_removed(gated):
    trace(gated, torch.randn(1, 10), 0.6, backward=True)
    assert _all_pre_hooks(gated) == []


def test_hooks_are_removed_when_the_model_raises():
    model = SharedNet()
    with pytest.raises(RuntimeError):
        trace(model, torch.randn(1, 5))  # wrong width
    assert _all_pre_hooks(model) == []


# default_loss and floating_leaves


@dataclasses.dataclass
class _Out:
    logits: torch.Tensor
    ids: torch.Tensor


def test_default_loss_projects_every_floating_output_in_containers():
    a, b, c = torch.tensor([1.0, 2.0]), torch.tensor([[3.0]]), torch.tensor([4.0], dtype=torch.float64)
    output = (a, {"b": b, "ids": torch.tensor([100])}, [_Out(logits=c, ids=torch.tensor([7]))])
    expected = sum(
        float((projection(t.shape, seed=5, key=name) * t.double()).sum())
        for name, t in [("output[0]", a), ("output[1]['b']", b), ("output[2][0].logits", c)]
    )
    assert default_loss(output, seed=5).item() == pytest.approx(expected, rel=1e-6)


def test_projection_is_fixed_by_seed_and_name_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    first = projection((3, 4), seed=7, key="output")
    torch.manual_seed(123)
    assert torch.equal(projection((3, 4), seed=7, key="output"), first)
    assert first.dtype == torch.float64 and first.device.type == "cpu"
    assert not torch.equal(projection((3, 4), seed=8, key="output"), first)
    assert not torch.equal(projection((3, 4), seed=7, key="output[1]"), first)
    torch.random.set_rng_state(state)
    projection((5,), seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_default_loss_is_the_same_loss_in_float32_and_float64():
    # The two sides of dtype_agreement differentiate the same loss: float32 gets float64's
    # weights, rounded, so its gradient with respect to the output is the weights.
    out32 = torch.randn(2, 3, requires_grad=True)
    out64 = out32.detach().double().requires_grad_()
    default_loss(out32, seed=11).backward()
    default_loss(out64, seed=11).backward()
    assert torch.equal(out64.grad, projection((2, 3), seed=11, key="output"))
    assert torch.equal(out32.grad, out64.grad.float())


def test_a_missing_output_does_not_shift_the_others_weights():
    a, b = torch.randn(2), torch.randn(3)
    alone = default_loss({"b": b}, seed=2)
    both = default_loss({"a": a, "b": b}, seed=2)
    assert torch.allclose(both - alone, default_loss({"a": a}, seed=2))


def test_default_loss_of_a_complex_output_weighs_both_parts():
    z = torch.complex(torch.randn(3), torch.randn(3)).requires_grad_()
    default_loss(z, seed=4).backward()
    weights = projection((3, 2), seed=4, key="output").float()
    assert torch.equal(torch.view_as_real(z.grad), weights)


@pytest.mark.parametrize("last", ["layer_norm", "softmax"])
def test_the_default_loss_sees_through_a_final_layer_norm_or_softmax(last):
    # The sum of a LayerNorm's output is the sum of its bias; a softmax sums to 1: under a
    # sum loss the input's gradient is rounding noise, under the default loss it is real.
    x = (torch.randn(4, 8) * 3).requires_grad_()
    final = (lambda h: F.layer_norm(h, (8,))) if last == "layer_norm" else (lambda h: torch.softmax(h, -1))
    (summed,) = torch.autograd.grad(final(x).sum(), x)
    (projected,) = torch.autograd.grad(default_loss(final(x), seed=0), x)
    assert summed.abs().max() < 1e-5
    assert projected.abs().max() > 1e-2


def test_parameters_before_a_final_norm_get_real_gradients():
    # nn.TransformerEncoder with its final norm: under a sum loss every parameter before the
    # norm gets rounding noise (self_attn.out_proj often exactly zero); not under the default.
    from reference_models.norm_encoder import NormEncoder

    torch.manual_seed(0)
    model = NormEncoder()
    x = torch.randn(2, 5, 8)
    before_norm = [p for n, p in model.named_parameters() if not n.startswith("encoder.norm.")]
    summed = torch.autograd.grad(model(x).sum(), before_norm)
    projected = torch.autograd.grad(default_loss(model(x), seed=0), before_norm)
    assert max(g.abs().max() for g in summed) < 1e-5
    assert min(g.abs().max() for g in projected) > 1e-2


def test_trace_uses_the_default_loss_of_seed_0(gated):
    t = trace(gated, torch.randn(2, 10), 0.6)
    assert torch.equal(t.loss, default_loss(t.output, seed=0))


def test_default_loss_ignores_integers_and_is_none_without_floats():
    assert default_loss((torch.tensor([1, 2]), {"mask": torch.tensor([True])}, "text", 3.0)) is None
    assert default_loss(torch.tensor([1, 2])) is None
    assert default_loss(None) is None


def test_model_without_floating_output_has_no_loss_and_reaches_nothing():
    class Argmax(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x).argmax(-1)

    t = trace(Argmax(), torch.randn(2, 3), backward=True)
    assert t.loss is None
    assert t.reached == frozenset()
    assert t.modules == ("fc",)


def test_floating_leaves_names():
    output = ({"logits": torch.zeros(1), "ids": torch.zeros(1, dtype=torch.long)}, _Out(torch.ones(1), torch.ones(1)))
    names = [name for name, _ in floating_leaves(output)]
    assert names == ["output[0]['logits']", "output[0]['ids']", "output[1].logits", "output[1].ids"]


def test_floating_leaves_packed_sequence_and_prefix():
    packed = nn.utils.rnn.pack_sequence([torch.ones(2, 3), torch.ones(1, 3)])
    assert [name for name, _ in floating_leaves([packed], prefix="out")] == ["out[0].data"]
    assert [name for name, _ in floating_leaves(torch.ones(1))] == ["output"]


def test_a_non_scalar_loss_is_a_clear_error(gated):
    with pytest.raises(TypeError, match=r"the loss must return a scalar tensor, got shape \[2, 2\]; reduce it"):
        trace(gated, torch.randn(2, 10), 0.6, loss=lambda out: out, backward=True)


def test_a_model_output_mapping_is_walked_by_field_name_without_its_none_fields():
    """Hugging Face's ModelOutput: an OrderedDict and a dataclass whose None fields are
    left out of the mapping; every check reads it field by field, named as attributes."""
    from reference_models.hf_style import CausalLMOutput

    cache = ((torch.zeros(1, 2, 3, 4), torch.ones(1, 2, 3, 4)),)
    output = CausalLMOutput(logits=torch.zeros(1, 3, 5), past_key_values=cache)
    assert list(output.keys()) == ["logits", "past_key_values"]  # loss=None is not an item
    assert [name for name, _ in leaves(output)] == [
        "output.logits",
        "output.past_key_values[0][0]",
        "output.past_key_values[0][1]",
    ]


class _Layer:
    def __init__(self) -> None:
        self.keys = torch.zeros(1, 2)
        self.values = torch.ones(1, 2)
        self.device = torch.device("cpu")


class _Cache:
    """A cache object as transformers returns one: tensors held in attributes."""

    def __init__(self) -> None:
        self.layers = [_Layer()]
        self.offloading = False
        self.owner = self  # a reference back must not loop


def test_an_object_holding_tensors_is_walked_by_attribute():
    names = dict(leaves({"cache": _Cache(), "note": object}))
    assert list(names) == [
        "output['cache'].layers[0].keys",
        "output['cache'].layers[0].values",
        "output['cache'].layers[0].device",
        "output['cache'].offloading",
        "output['note']",
    ]


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Point) and other.x == self.x


def test_objects_equal_only_to_themselves_are_compared_by_contents():
    """Two calls never return the same object: an empty cache layer (no tensors yet) must
    compare by what it holds, while a value with its own == compares as a whole."""
    empty = _Layer()
    empty.keys = empty.values = None
    assert list(dict(leaves(empty))) == ["output.keys", "output.values", "output.device"]
    assert [name for name, _ in leaves(_Point(3))] == ["output"]
    assert [name for name, _ in leaves(torch.device("cpu"))] == ["output"]


class _Shift(torch.distributions.Transform):
    """A distributions transform made per call: Transform's == is identity."""

    def __init__(self, shift, meta) -> None:
        super().__init__()
        self.shift, self.meta = shift, meta

    def __call__(self, x):
        return x + self.shift


def test_callable_objects_and_partials_made_per_call_are_compared_by_contents():
    # A flow returns a transform (callable, ==: identity) holding partial(self.meta, c).
    import functools

    from dyncheck.compare import mismatch

    model = nn.Linear(2, 2)
    made = [_Shift(torch.ones(2), functools.partial(model.forward, torch.zeros(1, 2))) for _ in range(2)]
    assert list(dict(leaves(made[0]))) == [
        "output._cache_size", "output._inv", "output.shift", "output.meta.func", "output.meta.args[0]",
    ]
    for (name, a), (_, b) in zip(leaves(made[0]), leaves(made[1])):
        assert not mismatch(a, b), name
    # a bound method of another copy of the model: the same method of each copy's own, the
    # same where the copy's weights are (a submodule an output holds: the expert picked)
    twin, other = nn.Linear(2, 2), nn.Linear(2, 2)
    twin.load_state_dict(model.state_dict())
    assert not mismatch(functools.partial(twin.forward).func, model.forward)
    assert mismatch(other.forward, model.forward) and mismatch(model.train, model.forward)
    assert not mismatch(twin, model) and mismatch(other, model)

    # a closure made on each call: the same code over equal values
    def made(c):
        return lambda z: z + c

    assert not mismatch(made(torch.ones(2)), made(torch.ones(2)))
    assert mismatch(made(torch.ones(2)), made(torch.zeros(2)))
    # functions, methods and modules are not walked: the same object in two calls
    assert [name for name, _ in leaves(model.forward)] == ["output"]
    assert [name for name, _ in leaves(len)] == ["output"]


def test_sparse_gradients_are_read_as_the_dense_tensors_they_stand_for():
    # nn.Embedding(sparse=True) leaves a sparse .grad, which comparisons and isfinite do
    # not take: every check that read gradients crashed inside dyncheck on such a model.
    model = nn.Embedding(5, 3, sparse=True)
    model(torch.tensor([1, 1, 4])).sum().backward()
    assert model.weight.grad.is_sparse
    densify_grads(model)
    grad = model.weight.grad
    assert not grad.is_sparse
    assert grad[1].tolist() == [2.0, 2.0, 2.0] and grad[4].tolist() == [1.0, 1.0, 1.0] and not grad[0].any()
    # dyncheck.trace runs on the user's own model: its gradients stay as torch left them
    user = nn.Embedding(5, 3, sparse=True)
    trace(user, torch.tensor([1, 4]), backward=True)
    assert user.weight.grad.is_sparse
    sparse = torch.sparse_coo_tensor([[0]], [[1.0, 2.0]], (2, 2), check_invariants=True)
    assert [g.tolist() if g is not None else None for g in dense([sparse, None])] == [[[1.0, 2.0], [0.0, 0.0]], None]


def test_every_check_reads_a_sparse_embedding_gradient(dyncheck_run):
    target = "reference_models.text_cnn:TextCNN"
    run = dyncheck_run(
        "--dyncheck", target, "--dyncheck-seed=1", "--dyncheck-max-examples=5",
        "--dyncheck-invariants=finite,grad_isolation,tied_weights,dtype_agreement",
    )
    assert run.outcomes() == {
        f"dyncheck::{target}::{name}": "PASSED" for name in ("finite", "grad_isolation", "tied_weights", "dtype_agreement")
    }, run.text
