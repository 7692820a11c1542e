"""dtype_agreement on models that cannot run the float64 copy as it is: a kernel that refuses
float64 (a skip), state .to() does not reach (a finding that names it), random draws in the
model's own dtype (lined up, not a failure), and the problem's own conditioning."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from dyncheck.casting import diagnose

ONLY = "--dyncheck-invariants=dtype_agreement"
SKIP_TAIL = (
    "a fused, grouped or quantised kernel often takes lower precisions only. Give it a float64 path to "
    "compare, or declare Spec(skip={'dtype_agreement': ...})."
)


def lines_of(run, target):
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "FAILED"}, run.text
    return run.failure("::dtype_agreement").strip().splitlines()


# --------------------------------------------------------------------------- diagnose


class _RefusesDouble(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        if x.dtype == torch.float64:
            raise RuntimeError("\"grouped_gemm\" not implemented for 'Double'")
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


class _Fused(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return _RefusesDouble.apply(self.fc(x))


class _Quantised(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.quantize_per_tensor(self.fc(x), 0.1, 0, torch.quint8).dequantize()


class _Attribute(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.tables = [torch.eye(3)]

    def forward(self, x):
        return self.fc(x) @ self.tables[0]


class _Closure(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        mixing = torch.eye(3)
        self.mix = lambda h: h @ mixing

    def forward(self, x):
        return self.mix(self.fc(x))


_SCALE = torch.eye(3)


class _Global(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) @ _SCALE


class _Cast(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = x.float()
        return self.fc(h.unsqueeze(0).squeeze(0))


class _Asserts(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        assert x.dtype == torch.float32, "float32 only"
        return self.fc(x)


def _diagnose(model):
    def run(m):
        m(torch.randn(2, 4, dtype=torch.float64)).sum().backward()

    return diagnose(run, model, torch.float64)


@pytest.mark.parametrize(
    ("model", "op", "error"),
    [
        (_Fused, "grouped_gemm", "RuntimeError: \"grouped_gemm\" not implemented for 'Double'"),
        (_Quantised, "quantize_per_tensor", "RuntimeError: Quantize only works on Float Tensor, got Double"),
    ],
)
def test_a_kernel_that_refuses_float64_is_told_apart(model, op, error):
    failure = _diagnose(model())
    assert (failure.kind, failure.op, failure.error) == ("refused", op, error)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_a_real_quantised_kernel_refuses_float64():
    # torch's own dynamic quantised Linear: the op sees only float64 inputs, and refuses.
    model = nn.Sequential(torch.ao.nn.quantized.dynamic.Linear(4, 3))
    failure = diagnose(lambda m: m(torch.randn(2, 4, dtype=torch.float64)), model, torch.float64)
    assert (failure.kind, failure.op) == ("refused", "linear_dynamic")


@pytest.mark.parametrize(
    ("model", "culprit", "fix"),
    [
        (_Attribute, "model.to(torch.float64) did not reach tables[0], a float32 tensor kept in a plain attribute "
         "(not a parameter or buffer)", "Register it as a buffer (self.register_buffer('tables', tensor))"),
        (_Closure, "model.to(torch.float64) did not reach mixing, a float32 tensor held in the closure of mix",
         "Keep it on the model (a parameter, buffer or submodule) and reach it through self in forward"),
        (_Global, "model.to(torch.float64) did not reach _SCALE, a module-level float32 tensor used in forward",
         "Keep it on the model as a buffer"),
    ],
)
def test_state_the_cast_does_not_reach_is_named(model, culprit, fix):
    failure = _diagnose(model())
    assert failure.kind == "unreached"
    assert failure.culprit == culprit
    assert failure.fix.startswith(fix)
    assert failure.op == "Tensor.matmul"
    assert failure.error == "RuntimeError: expected m1 and m2 to have the same dtype, but got: double != float"


def test_a_module_in_a_plain_list_is_named_with_the_fix():
    from reference_models.buggy.plain_list_layers import Model

    model = Model()
    failure = diagnose(lambda m: m(torch.randn(2, 8, dtype=torch.float64)), model, torch.float64)
    assert failure.kind == "unreached"
    assert failure.culprit == (
        "model.to(torch.float64) did not reach blocks[0].weight, a float32 tensor of blocks[0], a module kept in a "
        "plain list, tuple or dict: not a submodule, so .to(), state_dict() and parameters() do not reach it"
    )
    assert failure.fix == "Hold such modules in nn.ModuleList or nn.ModuleDict, which register them as submodules."


def test_a_float32_tensor_made_in_forward_is_followed_to_its_line():
    failure = _diagnose(_Cast())
    assert failure.kind == "unreached"
    # Followed through unsqueeze and squeeze back to the cast that made it.
    assert re.fullmatch(
        r"forward makes a float32 tensor whatever the input's dtype, at \S*test_dtype_agreement\.py:\d+: "
        r"`h = x\.float\(\)`",
        failure.culprit,
    ), failure.culprit
    assert failure.op == "linear"


def test_another_failure_is_not_about_the_dtype():
    assert _diagnose(_Asserts()) is None
    assert _diagnose(nn.Linear(4, 3)) is None  # and one that runs


# --------------------------------------------------------------------------- the check

FUSED_ON_ONE_PATH = """
import torch
from torch import nn
from reference_models.fused_mlp import _FusedBiasGelu

class Model(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = self.fc1(x)
        if control > 0.5:  # the fused kernel runs on this path only
            h = _FusedBiasGelu.apply(h, self.bias)
        else:
            h = torch.relu(h + self.bias)
        return self.fc2(h)
"""


def test_a_refusing_kernel_is_a_skip_that_names_it(dyncheck_run):
    target = "reference_models.fused_mlp:FusedMLP"
    run = dyncheck_run("--dyncheck", target, ONLY)
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "SKIPPED"}, run.text
    reason = run.skip_reason(f"dyncheck::{target}::dtype_agreement")
    assert re.fullmatch(
        r"the float64 reference cannot run: fused_bias_gelu refuses float64 \(RuntimeError: \"fused_bias_gelu\" "
        r"not implemented for 'Double'\) at \S*reference_models/fused_mlp\.py:\d+: `raise RuntimeError\(.*\)`; "
        + re.escape(SKIP_TAIL),
        reason,
    ), reason


EAGER_EXPERTS = """
from reference_models.grouped_experts import GroupedExpertsMoE

def eager():
    model = GroupedExpertsMoE()
    model.set_experts_implementation("eager")
    return model
"""


def test_grouped_experts_name_the_switch_to_plain_matmuls_which_then_compare(dyncheck_run, pytester):
    target = "reference_models.grouped_experts:GroupedExpertsMoE"
    run = dyncheck_run("--dyncheck", target, ONLY)
    reason = run.skip_reason(f"dyncheck::{target}::dtype_agreement")
    assert reason.startswith("the float64 reference cannot run: _grouped_mm refuses float64"), reason
    assert reason.endswith(
        'Give it a float64 path to compare (model.set_experts_implementation("eager") runs its experts as plain '
        "matmuls, which take float64: check a factory that returns the model so set), or declare "
        "Spec(skip={'dtype_agreement': ...})."
    ), reason
    # What the skip says to do compares (the model's own default is left as it was).
    pytester.makepyfile(eager_experts=EAGER_EXPERTS)
    run = dyncheck_run("--dyncheck", "eager_experts:eager", ONLY)
    assert run.outcomes() == {"dyncheck::eager_experts:eager::dtype_agreement": "PASSED"}, run.text


def test_a_batch_in_a_dataclass_is_cast_field_by_field(dyncheck_run, pytester):
    # a batch held in a dataclass (or tensordict's TensorDict, torchrl's input) was left in
    # float32 while the model was cast: "the model cannot be cast to float64", naming the
    # model's own weights
    pytester.makepyfile(
        batch_class="""
        import dataclasses

        import torch
        from hypothesis import strategies as st
        from torch import nn

        import dyncheck
        from dyncheck.strategies import tensors

        @dataclasses.dataclass(frozen=True)
        class Batch:
            frames: torch.Tensor
            steps: int = dataclasses.field(default=0, init=False)

            def __post_init__(self):  # run once: run again on a copy, it would add an axis twice
                object.__setattr__(self, "frames", self.frames.unsqueeze(1))

        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(4, 8, batch_first=True)

            def forward(self, batch):
                return self.gru(batch.frames)[0]

        spec = dyncheck.Spec(Encoder, inputs={"batch": st.builds(Batch, tensors(shape=("batch", 4)))})
        """
    )
    run = dyncheck_run("--dyncheck", "batch_class:spec", ONLY)
    assert run.outcomes() == {"dyncheck::batch_class:spec::dtype_agreement": "PASSED"}, run.text


def test_examples_the_refusing_kernel_does_not_reach_are_compared(dyncheck_run, pytester):
    pytester.makepyfile(onepath=FUSED_ON_ONE_PATH)
    run = dyncheck_run("--dyncheck", "onepath:Model", ONLY)
    assert run.outcomes() == {"dyncheck::onepath:Model::dtype_agreement": "PASSED"}, run.text


def test_a_plain_tensor_attribute_is_named(dyncheck_run):
    target = "reference_models.buggy.tensor_attribute:Model"
    lines = lines_of(dyncheck_run("--dyncheck", target, ONLY), target)
    assert lines[2] == (
        "The model cannot be cast to float64: model.to(torch.float64) did not reach centering, a float32 tensor "
        "kept in a plain attribute (not a parameter or buffer); the float64 copy fails where it meets float64 "
        "tensors."
    )
    assert lines[3] == "  error: RuntimeError: expected m1 and m2 to have the same dtype, but got: double != float"
    assert re.fullmatch(
        r"  where: Tensor\.matmul at \S*reference_models/buggy/tensor_attribute\.py:\d+: "
        r"`h = torch\.relu\(self\.fc1\(x\)\) @ self\.centering`",
        lines[4],
    ), lines[4]
    assert lines[5] == (
        "  Register it as a buffer (self.register_buffer('centering', tensor)) so that .to() casts and moves it "
        "with the model."
    )


def test_a_float32_tensor_made_in_forward_is_named_by_its_line(dyncheck_run):
    target = "reference_models.buggy.default_dtype_state:Model"
    lines = lines_of(dyncheck_run("--dyncheck", target, ONLY), target)
    assert re.fullmatch(
        r"The model cannot be cast to float64: forward makes a float32 tensor whatever the input's dtype, at "
        r"\S*reference_models/buggy/default_dtype_state\.py:\d+: `h = torch\.zeros\(x\.size\(0\), "
        r"self\.hidden_size\)  # BUG: .*`; the float64 copy fails where it meets float64 tensors\.",
        lines[2],
    ), lines[2]
    assert lines[3] == "  error: RuntimeError: mat1 and mat2 must have the same dtype, but got Float and Double"
    assert re.fullmatch(
        r"  where: gru_cell at \S*reference_models/buggy/default_dtype_state\.py:\d+: `h = self\.cell\(x, h\)`",
        lines[4],
    ), lines[4]
    assert lines[5].startswith("  Make tensors in forward in the input's dtype and device (torch.zeros(n, ")


OUTSIDE_CLOSURE = """
import torch
from torch import nn

_SHARED = nn.Linear(4, 4)  # a module outside any model


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        shared = _SHARED
        self.project = lambda h: shared(h)

    def forward(self, x):
        return self.project(self.fc(x))
"""


def test_a_closure_over_a_module_outside_the_model_is_named(dyncheck_run, pytester):
    # (reference_models.buggy.closure_tie's closure points at its own encoder in a fresh
    # build, so its cast reaches it: copies are built anew, see dyncheck.copies.)
    pytester.makepyfile(outside=OUTSIDE_CLOSURE)
    target = "outside:Model"
    lines = lines_of(dyncheck_run("--dyncheck", target, ONLY), target)
    assert lines[2] == (
        "The model cannot be cast to float64: model.to(torch.float64) did not reach shared.weight, a float32 "
        "tensor of a module outside the model, reached through the closure of project; the float64 copy "
        "fails where it meets float64 tensors."
    )


def test_a_crash_in_float32_too_is_the_models_own(dyncheck_run):
    target = "reference_models.buggy.inplace_branch:Model"
    run = dyncheck_run("--dyncheck", target, ONLY)
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "FAILED"}, run.text
    text = run.failure("::dtype_agreement")
    assert text.startswith(f"dtype_agreement: {target} raised in backward on float32 in eval mode"), text
    # why this check, and not the gradient checks, meets a backward that needs training
    assert "the agreement checks run forward and backward in eval mode (the others differentiate in train" in text


# --------------------------------------------------------------------------- random streams

NOISY_AND_UNSTABLE = """
import torch
from torch import nn

class Model(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.fc = nn.Linear(input_size, output_size)

    def forward(self, x):
        logits = self.fc(x) + 0.01 * torch.rand_like(x[..., :1])
        return logits - logits.exp().sum(dim=-1, keepdim=True).log()  # no max shift
"""

NOISY_BACKWARD = """
import torch
from torch import nn

class _NoisyGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * (0.9 + 0.2 * torch.rand_like(grad))  # drawn in the gradient's dtype

class Model(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.fc = nn.Linear(input_size, output_size)

    def forward(self, x):
        return _NoisyGradient.apply(self.fc(x))
"""

STREAMS = (
    "the model draws random numbers even in eval mode in its own dtype (another seed changes its output), and "
    "float32 and float64 draw different streams from one seed, which dyncheck could not line up: draw in one "
    "dtype and cast (torch.rand(x.shape, dtype=torch.float32).to(x.dtype)) so both copies draw the same "
    "numbers, or declare Spec(skip={'dtype_agreement': ...})"
)


def test_draws_in_the_models_own_dtype_are_lined_up():
    from dyncheck.agreement import compare, run_config
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.dtype_agreement import FLOAT32, FLOAT64, DtypeAgreement
    from dyncheck.streams import Draws
    from dyncheck.target import resolve

    target = resolve("reference_models.noisy_hidden:NoisyHidden")
    context = Context(target)
    example = Example({"x": torch.randn(3, 10)}, 5, {"batch": 3})
    reference = run_config(context.fresh_model(), target, example, FLOAT64)
    single = run_config(context.fresh_model(), target, example, FLOAT32)
    # As they are, the two streams differ by far more than float32's rounding.
    assert compare(reference, single, floor=DtypeAgreement.floor)
    recorded = Draws()
    with recorded:
        reference = run_config(context.fresh_model(), target, example, FLOAT64)
    assert recorded.calls == [("uniform_", (torch.float64,))]
    lined_up = Draws(torch.float32, recorded.calls, torch.float64)
    with lined_up:
        single = run_config(context.fresh_model(), target, example, FLOAT32)
    assert (lined_up.aligned, lined_up.unaligned) == (1, 0)
    assert compare(reference, single, floor=DtypeAgreement.floor) == []


def test_a_stochastic_model_that_is_unstable_still_fails(dyncheck_run, pytester):
    pytester.makepyfile(noisy=NOISY_AND_UNSTABLE)
    lines = lines_of(dyncheck_run("--dyncheck", "noisy:Model", ONLY), "noisy:Model")
    text = "\n".join(lines)
    assert "output differs on float32 from float64 (reference): Mismatched elements" in text
    assert (
        "  The model draws random numbers in its own dtype; dyncheck drew the float32 copy's in float64 too, so "
        "the two runs had the same numbers and the difference is in the arithmetic."
    ) in lines


def test_draws_out_of_sight_are_a_skip_that_says_how_to_make_the_streams_agree(dyncheck_run, pytester):
    pytester.makepyfile(noisygrad=NOISY_BACKWARD)
    run = dyncheck_run("--dyncheck", "noisygrad:Model", ONLY)
    assert run.outcomes() == {"dyncheck::noisygrad:Model::dtype_agreement": "SKIPPED"}, run.text
    assert run.skip_reason("dyncheck::noisygrad:Model::dtype_agreement") == STREAMS


def test_a_generator_the_seed_does_not_reach_still_fails_with_a_note(dyncheck_run):
    target = "reference_models.buggy.unseeded_generator:Model"
    lines = lines_of(dyncheck_run("--dyncheck", target, ONLY), target)
    assert (
        "  Run twice with the same seed, the float64 copy gives different results too: the model draws from a "
        "generator the seed does not reach, or keeps state between calls (see determinism)."
    ) in lines


# --------------------------------------------------------------------------- conditioning

class _Steep(nn.Module):
    """tanh of a steep multiple of two features that nearly cancel: float32 cannot even
    represent the inputs and weights finely enough to say which feature is larger."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            w = torch.tensor([0.3, -0.7, 0.2, 0.9])
            self.fc.weight.copy_(torch.stack([w, w + 2e-8]))

    def forward(self, x):
        a = self.fc(x)
        return torch.tanh(1e4 * (a[:, :1] - a[:, 1:]))


def test_a_disagreement_the_problems_conditioning_explains_is_not_reported():
    from hypothesis import strategies as st

    from dyncheck import Spec
    from dyncheck.agreement import compare, run_config
    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.dtype_agreement import FLOAT32, FLOAT64, DtypeAgreement
    from dyncheck.target import resolve_spec

    x = torch.tensor([[1000.0, 999.0, -1000.0, 1000.0]])
    target = resolve_spec(Spec(_Steep, inputs={"x": st.just(x)}), text="steep")
    context = Context(target)
    example = Example({"x": x}, 0, {})
    reference = run_config(context.fresh_model(), target, example, FLOAT64)
    single = run_config(context.fresh_model(), target, example, FLOAT32)
    # float32 and float64 disagree by far more than float32's tolerance ...
    assert compare(reference, single, floor=DtypeAgreement.floor)
    # ... and the float64 copy moves as much when its inputs and weights move by float32's
    # rounding: the problem is ill-conditioned at this input, not the arithmetic unstable.
    DtypeAgreement().check(context, example)
    # An overflow is not explained away: the unshifted log-sum-exp still fails.
    from reference_models.buggy.naive_log_softmax import Model

    big = torch.full((1, 4), 1000.0)
    target = resolve_spec(Spec(Model, init={"input_size": 4, "output_size": 3}, inputs={"x": st.just(big)}))
    with pytest.raises(InvariantViolation, match="output differs on float32 from float64"):
        DtypeAgreement().check(Context(target), Example({"x": big}, 0, {}))


def test_exact_attention_keeps_saturated_attention_gradients_comparable():
    # The fused attention kernel's float32 backward recomputes the softmax from a rounded
    # log-sum-exp: at logits in the hundreds of thousands its query/key gradients are noise.
    from dyncheck.agreement import exact_attention
    from dyncheck.tracing import default_loss

    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(1, 5, 8) * 1000

    def gradient(dtype):
        module = nn.MultiheadAttention(8, 2, batch_first=True).to(dtype)
        module.load_state_dict(attention.state_dict())
        out = module(x.to(dtype), x.to(dtype), x.to(dtype), need_weights=False)[0]
        default_loss(out, seed=0).backward()
        return module.in_proj_weight.grad.double()

    scale = gradient(torch.float64).abs().max()
    fused = (gradient(torch.float32) - gradient(torch.float64)).abs().max() / scale
    with exact_attention():
        exact = (gradient(torch.float32) - gradient(torch.float64)).abs().max() / scale
    assert fused > 1e-3 and exact < 1e-5, (fused, exact)


def test_the_random_streams_of_float32_and_float64_differ():
    # Why the lining up exists: one seed, two dtypes, two streams.
    torch.manual_seed(0)
    single = torch.rand(4)
    torch.manual_seed(0)
    double = torch.rand(4, dtype=torch.float64)
    assert not torch.allclose(single.double(), double, atol=1e-3)


# --------------------------------------------------------------------------- float32's own rounding

POST_NORM = """
import torch
from torch import nn
import dyncheck
from dyncheck.strategies import tensors

def make():
    return nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)

spec = dyncheck.Spec(make, inputs={"src": tensors(shape=("batch", "time", 8))})
"""


def test_attention_saturated_by_large_inputs_is_float32_rounding_not_a_bug(dyncheck_run, pytester):
    # Raw inputs up to 1e3 saturate a post-norm layer's attention: its outputs agree, but its
    # query and key gradients are float32 rounding noise, which a one-ulp move reshuffles.
    pytester.makepyfile(postnorm=POST_NORM)
    run = dyncheck_run("--dyncheck", "postnorm:spec", ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::postnorm:spec::dtype_agreement": "PASSED"}, run.text


def test_a_forward_that_cancels_its_own_digits_is_still_reported(dyncheck_run):
    target = "reference_models.buggy.naive_variance:Model"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "FAILED"}, run.text
    assert "output differs on float32 from float64 (reference)" in run.failure("::dtype_agreement")
    # The cancellation is in forward's own code between the two layers, and the report says so.
    assert (
        "  where it starts: in forward's own code after fc1, whose output agrees, before fc2, whose inputs on "
        "float32 already differ:\n    args[0] against the float64 copy:\n      Mismatched elements:"
    ) in run.failure("::dtype_agreement")


NAIVE_NORM = """
import torch
from torch import nn


class NaiveNorm(nn.Module):
    # E[h^2] - E[h]^2 on activations near 1000: float32 keeps no digit of the variance
    def forward(self, h):
        mean = h.mean(-1, keepdim=True)
        return (h - mean) / torch.sqrt(((h * h).mean(-1, keepdim=True) - mean * mean).clamp_min(0) + 1e-5)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.norm = NaiveNorm()
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x) + 1000.0))


class GradientOnly(nn.Module):
    # The same outputs in both dtypes; a hand-written backward scales float32's gradient.
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return _Lossy.apply(self.fc(x))


class _Lossy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h):
        return h.clone()

    @staticmethod
    def backward(ctx, g):
        return g * (1.5 if g.dtype == torch.float32 else 1.0)
"""


def test_the_module_where_float32_loses_its_digits_is_named(dyncheck_run, pytester):
    pytester.makepyfile(naive_norm=NAIVE_NORM)
    run = dyncheck_run("--dyncheck", "naive_norm:Model", ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::naive_norm:Model::dtype_agreement": "FAILED"}, run.text
    lines = run.failure("::dtype_agreement").splitlines()
    at = next(i for i, line in enumerate(lines) if "where it starts" in line)
    assert lines[at] == (
        "  where it starts: norm (naive_norm.NaiveNorm) — its inputs on float32 agree with the float64 copy's, "
        "its output does not:"
    ), lines
    assert lines[at + 1] == "    output against the float64 copy:", lines


AMPLIFIED = """
import torch
from torch import nn


class Shift(nn.Module):
    def forward(self, h):
        return (h + 1e4) - 1e4  # keeps about 3 decimals of h in float32: the loss, under 1e-3


class Wave(nn.Module):
    def forward(self, h):
        return torch.sin(300.0 * h)  # exact enough for exact inputs: it only amplifies


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.shift, self.wave, self.fc2 = nn.Linear(4, 8), Shift(), Wave(), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.wave(self.shift(self.fc1(x))))
"""


def test_a_module_that_only_amplifies_an_earlier_loss_is_not_named():
    # Run in float32 on the float64 copy's inputs, Wave gives the float64 copy's output: the
    # digits were lost before it, by less than the walk's tolerance. Nothing is named.
    details = _dtype_details(AMPLIFIED, "amplified_dtype", torch.randn(2, 4, generator=torch.Generator().manual_seed(0)))
    assert not any("where it starts" in line for line in details), details


NAIVE_SOFTMAX = """
import torch
from torch import nn


class NaiveSoftmax(nn.Module):
    def forward(self, z):
        e = z.exp()  # overflows to inf past about 88 in float32: inf / inf is NaN
        return e / e.sum(-1, keepdim=True)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.softmax, self.head = nn.Linear(4, 8), NaiveSoftmax(), nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.softmax(self.fc(x)))
"""


def _dtype_details(source: str, name: str, x: torch.Tensor) -> tuple[str, ...]:
    import sys
    import types

    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from dyncheck.invariants._base import Context
    from dyncheck.invariants.dtype_agreement import DtypeAgreement
    from dyncheck.target import resolve

    module = types.ModuleType(name)
    exec(source, module.__dict__)
    sys.modules[name] = module
    try:
        with pytest.raises(InvariantViolation) as raised:
            DtypeAgreement().check(Context(resolve(f"{name}:Model")), Example({"x": x}, 0, {"batch": 2}))
    finally:
        del sys.modules[name]
    return raised.value.details


def test_a_float32_overflow_to_nan_is_placed():
    # NaN in float32 where float64 is finite: the run repeats (NaN where NaN was), and the
    # module that overflows is named.
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0)) * 100
    details = _dtype_details(NAIVE_SOFTMAX, "naive_softmax_dtype", x)
    assert any(
        line.startswith("where it starts: softmax (naive_softmax_dtype.NaiveSoftmax) — its inputs on float32 agree")
        for line in details
    ), details


def test_a_difference_in_the_gradients_alone_is_not_placed_in_forward(dyncheck_run, pytester):
    pytester.makepyfile(naive_norm=NAIVE_NORM)
    run = dyncheck_run("--dyncheck", "naive_norm:GradientOnly", ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::naive_norm:GradientOnly::dtype_agreement": "FAILED"}, run.text
    text = run.failure("::dtype_agreement")
    assert "fc.bias.grad differs on float32 from float64" in text, text
    assert "where it starts" not in text, text


def test_a_saturated_softmax_whose_backward_cancels_in_float32_is_rounding_not_a_bug():
    # Inputs up to 1e3 saturate the classifier's softmax: its largest probability rounds to
    # exactly 1.0 in float32, and the backward's g - sum(p * g) cancels to exactly 0 for that
    # class at every nearby input (a one-ulp move does not show it), where float64 keeps
    # about eps32 * |g|; times hidden activations in the hundreds, fc2's weight gradient is
    # off by more than the atol floor. Rounding every intermediate value of the float64 run
    # by float32's amount moves it as far: float32's rounding, not a bug.
    from hypothesis import strategies as st

    from dyncheck import Spec
    from dyncheck.agreement import compare, run_config
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.dtype_agreement import FLOAT32, FLOAT64, DtypeAgreement
    from dyncheck.kinks import Kinks
    from dyncheck.streams import Draws
    from dyncheck.target import resolve_spec
    from reference_models.softmax_classifier import SoftmaxClassifier

    x = torch.tensor([[0.0, 314, 0, 822, 886, -299, 190, 852, 0, 994]])
    target = resolve_spec(Spec(SoftmaxClassifier, inputs={"x": st.just(x)}), text="softmax")
    context = Context(target)
    example = Example({"x": x}, 0, {})
    reference = run_config(context.fresh_model(), target, example, FLOAT64)
    with Kinks() as kinked:
        single = run_config(context.fresh_model(), target, example, FLOAT32)
    check = DtypeAgreement()
    margins = check._conditioning(context, example, reference)
    for name, margin in check._self_sensitivity(context, example, single, Draws(), kinked.records).items():
        margins[name] = max(margins.get(name, 0.0), margin)
    findings = compare(reference, single, floor=check.floor, model=reference.model, margins=margins)
    assert [f.split(" differs")[0] for f in findings] == ["fc2.weight.grad"], findings
    check.check(context, example)


def test_gates_saturated_in_an_rnn_kernel_are_float32_rounding_not_a_bug(dyncheck_run):
    # Inputs up to 1e3 saturate a plain nn.GRU's gates. Its CPU kernel computes them in
    # place (.sigmoid_(), .tanh_()), and a gate that float32 rounds to exactly 1.0 has a
    # derivative of exactly 0 where float64 keeps a small one: weight_ih_l0's gradient came
    # 1.7e-4 apart where 1.1e-4 was allowed, because the rounding-noise run left in-place
    # results alone and so never moved the gates.
    run = dyncheck_run(
        "--dyncheck", "reference_models.builtin_layers:time_major_gru",
        "--dyncheck-invariants=dtype_agreement", "--dyncheck-seed=35969", "--dyncheck-max-examples=20",
    )
    assert run.outcomes() == {"dyncheck::reference_models.builtin_layers:time_major_gru::dtype_agreement": "PASSED"}, run.text


def test_rounding_noise_moves_in_place_results_but_not_copies():
    from dyncheck.rounding import RoundingNoise

    x = torch.linspace(1, 2, 1000, dtype=torch.float64)
    with RoundingNoise(torch.Generator().manual_seed(0)):
        gates = (x * 1).sigmoid_()
        copied = torch.empty_like(x).copy_(x)
    eps = torch.finfo(torch.float32).eps
    assert 0.5 * eps < ((gates / x.sigmoid()) - 1).abs().max().item() <= 3.01 * eps
    assert torch.equal(copied, x)


def test_one_ulp_margin_takes_the_largest_of_several_draws(dyncheck_run, monkeypatch):
    # Features near 1e3 saturate FeatureSequenceEncoder's attention: its query and key
    # gradients are a softmax backward's rounding noise, and what one draw of one-ulp moves
    # shows of it varies a hundredfold from draw to draw. At this seed one draw underrated
    # it on one example (project_in.weight.grad 0.29 apart where 0.24 was allowed): a false
    # alarm on a correct model, which the largest of three draws does not give.
    from dyncheck.invariants import dtype_agreement

    args = (
        "--dyncheck", "reference_models.padded_features:FeatureSequenceEncoder",
        "--dyncheck-invariants=dtype_agreement", "--dyncheck-seed=60054", "--dyncheck-max-examples=20",
    )
    run = dyncheck_run(*args)
    assert run.outcomes() == {"dyncheck::reference_models.padded_features:FeatureSequenceEncoder::dtype_agreement": "PASSED"}, run.text
    monkeypatch.setattr(dtype_agreement, "_NUDGES", 1)
    run = dyncheck_run(*args)
    assert run.ret == 1 and "project_in.weight.grad differs on float32 from float64" in run.text, run.text


# A pinned example (found at --dyncheck-seed=99): inputs of about 1e-3, so that one
# pre-activation of layer 0's feed-forward ReLU cancels to -1.6e-8 in float64 against
# terms of 0.1-0.7; float32's rounding of the sum puts it on the other side of 0.
_TINY = [
    [
        [0.00108722411, -0.000652015849, 0.00197421596, 0.00261969981, 0.000918983831, 0.000762139854, -0.000676029827, -0.000556339044],
        [0.00173816166, -0.000299493986, 0.000131898923, 0.000430404296, 0.00162009697, 0.000143661251, -0.000273885817, 0.000629816903],
        [0.000288094219, 0.00136846059, -0.00019953966, -0.000903171429, -0.0021649804, -0.000822371338, 0.00029144896, 0.000247250631],
        [-0.00123010937, -0.000636704382, 0.000380668469, -0.000207069097, -0.00132286688, -0.000565839524, -0.000858696643, -0.000382323051],
        [-0.000511726772, 0.00245381868, 0.00105119764, -0.000393205788, 0.000929913833, -0.00113647361, -0.000193394881, -0.000635101169],
    ],
    [
        [-0.000118967168, 0.000111608977, -0.000679491088, -0.00073902047, 0.000601646956, 3.66795066e-05, 0.00120677776, 0.000801549293],
        [3.83221268e-05, -0.000774184067, 0.000610057381, 0.00106309343, -0.000647214241, -0.000810833939, 0.000430079963, 0.000754414126],
        [-0.000497592962, 0.00202913559, 0.000117544798, 0.000424795784, -0.00064076425, 0.000207121426, -0.000338341517, 0.000295146863],
        [7.9952697e-05, 0.000323376851, -0.00142717757, 0.000338641024, -0.000852734083, -0.000715430535, -0.00103425537, -0.000140229909],
        [-0.000605211593, -4.80765957e-05, -0.000347752095, -0.000326955487, 0.00064879714, -0.000851913297, -0.00105959736, 0.00162566721],
    ],
]


class _Cancelling(nn.Module):
    """A ReLU over a sum of eight float32 products that cancel (0.967 times weights of about
    100 summing to 0, added one by one): float32's rounding leaves +1.5e-5, float64's sum is
    -7.4e-6, so the two copies put the unit on two sides of its kink. Element-wise float32
    arithmetic rounds alike on every machine; a matrix product's sum order does not."""

    WEIGHTS = [-82.008544921875, -137.85337829589844, -94.99043273925781, 149.69424438476562,
               -57.20568084716797, 128.68789672851562, -83.84703063964844, 177.52291870117188]
    X = 0.9669845700263977

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(self.WEIGHTS))
        self.w = nn.Parameter(torch.tensor([3.0, 1.0]))

    def forward(self, x):
        first = x[:, 0] * self.a[0]
        for i in range(1, self.a.shape[0]):
            first = first + x[:, 0] * self.a[i]
        h = torch.stack([first, x[:, 0] * 200], dim=-1)
        return torch.relu(h) * self.w


def _check_on(target, args):
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.dtype_agreement import DtypeAgreement

    context = Context(target)
    with context.counting():
        DtypeAgreement().check(context, Example(args, 0, {}))
    return context.checked


def test_a_relu_whose_side_float32_rounding_decides_is_not_a_finding(monkeypatch):
    # Every gradient upstream of the unit differs by its whole share (a.grad: 4.29 where 0.0086
    # is allowed), the outputs agree, and no perturbation of the input flips it back
    # (the weights cancel: moving x moves the sum by almost nothing). The float64 copy taking
    # float32's side of that kink explains all of it.
    from dyncheck.errors import InvariantViolation
    from dyncheck.invariants.dtype_agreement import DtypeAgreement
    from dyncheck.strategies import tensors
    from dyncheck.spec import Spec
    from dyncheck.target import resolve, resolve_spec

    target = resolve_spec(Spec(_Cancelling, inputs={"x": tensors(shape=("batch", 1))}))
    x = torch.tensor([[_Cancelling.X]])
    assert _check_on(target, {"x": x}) == 1  # compared, and held
    # The pre-norm encoder's example that first showed it (seed 99): float32's matrix
    # products decide that unit's side on the machine that found it; aligned, it holds anywhere.
    assert _check_on(resolve("reference_models.norm_encoder:NormEncoder"), {"x": torch.tensor(_TINY)}) == 1
    monkeypatch.setattr(DtypeAgreement, "_kinks", lambda *args, **kwargs: None)
    with pytest.raises(InvariantViolation, match=r"^a\.grad differs on float32 from float64"):
        _check_on(target, {"x": x})


def _relu_net(inplace):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
            self.act = nn.ReLU(inplace=inplace)

        def forward(self, h):
            return (self.act(h * self.w) * (h > 0.5)).sum()

    return Net()


@pytest.mark.parametrize("inplace", [False, True])
def test_kinks_take_the_other_runs_side_within_rounding_only(inplace):
    from dyncheck.kinks import BAND, Kinks
    from dyncheck.rounding import EPS32

    def run(h, reference=None):
        net = _relu_net(inplace).double()
        kinks = Kinks(reference)
        with kinks:
            net(h.double()).backward()
        return net.w.grad, kinks

    near = 0.5 * EPS32  # within rounding of the kink at 0 (and of the comparison's at 0.5)
    mine = torch.tensor([-near, 4.0, 0.5 - near])
    theirs = torch.tensor([near, 4.0, 0.5 + near])
    plain, recorder = run(theirs)
    assert [name for name, _ in recorder.records] == ["relu", "gt"]
    # Alone, the first element passes no gradient and the third is masked out ...
    assert run(mine)[0].tolist() == [0.0, 4.0, 0.0]
    # ... taking the other run's sides, it passes the gradient the other run's did: the
    # offset is a constant, so the gradient still flows to w.
    moved, aligned = run(mine, recorder.records)
    assert aligned.moved == 2 and aligned.lined_up()
    assert moved.tolist() == pytest.approx(plain.tolist())
    # A flip further apart than the band is a real disagreement: nothing moves.
    far = BAND * EPS32 * 4.0 * 2
    _, recorder = run(torch.tensor([far, 4.0, 0.5 + near]))
    grad, aligned = run(torch.tensor([-near, 4.0, 0.5 - near]), recorder.records)
    assert not aligned.lined_up() and aligned.unaligned == 1 and aligned.moved == 1
    assert grad[0] == 0.0
    # Nor does a value that is not finite on one side (an overflow is not rounding).
    _, recorder = run(torch.tensor([float("nan"), 4.0, 0.5 + near]))
    _, aligned = run(torch.tensor([-near, 4.0, 0.5 - near]), recorder.records)
    assert not aligned.lined_up() and aligned.moved == 0
    # Another sequence of calls does not line up either.
    _, other = run(theirs, [("abs", t) for _, t in recorder.records])
    assert not other.lined_up() and other.moved == 0


def test_rounding_noise_moves_values_by_float32s_rounding_without_importing_dynamo():
    # A TorchDispatchMode's first call imports torch._dynamo (about 2 s) unless the mode
    # opts out; a dtype_agreement run must not pay for it (see test_plugin's import test).
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from dyncheck.rounding import RoundingNoise\n"
        "x = torch.linspace(1, 2, 1000, dtype=torch.float64, requires_grad=True)\n"
        "with RoundingNoise(torch.Generator().manual_seed(0)):\n"
        "    y = x * 3\n"
        "    y.sum().backward()\n"
        "relative = ((y / (x * 3)) - 1).abs().max().item()\n"
        "eps = torch.finfo(torch.float32).eps\n"
        "assert 0.5 * eps < relative <= 2.01 * eps, relative\n"
        "assert (x.grad - 3).abs().max().item() > 0\n"
        "print('DYNAMO', 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DYNAMO False", done.stdout


UNFIT = """
import torch
from torch import nn

from dyncheck.strategies import tensors


class Model(nn.Module):
    __dyncheck__ = {"inputs": {"x": tensors(shape=("batch", 6, 4))}}

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        scores = self.fc(x) @ x.transpose(1, 2)
        keep = torch.ones(x.shape[1])  # float32 whatever the model's dtype
        keep[-1] = 0.0
        # float64's smallest number times a float32 0 is 0 * -inf in float32: NaN
        scores = scores + (1.0 - keep) * torch.finfo(scores.dtype).min
        return scores.softmax(-1) @ x
"""


def test_a_float64_copy_that_gives_nan_where_float32_is_finite_is_no_reference(dyncheck_run, pytester):
    # A float32 tensor made in forward meets float64's smallest number: NaN in the float64
    # copy only, with or without its casts kept. No example is compared, and the skip says why.
    pytester.makepyfile(unfit=UNFIT)
    run = dyncheck_run("--dyncheck", "unfit:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=5")
    assert run.outcomes() == {"dyncheck::unfit:Model::dtype_agreement": "SKIPPED"}, run.text
    assert "the float64 copy gave NaN/inf where float32 is finite" in run.text


NAN_PATTERN = """
import torch
from torch import nn

from dyncheck.strategies import tensors

COLUMNS = {columns}


class _Pattern(torch.autograd.Function):
    # The weight's gradient is NaN in given columns per dtype, as when a gradient that
    # underflows to 0 in float32 meets a NaN that float64 carries on.
    @staticmethod
    def forward(ctx, w):
        return w.clone()

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        for column in COLUMNS.get(str(grad.dtype), ()):
            grad[:, column] = float("nan")
        return grad


class Model(nn.Module):
    __dyncheck__ = {{"inputs": {{"x": tensors(shape=("batch", 4))}}}}

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        y = x @ _Pattern.apply(self.weight)
        return y * float("nan") if str(y.dtype) in COLUMNS.get("nan output", ()) else y
"""


@pytest.mark.parametrize(
    ("columns", "outcome", "said"),
    [
        # NaN in both, and in float64 only: compared where float64 is finite, and agreeing.
        ({"torch.float64": [0, 1], "torch.float32": [0]}, "PASSED", "dtype_agreement +passed +5 examples"),
        # NaN in float32 where float64 is finite: the overflow the check is for.
        ({"torch.float64": [0, 1], "torch.float32": [0, 2]}, "FAILED", r"weight\.grad differs on float32 from float64"),
        # float64 NaN wherever float32 is: nothing to compare.
        ({"nan output": ["torch.float64"], "torch.float32": [0]}, "SKIPPED", "gave NaN/inf in every output and gradient"),
    ],
    ids=["nan-in-float64-only", "nan-in-float32-only", "no-finite-reference"],
)
def test_where_the_float64_copy_is_nan_there_is_no_reference_there(dyncheck_run, pytester, columns, outcome, said):
    # A model whose gradient is NaN in both dtypes (finite's to report) but not in the same
    # places: only the elements float64 gives a value for are compared.
    pytester.makepyfile(pattern=NAN_PATTERN.format(columns=columns))
    run = dyncheck_run("--dyncheck", "pattern:Model", ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=5")
    assert run.outcomes() == {"dyncheck::pattern:Model::dtype_agreement": outcome}, run.text
    assert re.search(said, run.text), run.text


def test_a_softmax_pinned_to_float32_after_a_float64_mask_is_compared_in_float64(dyncheck_run):
    # PatternEncoder masks scores with finfo(dtype).min and pins the softmax to float32: in
    # the float64 copy a fully masked (padded) query row is NaN. With its casts kept in
    # float64 the copy is a reference again, and every example is compared.
    target = "reference_models.hf_patterns:PatternEncoder"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "PASSED"}, run.text
    assert re.search(r"dtype_agreement +passed +\d+ examples\n", run.text), run.text
    assert "the float64 reference kept float64 where the model casts to float32 (hf_patterns.py:" in run.text


def test_a_timestep_cast_to_float32_before_a_float64_layer_is_kept_in_float64(dyncheck_run):
    # DDPM's timestep embedding: t.float() hands the float64 copy's Linear float32 values,
    # and the copy raised; with the cast kept in float64 it runs the float32 model's program.
    target = "reference_models.timestep_embedding:GuidedDenoiser"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=10")
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "PASSED"}, run.text
    assert re.search(
        r"on 10 examples the float64 copy ran only with float64 kept where the model casts to float32 "
        r"\(timestep_embedding\.py:\d+: `args = t\.float\(\)\[:, None\] \* freqs\[None\]`\): in the float32 model "
        r"that cast gives the model's own dtype, in the float64 copy float32 tensors its float64 layers refuse", run.text
    ), run.text
    # a float32 tensor made with no input is state no cast reaches: still a finding
    target = "reference_models.buggy.default_dtype_state:Model"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1", "--dyncheck-max-examples=10")
    assert "The model cannot be cast to float64" in run.failure("::dtype_agreement")


def test_local_attention_pinned_to_float32_is_not_a_disagreement(dyncheck_run):
    # GPT-Neo's pattern: a padded query whose window holds only padding is a tie of masked
    # scores, broken otherwise by a float64 copy that rounds to float32 at the model's cast.
    target = "reference_models.local_attention:LocalAttentionLM"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1")
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "PASSED"}, run.text
    assert re.search(
        r"on \d+ examples? the float64 reference kept float64 where the model casts to float32 "
        r"\(local_attention\.py:\d+: `scores = self\.q_proj\(h\)\.to\(torch\.float32\)", run.text
    ), run.text


def test_an_instability_inside_a_step_pinned_to_float32_is_reported_against_float64(dyncheck_run):
    target = "reference_models.buggy.pinned_naive_variance:Model"
    run = dyncheck_run("--dyncheck", target, ONLY, "--dyncheck-seed=1")
    text = run.failure("::dtype_agreement") if run.outcomes() else run.text
    assert run.outcomes() == {f"dyncheck::{target}::dtype_agreement": "FAILED"}, run.text
    assert "output differs on float32 from float64 (reference)" in text
    assert (
        "The float64 reference kept float64 where the model casts to float32 (pinned_naive_variance.py:"
    ) in text


def test_kept_float64_keeps_casts_to_float32_of_float64_and_integer_tensors_only():
    from dyncheck.casting import KeptFloat64

    x = torch.ones(2, dtype=torch.float64)
    ids = torch.arange(3)
    half = torch.ones(2, dtype=torch.float16)
    single = torch.ones(2)
    mode = KeptFloat64()
    with mode:
        kept = [
            x.to(torch.float32), x.float(), x.to("cpu", torch.float32), x.to(dtype=torch.float32), x.to(single),
            x.type_as(single), x.type(torch.float32), torch.softmax(x, 0, dtype=torch.float32),
            x.sum(dtype=torch.float32), ids.float(), ids.to(torch.float32),
        ]
        left = {
            "float16 up": (half.float(), torch.float32),
            "float32 already": (single.float(), torch.float32),
            "integer": (x.to(torch.int64), torch.int64),
            "factory": (torch.zeros(2, dtype=torch.float32), torch.float32),
            "float16 down": (x.to(torch.float16), torch.float16),
            "device only": (x.to(torch.device("cpu")), torch.float64),
        }
    assert [t.dtype for t in kept] == [torch.float64] * len(kept)
    assert {name: t.dtype for name, (t, _) in left.items()} == {name: d for name, (_, d) in left.items()}
    assert len(mode.sites) >= 1 and all("test_dtype_agreement.py:" in site for site in mode.sites)


def test_gradients_that_norms_on_a_constant_input_overflow_in_float32_are_not_judged():
    # An all-zero image through a pre-norm stack: every LayerNorm normalises zeros (also in
    # eval mode) and float32's gradients overflow where float64's do not. finite and
    # grad_isolation leave such gradients alone; dtype_agreement reported them (timm's PVT v2).
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.dtype_agreement import DtypeAgreement
    from dyncheck.target import resolve

    context = Context(resolve("reference_models.pre_norm_stack:PreNormStack"))
    example = Example({"x": torch.zeros(2, 3, 8, 8)}, 0, {"batch": 2})
    model = context.fresh_model().eval()
    context.run(model, example, backward=True, record=False)
    assert not all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())  # the premise
    with context.counting():
        DtypeAgreement().check(context, example)
    assert context.report["notes"] == [
        "gradients not judged on 1 example: 21 normalisation layers (blocks.0.norm, blocks.1.norm, blocks.2.norm "
        "and 18 more) normalised a constant input (variance 0: identical or all-zero inputs) and backward "
        "overflowed; with their eps raised to 1 every gradient is finite"
    ]


AUTOCAST = """
import torch
import torch.nn.functional as F
from torch import nn


class Model(nn.Module):
    # one block run in bfloat16 under CPU autocast: mixed precision the model chose
    def __init__(self, enabled=True):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 2)
        self.enabled = enabled

    def forward(self, x):
        h = F.relu(self.fc1(x))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.enabled):
            h2 = F.relu(self.fc2(h))
        return self.out(h + h2.float())
"""


CANCELLING = AUTOCAST + """

class Cancelling(nn.Module):
    # a float32 bug (every digit below 0.06 lost) beside an unrelated bfloat16 block
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 2)

    def forward(self, x):
        h = self.fc1(x)
        h = (h + 1e6) - 1e6
        with torch.autocast("cpu", dtype=torch.bfloat16):
            g = self.fc2(h)
        return self.out(h + 0.0 * g.float())
"""


def test_a_block_under_autocast_is_compared_with_autocast_off(dyncheck_run, pytester):
    # The float64 copy runs the block exactly (autocast leaves float64 alone): against
    # float32's tolerance the bfloat16 block read as a disagreement. With autocast switched
    # off in the float32 copy, the model's arithmetic is judged, at float32, everywhere.
    pytester.makepyfile(mixed=CANCELLING)
    run = dyncheck_run(
        "--dyncheck", "mixed:Model", "--dyncheck", "mixed:Cancelling", "--dyncheck-invariants=dtype_agreement",
        "--dyncheck-seed=5", "--dyncheck-max-examples=30", "-v",
    )
    assert run.outcomes() == {
        "dyncheck::mixed:Model::dtype_agreement": "PASSED", "dyncheck::mixed:Cancelling::dtype_agreement": "FAILED",
    }, run.text
    assert re.search(
        r"compared with torch.autocast off on \d+ examples?: forward runs part of itself under "
        r"autocast\(bfloat16\), which the float64 copy does not mirror", run.text,
    ), run.text


def test_a_norm_over_a_constant_input_is_not_compared(dyncheck_run, pytester):
    # CycleGAN's Conv -> InstanceNorm2d blocks given a black image: each channel is constant,
    # and the norm divides float32's and float64's roundings of the mean by sqrt(eps).
    pytester.makepyfile(instance="""
        from torch import nn

        class ConvINStack(nn.Module):
            def __init__(self, channels=8, depth=4):
                super().__init__()
                layers = [nn.Conv2d(3, channels, 3, padding=1), nn.InstanceNorm2d(channels), nn.ReLU()]
                for _ in range(depth - 1):
                    layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.InstanceNorm2d(channels), nn.ReLU()]
                self.model = nn.Sequential(*layers, nn.Conv2d(channels, 3, 1), nn.Tanh())

            def forward(self, input):
                return self.model(input)
        """)
    run = dyncheck_run(
        "--dyncheck", "instance:ConvINStack", "--dyncheck-invariants=dtype_agreement", "--dyncheck-seed=7",
        "--dyncheck-max-examples=30", "-v",
    )
    assert run.ret == 0, run.text
    assert re.search(r"not compared on \d+: model\.1, model\.4, model\.7 and \d+ more normalised a constant input", run.text), (
        run.text
    )


SATURATED = """
    import torch
    from torch import nn

    class TopAnchors(nn.Module):
        '''Scores each anchor with a softmax that saturates at large features, and keeps the
        boxes of the two best: several anchors at exactly 1.0 in float32 are a tie that
        float64 breaks by values float32 cannot hold.'''

        def __init__(self):
            super().__init__()
            self.cls = nn.Linear(8, 6 * 2)
            self.reg = nn.Linear(8, 6 * 4)

        def forward(self, feats):
            scores = self.cls(feats).view(-1, 6, 2).softmax(-1)[..., 1]
            boxes = self.reg(feats).view(-1, 6, 4)
            best = scores.topk(2, dim=1).indices
            return torch.gather(boxes, 1, best[..., None].expand(-1, -1, 4))

    class RoutedVariance(nn.Module):
        '''Routes by an argmax over ReLU's outputs (all-zero rows tie in both copies, and pick
        alike), then takes a one-pass variance that cancels in float32: the bug, not the tie.'''

        def __init__(self):
            super().__init__()
            self.gate = nn.Linear(8, 3)
            self.experts = nn.ModuleList(nn.Linear(8, 16) for _ in range(3))

        def forward(self, feats):
            route = torch.relu(self.gate(feats) - 1.0).argmax(-1)
            out = torch.stack([e(feats) for e in self.experts], 1)
            y = out[torch.arange(feats.size(0)), route] + 100.0
            return (y * y).mean(-1) - y.mean(-1) ** 2

    class Shifted(TopAnchors):
        '''The same, its boxes moved far off and back: float32 keeps none of their digits.'''

        def forward(self, feats):
            return (super().forward(feats) + 1e8) - 1e8
"""


def test_a_selection_among_values_tied_in_float32_is_not_a_disagreement(dyncheck_run, pytester):
    # A detector's top-k over saturated scores (a review's false alarm): float32 holds several
    # anchors at 1.0, float64 orders them, the two keep other boxes. Not compared on those
    # examples; a real precision loss behind the same selection still fails, and so does one
    # behind an argmax whose ties (ReLU's zeros) both copies break alike.
    pytester.makepyfile(anchors=SATURATED)
    run = dyncheck_run(
        "--dyncheck", "anchors:TopAnchors", "--dyncheck", "anchors:Shifted", "--dyncheck", "anchors:RoutedVariance",
        "--dyncheck-invariants=dtype_agreement",
        "--dyncheck-seed=1", "--dyncheck-max-examples=30", "-v",
    )
    assert run.outcomes() == {
        "dyncheck::anchors:TopAnchors::dtype_agreement": "PASSED", "dyncheck::anchors:Shifted::dtype_agreement": "FAILED",
        "dyncheck::anchors:RoutedVariance::dtype_agreement": "FAILED",
    }, run.text
    assert re.search(
        r"not compared on \d+: the float32 copy's topk picked other elements than float64's among values equal to "
        r"within float32's tolerance",
        run.text,
    ), run.text


def test_which_picks_of_another_copy_are_as_good_within_tolerance():
    from dyncheck.invariants.dtype_agreement import _selection

    def picked(func, *args, **kwargs):
        return _selection(func, args, kwargs, func(*args, **kwargs))

    scores = torch.tensor([[1.0, 0.5, 1.0, 0.2]])
    top = picked(torch.topk, scores, 1, dim=1)
    assert top.allows(torch.tensor([[2]]), 1e-5, 1e-8)  # the other 1.0: a tie
    assert not top.allows(torch.tensor([[1]]), 1e-5, 1e-8)  # 0.5 is no tie of 1.0
    near = picked(torch.argmax, torch.tensor([0.3, 0.9999999, 1.0]))
    assert near.allows(torch.tensor(1), 1e-5, 1e-8) and not near.allows(torch.tensor(0), 1e-5, 1e-8)
    order = picked(torch.Tensor.argsort, torch.tensor([3.0, 1.0, 1.0]), descending=True)
    assert order.allows(torch.tensor([0, 2, 1]), 1e-5, 1e-8)  # the two ones swapped
    assert not order.allows(torch.tensor([1, 0, 2]), 1e-5, 1e-8)
    smallest = picked(torch.topk, torch.tensor([[4.0, 1.0, 1.0]]), 1, dim=1, largest=False)
    assert smallest.allows(torch.tensor([[2]]), 1e-5, 1e-8) and not smallest.allows(torch.tensor([[0]]), 1e-5, 1e-8)
    assert picked(torch.argmax, torch.tensor([2, 2])) is None  # integers: no rounding ties them
    assert picked(torch.max, scores, dim=1) is None  # the values, whose indices are seldom read


def test_a_cast_keeps_the_eps_an_rms_norm_takes_from_its_dtype():
    # nn.RMSNorm(eps=None) adds torch.finfo(input dtype).eps: the float64 copy computed
    # another function, and dtype_agreement failed recurrent-memory-transformer's memory
    # tokens (reference_models/memory_tokens.py, checked in test_reference_models).
    from dyncheck.casting import cast

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.RMSNorm(4), torch.nn.RMSNorm(4, eps=1e-6))
    wide = cast(copy.deepcopy(model), torch.float64)
    assert wide[1].eps == torch.finfo(torch.float32).eps and wide[2].eps == 1e-6
    assert model[1].eps is None  # the copy's, not the model's
    x = torch.randn(3, 4) * 1e-3
    assert torch.allclose(wide(x.double()).float(), model(x), rtol=1e-4, atol=1e-6)
    assert cast(copy.deepcopy(model), torch.float32)[1].eps is None  # no other dtype, nothing to keep
