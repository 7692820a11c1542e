"""grad_isolation: each rule proven both ways, messages pinned."""

from __future__ import annotations

import re

import pytest

ISO = "--dyncheck-invariants=grad_isolation"


def failure_lines(run, target):
    assert run.outcomes() == {f"dyncheck::{target}::grad_isolation": "FAILED"}, run.text
    return run.failure("::grad_isolation").strip().splitlines()


def test_masked_branch_ran_but_did_not_influence(dyncheck_run):
    target = "reference_models.buggy.masked_gate:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO, "--dyncheck-seed=1"), target)
    assert lines[0] == f"grad_isolation violated by {target}"
    assert lines[2] == (
        "fc2 ran but did not influence the output on this example (moving its output left every "
        "output bitwise unchanged): skip it instead of masking the result away."
    )
    # The smallest example: one row, the control at the threshold (the gate is 0 there).
    assert re.fullmatch(r"  example:  x float32\[1, 8\].*, control=tensor\(\[0\.5\]\), seed=0", lines[3])
    assert lines[5] == "  path:     fc1 → fc2 → fc3"
    assert lines[-1] == f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=1 -k grad_isolation"


def test_dense_experts_ran_but_did_not_influence(dyncheck_run):
    target = "reference_models.buggy.dense_moe:Model"
    text = "\n".join(failure_lines(dyncheck_run("--dyncheck", target, ISO), target))
    assert re.search(r"experts\.\d, experts\.\d ran but did not influence the output on this example", text)
    assert "skip them instead of masking the result away." in text
    assert "example:  x float32[1, 8]" in text


def test_declared_branch_off_by_one_is_caught_at_the_threshold(dyncheck_run):
    target = "reference_models.buggy.threshold_off_by_one:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO), target)
    assert lines[2] == (
        "fc2 ran although its branch predicate `control > 0.5` does not hold for control=tensor([0.5])."
    )


def test_declared_branch_that_does_not_run_when_it_should(dyncheck_run, pytester):
    pytester.makepyfile(
        late="""
        import torch.nn as nn
        import torch.nn.functional as F

        class Model(nn.Module):
            __dyncheck__ = {"branches": {"fc2": lambda control: control > 0.5}}

            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 4)

            def forward(self, x, control):
                x = F.relu(self.fc1(x))
                if control > 0.75:  # the design says 0.5
                    x = self.fc2(x)
                return x
        """
    )
    lines = failure_lines(dyncheck_run("--dyncheck", "late:Model", ISO), "late:Model")
    assert re.fullmatch(
        r"fc2 did not run although its branch predicate `control > 0\.5` holds for control=tensor\(\[[0-9.e-]+\]\)\.",
        lines[2],
    )


def test_detached_branch_input_cuts_off_the_layer_before(dyncheck_run):
    target = "reference_models.buggy.detached_input:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO), target)
    assert lines[2] == (
        "fc1 ran, but fc1.weight, fc1.bias are not connected to the output through autograd: a "
        "detach(), .data, .item(), torch.no_grad() or an argmax-only choice cuts the gradient off. "
        "If this is meant (a frozen part), set requires_grad=False or declare "
        "Spec(frozen=['fc1.weight', 'fc1.bias'])."
    )
    assert lines[5] == "  path:     fc1 → fc2 → fc3"


def test_frozen_parameters_may_be_cut_off(dyncheck_run, pytester):
    pytester.makepyfile(
        frozen="""
        import dyncheck
        from reference_models.buggy.detached_input import Model

        spec = dyncheck.Spec(Model, init={"input_size": 4, "hidden_size": 3, "output_size": 2},
                             frozen=["fc1.weight", "fc1.bias"])
        """
    )
    run = dyncheck_run("--dyncheck", "frozen:spec", ISO)
    assert run.ret == 0, run.text


def test_router_without_gradient(dyncheck_run):
    target = "reference_models.buggy.argmax_router:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO), target)
    assert lines[2].startswith("router ran, but router.weight, router.bias are not connected to the output")


def test_zero_gradient_trick_and_the_optimizer_steps_it_causes(dyncheck_run):
    target = "reference_models.buggy.zero_grad_trick:Model"
    # Step isolation needs an earlier example where fc2 ran; with this seed there is one.
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO, "--dyncheck-seed=1"), target)
    assert lines[2] == "Gradients do not follow the path the call took (3 problems):"
    assert lines[3] == (
        "  - fc2 did not run, but fc2.weight, fc2.bias received a gradient of zeros: the output depends "
        "on them only through a multiplication by zero. Leave them out of the graph, so their "
        "gradients stay None."
    )
    assert re.fullmatch(
        r"  - SGD\(momentum=0\.9, weight_decay=0\.01\) moved fc2\.weight by up to \S+, fc2\.bias by up to \S+ "
        r"although fc2 did not run on this example \(after a step on an example where it ran: .*\)\. "
        r"A skipped branch must get no gradient \(None, not zero\) so optimizers leave it alone\.",
        lines[4],
    )
    assert lines[5].startswith("  - AdamW(weight_decay=0.01) moved fc2.weight")


def test_the_specs_optimizer_is_used(dyncheck_run, pytester):
    pytester.makepyfile(
        withopt="""
        import torch
        import dyncheck
        from reference_models.buggy.zero_grad_trick import Model

        spec = dyncheck.Spec(Model, init={"input_size": 4, "hidden_size": 3, "output_size": 2},
                             optimizer=lambda params: torch.optim.RMSprop(params, momentum=0.5, weight_decay=0.1))
        """
    )
    lines = failure_lines(dyncheck_run("--dyncheck", "withopt:spec", ISO, "--dyncheck-seed=1"), "withopt:spec")
    assert lines[2] == "Gradients do not follow the path the call took (2 problems):"
    assert lines[4].startswith("  - Spec(optimizer=...) moved fc2.weight")


def test_nan_gradient_is_named(dyncheck_run):
    target = "reference_models.buggy.nan_gradient:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO), target)
    assert re.fullmatch(r"fc1\.weight received a NaN/inf gradient: \d+ / 48 non-finite \(\d+ NaN\), first at index \(\d+, \d+\)\.", lines[2])


def test_backward_crash_only_on_the_taken_branch(dyncheck_run):
    target = "reference_models.buggy.inplace_branch:Model"
    run = dyncheck_run("--dyncheck", target, ISO)
    text = run.failure("::grad_isolation")
    assert f"grad_isolation: {target} raised in backward" in text
    assert "modified by an inplace operation" in text
    assert re.search(r"control=tensor\(\[0\.50000006\]\)", text)  # the smallest control that takes the branch


@pytest.mark.parametrize(
    "forward",
    [
        # a parameter used directly, without calling its module
        "return F.linear(F.relu(self.a(x)), self.b.weight, self.b.bias)",
        # a saturating output: moving fc's output one way keeps it saturated
        "return torch.sigmoid(self.b(F.relu(self.a(x))) * 100)",
        # a branch on the data, decided per call
        "h = self.a(x)\n        return self.b(h) if h.sum() > 0 else h.flip(-1)[:, :3] * 2",
    ],
)
def test_correct_models_pass(dyncheck_run, pytester, forward):
    pytester.makepyfile(
        ok=f"""
import torch
import torch.nn as nn
import torch.nn.functional as F

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.b = nn.Linear(5, 3)

    def forward(self, x):
        {forward}
"""
    )
    run = dyncheck_run("--dyncheck", "ok:Model", ISO)
    assert run.ret == 0, run.text


def test_requires_grad_false_is_frozen(dyncheck_run, pytester):
    pytester.makepyfile(
        teacher="""
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.teacher = nn.Linear(4, 4).requires_grad_(False)
                self.student = nn.Linear(4, 2)

            def forward(self, x):
                with torch.no_grad():
                    target = self.teacher(x)
                return self.student(x + target)
        """
    )
    run = dyncheck_run("--dyncheck", "teacher:Model", ISO)
    assert run.ret == 0, run.text


def test_branch_predicate_thresholds_steer_the_inferred_control(pytester):
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.gated import DynamicNet

    spec = Spec(DynamicNet, init={"input_size": 4, "hidden_size": 3, "output_size": 2},
                branches={"fc2": lambda control: control > 0.25})
    target = resolve_spec(spec)
    assert repr(target.spec.inputs["control"]) == "controls(as_tensor=True, thresholds=(0.5, 0.25))"


TOP_TWO = """
import torch
from torch import nn
import torch.nn.functional as F


class Model(nn.Module):
    '''Top-2 routing weighted by softmax gates; experts run only on their rows, or (dense=True,
    the bug) on every row with the gates of the unchosen ones exactly 0.'''

    def __init__(self, dim=8, experts=4, classes=3, dense=False):
        super().__init__()
        self.router = nn.Linear(dim, experts)
        self.experts = nn.ModuleList([nn.Linear(dim, dim) for _ in range(experts)])
        self.head = nn.Linear(dim, classes)
        self.dense = dense

    def forward(self, x):
        gates = F.softmax(self.router(x), dim=-1)
        weights, chosen = gates.topk(2, dim=-1)
        dense_gates = torch.zeros_like(gates).scatter(1, chosen, weights)  # exactly 0 where unchosen
        out = torch.zeros_like(x)
        for index, expert in enumerate(self.experts):
            if self.dense:
                out = out + dense_gates[:, index:index + 1] * expert(x)
                continue
            rows, slot = (chosen == index).nonzero(as_tuple=True)
            if rows.numel():
                out = out.index_add(0, rows, weights[rows, slot, None] * expert(x[rows]))
        return self.head(out)
"""


@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_a_saturated_gate_is_weighted_not_masked(pytester, scale):
    # At logits in the thousands the second gate underflows to exactly 0 in float32 (and at
    # 1e4 in float64 too): the expert's output moves nothing, yet it is weighted, not masked.
    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    module = pytester.makepyfile(top_two=TOP_TWO)
    pytester.syspathinsert(module.parent)
    from top_two import Model

    import torch

    x = torch.zeros(3, 8)
    x[0] = scale
    example = Example({"x": x}, 0, {"batch": 3})
    GradIsolation().check(Context(resolve_spec(Spec(Model))), example)
    with pytest.raises(InvariantViolation, match=r"ran but did not influence the output on this example"):
        GradIsolation().check(Context(resolve_spec(Spec(Model, init={"dense": True}))), example)


def test_a_sum_loss_would_fool_it_on_a_model_ending_in_layer_norm(dyncheck_run, pytester):
    # nn.TransformerEncoder uses self_attn.out_proj's weights without calling the module.
    # Under a sum loss, the final LayerNorm makes every gradient before it rounding noise,
    # often exactly zero: out_proj looks like a skipped module given a gradient of zeros.
    # The default loss (a random projection) gives it its real gradient, and the model passes.
    pytester.makepyfile(
        summed="""
        import dyncheck
        from reference_models.norm_encoder import NormEncoder

        spec = dyncheck.Spec(NormEncoder, loss=lambda out: out.sum())
        """
    )
    fooled = dyncheck_run("--dyncheck", "summed:spec", "--dyncheck-invariants=grad_isolation")
    assert fooled.outcomes() == {"dyncheck::summed:spec::grad_isolation": "FAILED"}, fooled.text
    assert re.search(
        r"encoder\.layers\.\d\.self_attn\.out_proj did not run, but encoder\.layers\.\d\.self_attn\.out_proj\.weight"
        r"(, \S+)* received a gradient of zeros",
        fooled.failure("::grad_isolation"),
    ), fooled.failure("::grad_isolation")
    target = "reference_models.norm_encoder:NormEncoder"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=grad_isolation")
    assert run.outcomes() == {f"dyncheck::{target}::grad_isolation": "PASSED"}, run.text
