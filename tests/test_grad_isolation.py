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


def test_a_parameter_of_the_model_itself_read_through_item_is_cut_off(dyncheck_run):
    # CLIP's temperature belongs to no submodule: it was never checked, the .item() passed.
    target = "reference_models.buggy.item_temperature:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO), target)
    assert lines[2] == (
        "the model ran, but its own logit_scale is not connected to the output through autograd: a "
        "detach(), .data, .item(), torch.no_grad() or an argmax-only choice cuts the gradient off. "
        "If this is meant (a frozen part), set requires_grad=False or declare Spec(frozen=['logit_scale'])."
    )


def test_a_result_computed_and_dropped_is_named_as_such(dyncheck_run, pytester):
    # A pooler whose output the head never reads: no detach() cuts it off, nothing reads it.
    target = "reference_models.buggy.dropped_pooler:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, ISO, "--dyncheck-max-examples=20"), target)
    # judged over the run (a module that some example reads is not dropped): said at its end
    assert lines[2] == (
        "encoder.pooler ran, but its output never reaches the model's output on all 20 examples (moving it left "
        "every output bitwise unchanged), so encoder.pooler.weight, encoder.pooler.bias never learn: a result computed and "
        "dropped, such as an output the caller does not read (a pooler's pooler_output). Do not compute it, or "
        "if this is meant (a frozen part), set requires_grad=False or declare "
        "Spec(frozen=['encoder.pooler.weight', 'encoder.pooler.bias'])."
    )
    # Declared frozen, it passes; the same encoder with its pooled output read passes as it is.
    pytester.makepyfile(
        pooled="""
        import dyncheck
        from reference_models.buggy.dropped_pooler import Model

        frozen = dyncheck.Spec(Model, frozen=["encoder.pooler.weight", "encoder.pooler.bias"])


        class Read(Model):
            def forward(self, tokens):
                hidden, pooled = self.encoder(tokens)
                return self.head(hidden.mean(1) + pooled)
        """
    )
    run = dyncheck_run("--dyncheck", "pooled:frozen", "--dyncheck", "pooled:Read", ISO)
    assert run.ret == 0, run.text


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


@pytest.mark.parametrize("seed", [9, 175, 90039])
def test_the_branch_behind_a_threshold_runs_whatever_the_seed(dyncheck_run, seed):
    # At these seeds, 20 random examples (and at 90039 even 50) drew no control above 0.5:
    # Hypothesis repeats and mutates its examples. A check now starts with the simplest
    # example and one on each side of the threshold, so three examples are enough.
    target = "reference_models.buggy.inplace_branch:Model"
    run = dyncheck_run("--dyncheck", target, ISO, f"--dyncheck-seed={seed}", "--dyncheck-max-examples=3")
    text = run.failure("::grad_isolation")
    assert "control=tensor([0.50000006])" in text
    assert "grad_isolation  failed   on example 3\n" in run.text  # the corner above the threshold


def test_one_example_is_the_simplest(dyncheck_run):
    target = "reference_models.buggy.inplace_branch:Model"
    run = dyncheck_run("--dyncheck", target, ISO, "--dyncheck-seed=1", "--dyncheck-max-examples=1")
    assert run.ret == 0, run.text
    assert "grad_isolation  passed   1 example\n" in run.text


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


def test_a_module_used_only_through_its_weights_is_no_skipped_branch(dyncheck_run, pytester):
    # nn.TransformerEncoder uses self_attn.out_proj's weights without calling the module.
    # Under a sum loss, the final LayerNorm makes every gradient before it rounding noise,
    # often exactly zero: out_proj looked like a skipped module given a gradient of zeros.
    # A module no example ever calls is not a branch; rule 1 is about modules called on
    # some examples and skipped on this one (reference_models/buggy/zero_grad_trick.py).
    pytester.makepyfile(
        summed="""
        import dyncheck
        from reference_models.norm_encoder import NormEncoder

        spec = dyncheck.Spec(NormEncoder, loss=lambda out: out.sum())
        """,
        tables="""
        import dyncheck
        import torch
        import torch.nn.functional as F
        from torch import nn
        from dyncheck.strategies import tensors


        class RelPosAttn(nn.Module):
            # A position table used through .weight (DeBERTa's rel_embeddings): a softmax
            # over one key gives it an exactly-zero gradient on sequences of one token.
            def __init__(self):
                super().__init__()
                self.emb, self.rel = nn.Embedding(20, 8), nn.Embedding(8, 8)
                self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

            def forward(self, input_ids):
                h = self.emb(input_ids)
                scores = self.q(h) @ (self.k(h) + self.rel.weight[: h.shape[1]]).transpose(-1, -2)
                return scores.softmax(-1) @ self.v(h)


        class FunctionalFirst(nn.Module):
            # F.linear on the layer's weight: exactly zero on an all-zero input.
            def __init__(self):
                super().__init__()
                self.fc, self.out = nn.Linear(8, 6, bias=False), nn.Linear(6, 4)

            def forward(self, x):
                return self.out(torch.tanh(F.linear(x, self.fc.weight)))


        relpos = dyncheck.Spec(RelPosAttn, inputs={"input_ids": tensors(shape=("batch", "time"), dtype=torch.long,
                                                                           max_value=19)})
        functional = dyncheck.Spec(FunctionalFirst, inputs={"x": tensors(shape=("batch", 8))})
        """,
    )
    targets = ["summed:spec", "tables:relpos", "tables:functional", "reference_models.norm_encoder:NormEncoder"]
    run = dyncheck_run(*(a for t in targets for a in ("--dyncheck", t)), "--dyncheck-invariants=grad_isolation",
                       "--dyncheck-seed=1")
    assert run.outcomes() == {f"dyncheck::{t}::grad_isolation": "PASSED" for t in targets}, run.text


def _check(model_class, example, **init):
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    context = Context(resolve_spec(Spec(model_class, init=init)))
    GradIsolation().check(context, example)
    return context


def _does_not_influence(model_class, example, module_name, **init):
    """Rule 3's first test alone: moving the module's output leaves the output unchanged."""
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import influences
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    context = Context(resolve_spec(Spec(model_class, init=init)))
    model = context.fresh_model()
    baseline = context.run(model, example, record=False, grad=False).output
    return not influences(context, model, example, module_name, baseline)


def test_attention_over_one_key_is_a_degenerate_size_not_a_mask():
    # One key per query: the softmax is exactly 1, in float64 too, whatever q_proj says.
    import torch

    from dyncheck.examples import Example
    from reference_models.causal_attention import CausalSelfAttention

    x = torch.randn(2, 1, 8, generator=torch.Generator().manual_seed(0))
    example = Example({"x": x}, 0, {"batch": 2, "time": 1})
    assert _does_not_influence(CausalSelfAttention, example, "q_proj")  # not vacuous
    _check(CausalSelfAttention, example)


class _Attention(__import__("torch").nn.Module):
    """Plain (non-causal) single-head self-attention."""

    def __init__(self):
        import torch.nn as nn

        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        scores = self.q_proj(x) @ self.k_proj(x).transpose(-2, -1) / 8**0.5
        return scores.softmax(dim=-1) @ self.v_proj(x)


def test_attention_over_equal_keys_is_a_degenerate_value_not_a_mask():
    # An all-zero sequence makes every key the same: whatever the query, the softmax is
    # uniform, exactly (the output's gradient for q_proj is exactly zero in float64 too). On
    # other values of the same sizes q_proj matters, so only the nudges tell this from a mask.
    import torch

    from dyncheck.examples import Example

    example = Example({"x": torch.zeros(1, 4, 8)}, 0, {"batch": 1, "time": 4})
    assert _does_not_influence(_Attention, example, "q_proj")
    _check(_Attention, example)


def test_equal_keys_in_the_thousands_are_a_degenerate_value_not_a_mask():
    # Every key 1000: an additive attention's tanh saturates, so a nudge of a thousandth
    # leaves the tie, and the query gets no gradient in any dtype; at magnitude 1 the same
    # nudge breaks the tie and the query counts. (Found on the seq2seq decoder's
    # encoder_outputs, all at Hypothesis's bound.)
    import torch

    from dyncheck.examples import Example
    from reference_models.attention_decoder import AttentionDecoder

    example = Example(
        {"encoder_outputs": torch.full((1, 4, 12), 1000.0), "encoder_hidden": torch.zeros(1, 1, 12)},
        6528,
        {"batch": 1, "time": 4},
    )
    assert _does_not_influence(AttentionDecoder, example, "attention.query")
    _check(AttentionDecoder, example)


class _ClipMasked(__import__("torch").nn.Module):
    """b runs for every row, then is thrown away for rows with no value below 1 in magnitude."""

    def __init__(self):
        import torch.nn as nn

        super().__init__()
        self.a, self.b = nn.Linear(64, 4), nn.Linear(64, 4)

    def forward(self, x):
        keep = (x.abs().amin(-1, keepdim=True) < 1).float()
        return self.a(x) + self.b(x) * keep


def test_a_mask_on_large_inputs_is_still_reported():
    # Inputs larger than 1 are nudged again at magnitude about 1 (a saturated tie breaks
    # there), not at exactly 1, where this constant input would sit on the mask's threshold
    # and a nudge open it both ways.
    import torch

    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from reference_models.buggy.masked_gate import Model

    example = Example({"x": torch.full((1, 64), 2.0)}, 0, {"batch": 1})
    with pytest.raises(InvariantViolation, match=r"^b ran but did not influence the output on this example"):
        _check(_ClipMasked, example)
    # A gate the control closes, on inputs in the thousands.
    example = Example({"x": torch.full((1, 4), 1000.0), "control": torch.tensor([0.5])}, 0, {"batch": 1})
    with pytest.raises(InvariantViolation, match=r"^fc2 ran but did not influence the output on this example"):
        _check(Model, example, input_size=4, hidden_size=3, output_size=2)


def test_a_mask_at_its_threshold_is_still_reported():
    # The nudges of rule 3 move a control exactly at its threshold both ways: the mask holds
    # one way, so fc2 is masked, not at a degenerate value.
    import torch

    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from reference_models.buggy.masked_gate import Model

    example = Example({"x": torch.zeros(1, 4), "control": torch.tensor([0.5])}, 0, {"batch": 1})
    with pytest.raises(InvariantViolation, match=r"^fc2 ran but did not influence the output on this example"):
        _check(Model, example, input_size=4, hidden_size=3, output_size=2)


def test_a_layer_behind_a_zero_initialised_weight_is_not_masked(dyncheck_run, pytester):
    # LoRA's B and ReZero's gate start at zero: the layer before them cannot move the output
    # yet, on any input. Nothing was computed and thrown away by a choice.
    pytester.makepyfile(
        lora="""
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.base = nn.Linear(4, 4)
                self.lora_a = nn.Linear(4, 2, bias=False)
                self.lora_b = nn.Linear(2, 4, bias=False)
                nn.init.zeros_(self.lora_b.weight)

            def forward(self, x):
                return self.base(x) + self.lora_b(self.lora_a(x))
        """
    )
    run = dyncheck_run("--dyncheck", "lora:Model", ISO)
    assert run.ret == 0, run.text


def test_an_expert_called_on_an_empty_slice_did_no_work():
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants.grad_isolation import _idle_calls
    from reference_models.loop_moe import LoopMoE

    example = Example({"x": torch.randn(1, 8, generator=torch.Generator().manual_seed(0))}, 0, {"batch": 1})
    model = LoopMoE(8, 6, 4)
    with _idle_calls(model) as idle:
        model(**example.args)
    assert len(idle) == 3, idle  # one row: three of the four experts get an empty slice
    _check(LoopMoE, example, input_size=8, hidden_size=6, output_size=4)


def test_router_that_never_learns(dyncheck_run):
    target = "reference_models.buggy.top1_softmax_router:Model"
    # The example count is part of the message: pinned, so the profile (CI or not) does not matter.
    run = dyncheck_run("--dyncheck", target, ISO, "--dyncheck-seed=1", "--dyncheck-max-examples=20")
    lines = failure_lines(run, target)
    assert lines[0] == f"grad_isolation violated by {target}"
    assert re.fullmatch(
        r"router\.weight, router\.bias influence the output \(moving them changes it on the example "
        r"below\) but received an exactly-zero gradient on all 20 examples: they can never learn\. "
        r"Something between them and the output is constant in them: a softmax over a single value "
        r"is always 1 \(top-1 taken before the softmax\), a round\(\), sign\(\) or comparison has a "
        r"zero derivative\.",
        lines[2],
    )
    assert lines[3].startswith("  example:  x float32[")
    assert lines[-1] == (
        f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=1 "
        "--dyncheck-max-examples=20 -k grad_isolation"
    )


def test_a_bare_parameter_router_that_never_learns(dyncheck_run, pytester):
    pytester.makepyfile(
        bare="""
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self, dim=8, experts=3, classes=4):
                super().__init__()
                self.router = nn.Parameter(torch.randn(dim, experts))
                self.experts = nn.ModuleList(nn.Linear(dim, classes) for _ in range(experts))

            def forward(self, x):
                top, choice = (x @ self.router).topk(1, dim=-1)
                gate = top.softmax(dim=-1)  # always 1
                out = x.new_zeros(x.shape[0], self.experts[0].out_features)
                for index, expert in enumerate(self.experts):
                    rows = (choice[:, 0] == index).nonzero(as_tuple=True)[0]
                    out = out.index_add(0, rows, gate[rows] * expert(x[rows]))
                return out
        """
    )
    run = dyncheck_run("--dyncheck", "bare:Model", ISO, "--dyncheck-seed=3", "--dyncheck-max-examples=20")
    lines = failure_lines(run, "bare:Model")
    assert re.fullmatch(
        r"router influences the output \(moving it changes it on the example below\) but received an "
        r"exactly-zero gradient on all 20 examples: it can never learn\. .*",
        lines[2],
    )


@pytest.mark.parametrize(
    "forward",
    [
        # A ReLU layer dead on small inputs gets exactly-zero gradients there, not everywhere.
        "return self.fc2(torch.relu(self.fc1(x) - 1.0))",
        # The default loss sums the output, and a softmax sums to 1: in float32 the gradient
        # is often exactly zero, but the output depends on fc1 (a random projection says so).
        "return torch.softmax(self.fc2(self.fc1(x)), dim=-1)",
    ],
)
def test_zero_gradients_that_are_not_a_parameter_that_never_learns(dyncheck_run, pytester, forward):
    pytester.makepyfile(
        ok=f"""
import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.fc2 = nn.Linear(3, 5)

    def forward(self, x):
        {forward}
"""
    )
    run = dyncheck_run("--dyncheck", "ok:Model", ISO)
    assert run.ret == 0, run.text


@pytest.mark.parametrize(
    ("forward", "token"),
    [
        # Only the padding row is read, and torch never trains it (nn.Embedding's padding_idx):
        # moving it changes the output, which says nothing about learning.
        ("return self.head(self.embed(ids).mean(1))", 0),
        # Other rows read through round(): exactly-zero gradients, and moving them changes the output.
        ("return self.head(self.embed(ids).round().mean(1))", 1),
    ],
)
def test_an_embeddings_padding_row_is_not_a_parameter_that_never_learns(dyncheck_run, pytester, forward, token):
    pytester.makepyfile(
        padded=f"""
import torch
import torch.nn as nn
import dyncheck
from dyncheck.strategies import tensors

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(6, 4, padding_idx=0)
        self.head = nn.Linear(4, 3)

    def forward(self, ids):
        {forward}

spec = dyncheck.Spec(
    Model, inputs={{"ids": tensors(shape=("batch", "time"), dtype=torch.int64, min_value={token}, max_value={token})}}
)
"""
    )
    run = dyncheck_run("--dyncheck", "padded:spec", ISO, "--dyncheck-max-examples=3")
    if token == 0:
        assert run.ret == 0, run.text
        return
    lines = failure_lines(run, "padded:spec")
    assert lines[2].startswith(
        "embed.weight influences the output (moving it changes it on the example below) but received an "
        "exactly-zero gradient on all 3 examples: it can never learn."
    ), run.text
    one = failure_lines(dyncheck_run("--dyncheck", "padded:spec", ISO, "--dyncheck-max-examples=1"), "padded:spec")
    assert "exactly-zero gradient on the only example: it can never learn." in one[2]


class _SoftmaxHead(__import__("torch").nn.Module):
    def __init__(self):
        import torch
        import torch.nn as nn

        super().__init__()
        self.fc = nn.Linear(4, 5)
        self.shift = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (self.fc(x) + self.shift).softmax(dim=-1)


def test_a_zero_gradient_of_a_blind_loss_is_not_evidence():
    # The sum of a softmax is 1: under a sum loss (a user's blind Spec(loss=...)) fc gets an
    # exactly-zero float32 gradient on this example, though the output depends on it. Rule 7
    # asks again with a random projection of the output in float64, which sees it.
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants._influence import zero_parameter_gradients
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    context = Context(resolve_spec(Spec(_SoftmaxHead, loss=lambda out: out.sum())))
    for seed in range(100):  # an example whose softmax sums to exactly 1.0 in float32
        model = context.fresh_model()
        example = Example({"x": torch.randn(1, 4, generator=torch.Generator().manual_seed(seed))}, 0, {"batch": 1})
        context.run(model, example, backward=True)
        if not model.fc.weight.grad.any():
            break
    assert not model.fc.weight.grad.any()  # not vacuous
    assert zero_parameter_gradients(context, model, example, ["fc.weight"]) == set()


def test_moving_a_parameter_changes_the_output_only_beyond_rounding():
    # A shift of every logit alike: the softmax cancels it, up to rounding.
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants._influence import moving_changes_output
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    context = Context(resolve_spec(Spec(_SoftmaxHead)))
    model = context.fresh_model()
    example = Example({"x": torch.randn(3, 4, generator=torch.Generator().manual_seed(0))}, 0, {"batch": 3})
    before = model(example.args["x"])
    with torch.no_grad():
        model.shift.add_(3.0)
    assert not torch.equal(model(example.args["x"]), before)  # not vacuous: rounding moved it
    with torch.no_grad():
        model.shift.sub_(3.0)
    assert not moving_changes_output(context, model, example, model.shift)
    assert moving_changes_output(context, model, example, model.fc.bias)
    assert torch.equal(model.shift, torch.zeros(1))  # restored


def test_redraws_that_cannot_move_anything_are_one():
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants._influence import _movable, _redrawn

    tokens = Example({"input_ids": torch.tensor([[3, 1]]), "attention_mask": torch.ones(1, 2)}, 0, {})
    assert not _movable(tokens)  # the float mask is kept, the ids are integers
    again = _redrawn(tokens, "random10", 3)
    assert all(torch.equal(again.args[k], v) for k, v in tokens.args.items())
    floats = Example({"x": torch.ones(1, 2), "control": 0.5}, 0, {})
    assert _movable(floats) and _movable(Example({"control": 0.5}, 0, {}))
    assert not torch.equal(_redrawn(floats, "random10", 3).args["x"], floats.args["x"])


def test_the_search_elsewhere_is_kept_for_what_a_redraw_keeps():
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants._influence import _layout

    def example(x, tokens, control=0.5):
        return Example({"x": x, "tokens": tokens, "control": control}, 0, {})

    ids = torch.tensor([[1, 2]])
    key = _layout(example(torch.zeros(1, 3), ids))
    # floating values and float controls move in a redraw: the same key
    assert _layout(example(torch.ones(1, 3), ids.clone(), 0.7)) == key
    # shapes, dtypes and tokens are kept: another key
    assert _layout(example(torch.zeros(2, 3), ids)) != key
    assert _layout(example(torch.zeros(1, 3, dtype=torch.float64), ids)) != key
    assert _layout(example(torch.zeros(1, 3), torch.tensor([[1, 3]]))) != key
    # an input of another kind: nothing kept
    assert _layout(example(torch.zeros(1, 3), [ids])) is None


def test_a_block_a_drop_path_dropped_is_not_masked_because_another_seed_kept_it():
    # A batch of two identical rows: each block's train-mode BatchNorm gives zeros, which
    # hide its squeeze-excite gate. Seed 1 keeps every block, and a redraw of other rows
    # shows the gate used; seed 0 drops both samples of block 0 (a random choice, timm's
    # DropPath). That answer, kept from seed 1, called block 0's gate masked on seed 0.
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.target import resolve
    from reference_models import drop_path

    def dropped(seed):
        """Which blocks the seed drops for every sample of a batch of two."""
        from dyncheck.seeding import seeded

        model, drops = drop_path.DropPathNet().train(), []
        for block in model.blocks:
            block.project.register_forward_hook(lambda _m, _a, out: torch.ones_like(out))
            block.register_forward_hook(lambda _m, args, out: drops.append(bool(torch.equal(out, args[0]))))
        with seeded(seed):
            model(torch.zeros(2, 4))
        return drops

    assert dropped(1) == [False, False] and dropped(0) == [True, False]  # the premise
    context = Context(resolve("reference_models.drop_path:DropPathNet"))
    for seed in (1, 0):
        GradIsolation().check(context, Example({"x": torch.zeros(2, 4)}, seed, {"batch": 2}))
    assert context.memo["used elsewhere"]  # the search ran, and its answers were kept


def test_a_block_a_random_draw_masked_is_not_reported_whatever_its_probability():
    # BlockDrop's training forward multiplies each block by a Bernoulli sample of a
    # probability its policy computes from the input: on a zero input each is about one
    # half, on a large one it saturates, and a redraw of other inputs under the same seed
    # kept blocks the example's draws dropped, which rule 3 called masked.
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants._influence import _Extremes
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.target import resolve

    with _Extremes(high=True):
        ones, below_one = torch.bernoulli(torch.full((3,), 1e-9)), torch.rand(2)
        normal, wide = torch.randn(2), torch.empty(2).uniform_(-2.0, 5.0)
    assert ones.tolist() == [1.0] * 3 and below_one.tolist() == [1.0 - 2**-24] * 2
    assert normal.tolist() == [3.0, 3.0] and wide.max() < 5.0 and wide.min() > 4.99
    with _Extremes(high=False):
        zeros, kept = torch.bernoulli(torch.full((3,), 1 - 1e-7)), torch.nn.functional.dropout(torch.ones(99), 0.5)
        low = torch.empty(2).normal_(1.0, 2.0)
    assert zeros.tolist() == [0.0] * 3 and low.tolist() == [-5.0, -5.0]
    assert kept.eq(0).any()  # dropout thins units: left alone
    with _Extremes(high=True):  # dyncheck's own moves draw from a generator of their own
        moved = torch.randn(6, generator=torch.Generator().manual_seed(0))
    assert moved.unique().numel() == 6
    context = Context(resolve("reference_models.block_drop:BlockDropNet"))
    for x in (torch.zeros(1, 8), torch.full((1, 8), 15.0), -torch.full((1, 8), 15.0)):
        for seed in range(4):
            GradIsolation().check(context, Example({"x": x}, seed, {"batch": 1}))


def test_a_module_an_in_place_activation_overwrites_is_reached_by_the_gradient():
    # A batch of two identical rows: the BatchNorm gives zeros, the squeeze-excite gate
    # multiplies zeros, and block 1's reduce (followed by ReLU(inplace=True)) was "masked
    # away": its gradient was asked of the tensor relu_ had overwritten.
    import torch
    from torch import nn

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants._influence import Reached
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.target import resolve

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 1))
    with Reached(model, ["0"]).hooked() as seen:
        assert seen.backward(model(torch.randn(3, 4)).sum())
    assert seen.reached == {"0"}
    context = Context(resolve("reference_models.squeeze_excite:SqueezeExciteNet"))
    GradIsolation().check(context, Example({"x": torch.zeros(2, 4)}, 0, {"batch": 2}))


def test_answers_of_the_search_elsewhere_are_shared_between_seeds_unless_the_model_draws():
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants._influence import _draws_random
    from dyncheck.target import resolve

    plain = Context(resolve("reference_models.gated:DynamicNet"))
    assert not _draws_random(plain, plain.fresh_model(), Example({"x": torch.ones(2, 8), "control": 0.2}, 0, {}))
    drawing = Context(resolve("reference_models.drop_path:DropPathNet"))
    model = drawing.fresh_model()
    assert _draws_random(drawing, model.train(), Example({"x": torch.ones(2, 4)}, 0, {}))
    assert not _draws_random(drawing, model.eval(), Example({"x": torch.ones(2, 4)}, 0, {}))
    # python's random (the depth of random_depth's net) and numpy's count too
    depth = Context(resolve("reference_models.random_depth:DynamicNet"))
    assert _draws_random(depth, depth.fresh_model(), Example({"x": torch.ones(2, 8)}, 0, {}))
    # a draw under fork_rng puts the generator's state back: torch's random calls are watched
    class Forked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            with torch.random.fork_rng():
                keep = x.new_empty(x.shape[0], 1).bernoulli_(0.5)
            return self.fc(x * keep)

    from dyncheck import Spec
    from dyncheck.target import resolve_spec

    forked = Context(resolve_spec(Spec(Forked)))
    assert _draws_random(forked, forked.fresh_model(), Example({"x": torch.ones(2, 4)}, 0, {}))
    # a call that raises: its answers are not shared either
    assert _draws_random(plain, plain.fresh_model(), Example({"x": torch.ones(2, 3), "control": 0.2}, 0, {}))


def test_a_reentrant_checkpoint_is_connected_and_a_detach_inside_it_is_not(dyncheck_run, pytester):
    # checkpoint(block, h, use_reentrant=True) keeps the block's parameters out of the
    # output's graph and runs the block again inside its backward, which gives them their
    # gradients: connected. A detach() inside the checkpointed block still cuts them off.
    pytester.makepyfile(
        cut_inside="""
        import torch
        from torch import nn
        from torch.utils.checkpoint import checkpoint


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.inp, self.block, self.out = nn.Linear(8, 12), nn.Linear(12, 12), nn.Linear(12, 4)

            def forward(self, x):
                h = torch.tanh(self.inp(x))
                if self.training and torch.is_grad_enabled():
                    h = h + checkpoint(lambda h: self.block(h).detach() * h, h, use_reentrant=True)
                else:
                    h = h + self.block(h).detach() * h
                return self.out(h)
        """
    )
    good = "reference_models.checkpointed:CheckpointedMLP"
    run = dyncheck_run("--dyncheck", good, "--dyncheck", "cut_inside:Model", ISO, "--dyncheck-seed=1")
    assert run.outcomes() == {
        f"dyncheck::{good}::grad_isolation": "PASSED", "dyncheck::cut_inside:Model::grad_isolation": "FAILED",
    }, run.text
    assert "block ran, but block.weight, block.bias are not connected to the output" in run.failure(
        "cut_inside:Model::grad_isolation"
    )


def test_a_reentrant_checkpoint_is_checked_for_zero_gradients_with_backward(dyncheck_run):
    # Three examples, all at degenerate values (all zero, or saturating tanh), gave inp.weight
    # an exactly zero gradient. The float64 check that must then find a gradient used
    # autograd.grad(), which a reentrant checkpoint refuses: every run was "no evidence",
    # and inp.weight was reported as never learning.
    target = "reference_models.checkpointed:CheckpointedMLP"
    run = dyncheck_run("--dyncheck", target, ISO, "--dyncheck-seed=2", "--dyncheck-max-examples=3")
    assert run.ret == 0, run.text


def test_a_parameter_this_call_never_read_is_not_cut_off(dyncheck_run, pytester):
    # XLNet's pattern: a bias of a layer that ran, used only when an optional input is given.
    # Left out of this path, not cut off by a detach(); the same bias read and detached is.
    pytester.makepyfile(
        optional_bias="""
        import torch
        from torch import nn


        class Layer(nn.Module):
            def __init__(self, detach):
                super().__init__()
                self.proj, self.seg_bias, self.detach = nn.Linear(8, 8), nn.Parameter(torch.randn(8)), detach

            def forward(self, h, seg=None):
                out = self.proj(h)
                if seg is not None:
                    out = out + seg[..., None] * self.seg_bias
                elif self.detach:
                    out = out + self.seg_bias.detach()
                return torch.tanh(out)


        class Model(nn.Module):
            def __init__(self, detach=False):
                super().__init__()
                self.layer, self.head = Layer(detach), nn.Linear(8, 3)

            def forward(self, x, seg=None):
                return self.head(self.layer(x, seg))


        def detached():
            return Model(detach=True)
        """
    )
    run = dyncheck_run("--dyncheck", "optional_bias:Model", "--dyncheck", "optional_bias:detached", ISO,
                       "--dyncheck-seed=1")
    assert run.outcomes() == {
        "dyncheck::optional_bias:Model::grad_isolation": "PASSED",
        "dyncheck::optional_bias:detached::grad_isolation": "FAILED",
    }, run.text
    assert "layer ran, but layer.seg_bias is not connected to the output" in run.failure("detached::grad_isolation")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_bool_and_choice_runs_in_the_first_examples(dyncheck_run, pytester, seed):
    # One control at a time: the simplest example (False, "a"), then True, "b" and "c".
    pytester.makepyfile(
        modes="""
        import torch
        from torch import nn

        import dyncheck
        from dyncheck.strategies import controls, tensors


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x, flag, mode):
                if mode == "c":
                    raise ValueError("mode c is broken")
                return self.fc(x) * (2 if flag else 1)


        spec = dyncheck.Spec(Model, inputs={
            "x": tensors(shape=("batch", 4)),
            "flag": controls(dtype=bool),
            "mode": controls(choices=["a", "b", "c"]),
        })
        """
    )
    run = dyncheck_run("--dyncheck", "modes:spec", ISO, f"--dyncheck-seed={seed}", "--dyncheck-max-examples=4")
    text = run.failure("::grad_isolation")
    assert "mode c is broken" in text
    assert "flag=False, mode='c'" in text
    assert "grad_isolation  failed   on example 4\n" in run.text  # the fourth corner: mode "c"


def test_a_profile_without_explicit_examples_runs_them_all_at_random(dyncheck_run, pytester):
    pytester.makeconftest(
        """
        from hypothesis import Phase, settings

        settings.register_profile("random-only", phases=[Phase.generate, Phase.shrink])
        """
    )
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", ISO, "--hypothesis-profile=random-only",
                       "--dyncheck-seed=1", "--dyncheck-max-examples=5")
    assert run.ret == 0, run.text
    assert "grad_isolation  passed   5 examples" in run.text, run.text


def test_a_zero_gradient_of_weights_read_directly_is_the_examples_when_other_weights_move_it():
    # RecurrentGemma's decoding step reads conv.weight without calling the conv; on the
    # padding token (a zero embedding) behind a zero-bias gate its gradient is exactly zero.
    # Moving the other weights gives it a gradient: the example's zero, not masking.
    import torch

    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.buggy.zero_grad_trick import Model as ZeroGradTrick
    from reference_models.recurrent_lm import RecurrentLM

    context = Context(resolve_spec(Spec(RecurrentLM)))
    check = GradIsolation()
    with context.counting():
        check.check(context, Example({"input_ids": torch.tensor([[3, 5, 7]])}, 0, {}))  # conv runs
    with context.counting():
        check.check(context, Example({"input_ids": torch.tensor([[0]])}, 0, {}))  # read, zero here
    # ... while a multiplication by zero stays zero whatever the other weights are
    context = Context(resolve_spec(Spec(ZeroGradTrick, init={"input_size": 4, "hidden_size": 4, "output_size": 2})))
    x = torch.ones(1, 4)
    with context.counting():
        check.check(context, Example({"x": x, "control": torch.tensor([0.9])}, 0, {}))  # fc2 runs
    with pytest.raises(InvariantViolation, match="fc2 did not run, but fc2.weight, fc2.bias received a gradient of zeros"):
        with context.counting():
            check.check(context, Example({"x": x, "control": torch.tensor([0.1])}, 0, {}))


def test_a_parameter_whose_values_reach_nothing_at_this_size_is_not_cut_off():
    # RWKV's time_decay only updates the state; a sequence of one step drops it: no
    # gradient, and moving the decay changes nothing. A detach() passes values on.
    import torch

    from dyncheck.errors import InvariantViolation
    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.buggy.detached_input import Model as DetachedInput
    from reference_models.recurrent_lm import RecurrentLM

    context = Context(resolve_spec(Spec(RecurrentLM)))
    with context.counting():
        GradIsolation().check(context, Example({"input_ids": torch.tensor([[3]])}, 0, {}))
    context = Context(resolve_spec(Spec(DetachedInput, init={"input_size": 4, "hidden_size": 4, "output_size": 2})))
    with pytest.raises(InvariantViolation, match="fc1 ran, but fc1.weight, fc1.bias are not connected"):
        with context.counting():
            GradIsolation().check(context, Example({"x": torch.ones(1, 4), "control": torch.tensor([0.9])}, 0, {}))



def test_a_module_a_zero_gate_blocks_on_one_example_is_not_a_result_dropped():
    # RWKV's decay behind a gate whose bias starts at zero: on the padding token (a zero
    # embedding) the gate is 0, so on that example nothing of the time mixing reaches the
    # output, and its decay gets no gradient on a sequence of one step. Moving the other
    # weights opens the gate: not a result the model drops (buggy/dropped_pooler.py is).
    import torch
    import torch.nn.functional as F
    from torch import nn

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.grad_isolation import GradIsolation
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.recurrent_lm import _TimeMix

    class GatedMix(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(16, 8, padding_idx=0)
            self.gate = nn.Linear(8, 8)
            nn.init.zeros_(self.gate.bias)
            self.mix = _TimeMix(8)
            self.head = nn.Linear(8, 4)

        def forward(self, input_ids):
            h = self.embed(input_ids)
            return self.head(self.mix(h) * F.gelu(self.gate(h)))

    context = Context(resolve_spec(Spec(GatedMix)))
    with context.counting():
        GradIsolation().check(context, Example({"input_ids": torch.tensor([[0]])}, 0, {}))


DEAD_HEAD = """
import torch
from torch import nn
from dyncheck.strategies import tensors


class Model(nn.Module):
    \"\"\"SqueezeNet's head, in small: the last layer goes through a ReLU, which on the all-zero
    input is off for every class; a larger input (the skip from x) turns it on.\"\"\"

    __dyncheck__ = {"inputs": {"x": tensors(shape=("batch", 4))}}

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)
        with torch.no_grad():
            self.head.bias.fill_(-1e4)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return torch.relu(self.head(h) + 1e5 * x.sum(-1, keepdim=True))
"""


def test_an_example_whose_output_is_constant_is_not_judged_by_rule_3(dyncheck_run, pytester):
    # On the all-zero input the last ReLU is off for every class: no parameter gets a
    # gradient and no move of body's output turns it on, while other inputs do. That is the
    # model's own activation, not a choice masking body (SqueezeNet on a small image).
    pytester.makepyfile(deadhead=DEAD_HEAD)
    run = dyncheck_run(
        "--dyncheck", "deadhead:Model", "--dyncheck-invariants=grad_isolation", "--dyncheck-max-examples=10",
        "--dyncheck-seed=1",
    )
    assert run.outcomes() == {"dyncheck::deadhead:Model::grad_isolation": "PASSED"}, run.text
    assert re.search(
        r"rule 3 not judged on \d+ examples?: no parameter got a gradient \(the output is constant around the "
        r"example, e\.g\. a last ReLU off on every unit\)",
        run.text,
    ), run.text


EMPTY_STEPS = """
import torch
from torch import nn


class Model(nn.Module):
    '''Teacher forcing over target[:, 1:]: a target of one step leaves no step to decode.'''

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 6)
        self.cell = nn.GRUCell(6, 6)
        self.out = nn.Linear(6, 5)

    def forward(self, target):
        hidden = self.cell(self.embed(target[:, 0]))
        steps = []
        for t in range(1, target.size(1)):
            hidden = self.cell(self.embed(target[:, t]), hidden)
            steps.append(self.out(hidden))
        # no step to decode: an empty slice of what the head gives, still on the graph
        return torch.stack(steps, 1) if steps else self.out(hidden)[:, None, :0]
"""


def test_an_empty_output_is_named_when_rule_3_is_not_judged(dyncheck_run, pytester):
    # The note blamed a constant output ("a last ReLU off on every unit") where there was none.
    pytester.makepyfile(emptysteps=EMPTY_STEPS)
    run = dyncheck_run(
        "--dyncheck", "emptysteps:Model", "--dyncheck-invariants=grad_isolation", "--dyncheck-max-examples=20",
        "--dyncheck-seed=1",
    )
    assert run.outcomes() == {"dyncheck::emptysteps:Model::grad_isolation": "PASSED"}, run.text
    assert re.search(
        r"rule 3 not judged on \d+ examples?: the output has no elements \(a sequence of no steps\), so no parameter "
        r"got a gradient", run.text,
    ), run.text
    assert "a last ReLU off" not in run.text


FLAGGED_ADAPTERS = """
import torch
from torch import nn


class Skipped(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = nn.Linear(6, 4)
        self.down = nn.Linear(6, 2, bias=False)
        self.up = nn.Linear(2, 4, bias=False)

    def forward(self, x, use_adapter: bool):
        out = self.base(x)
        if use_adapter:
            out = out + self.up(self.down(x))
        return out


class Multiplied(Skipped):
    def forward(self, x, use_adapter: bool):
        return self.base(x) + float(use_adapter) * self.up(self.down(x))  # runs either way
"""


def test_a_module_a_flag_masks_away_is_reported_as_a_float_gates_is(dyncheck_run, pytester):
    # Redraws moved the floats only: a module masked by a bool (or an int control) was never
    # seen used, and passed as if at a degenerate size.
    pytester.makepyfile(adapters=FLAGGED_ADAPTERS)
    run = dyncheck_run("--dyncheck", "adapters:Skipped", "--dyncheck", "adapters:Multiplied", ISO)
    assert run.outcomes() == {
        "dyncheck::adapters:Skipped::grad_isolation": "PASSED",
        "dyncheck::adapters:Multiplied::grad_isolation": "FAILED",
    }, run.text
    lines = run.failure("adapters:Multiplied::grad_isolation").strip().splitlines()
    assert lines[2] == (
        "down, up ran but did not influence the output on this example (moving its output left every output "
        "bitwise unchanged): skip them instead of masking the result away."
    ), lines
    assert "use_adapter=False" in lines[3], lines


def test_choices_are_drawn_again_within_their_ranges_the_rest_kept():
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants._influence import _chosen_otherwise
    from dyncheck.strategies import controls, sequence_lengths, tensors

    inputs = {
        "x": tensors(shape=("batch", 3)), "flag": controls(dtype=bool), "task": controls(dtype=int, max_value=2),
        "mode": controls(choices=["a", "b"]), "codes": tensors(shape=("batch", 4), dtype=torch.int64, max_value=5),
        "lengths": sequence_lengths(), "ratio": controls(),
    }
    args = {
        "x": torch.ones(2, 3), "flag": True, "task": 1, "mode": "a", "codes": torch.zeros(2, 4, dtype=torch.int64),
        "lengths": torch.tensor([3, 2]), "ratio": 0.5,
    }
    example = Example(args, 0, {"batch": 2})
    redraws = [_chosen_otherwise(example, inputs, seed) for seed in range(3)]
    for other in redraws:
        assert other.args["x"] is args["x"] and other.args["lengths"] is args["lengths"] and other.args["ratio"] == 0.5
        assert other.args["flag"] is False and other.args["task"] in (0, 2) and other.args["mode"] == "b"
        # integer tensors kept: token ids have special values (padding), a degenerate value to a redraw
        assert other.args["codes"] is args["codes"]
    assert _chosen_otherwise(Example({"x": torch.ones(2, 3)}, 0, {}), inputs, 0) is None


PICKED_HEADS = """
import torch
from reference_models.task_heads import TaskHeads


class Picked(TaskHeads):
    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        h = torch.relu(self.trunk(x))
        return [head(h) for head in self.heads][task]  # every head runs, one result is picked
"""


def test_a_result_computed_and_not_picked_by_a_choice_is_reported_on_its_example(dyncheck_run, pytester):
    # Every head run and one picked from a list: the others' results are dropped on this
    # example and read on another of the same path with another task. Judged over the run
    # alone (as a module network's question encoder is), it passed.
    pytester.makepyfile(picked=PICKED_HEADS)
    run = dyncheck_run("--dyncheck", "picked:Picked", ISO, "--dyncheck-max-examples=20")
    lines = failure_lines(run, "picked:Picked")
    assert lines[2] == "Gradients do not follow the path the call took (2 problems):", lines
    for line in lines[3:5]:
        assert re.fullmatch(
            r"  - heads\.(\d) ran, but its output never reaches the model's output on this example \(moving it left "
            r"every output bitwise unchanged\), while on another example of the same path \(its floats moved or its "
            r"choices drawn again\) it does: a result computed and then not picked\. Skip heads\.\1 where its result "
            r"is not used instead of computing it\.",
            line,
        ), lines


HEADS = """
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import controls, tensors


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 4)
        self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(3))

    def forward(self, x, task_id):
        h = torch.relu(self.trunk(x))
        return self.heads[task_id](h) + (self.heads[1](h) if {leak} else 0)


# one predicate per head, made in a loop: i=i binds each its own index
spec = dyncheck.Spec(
    Heads,
    inputs={{"x": tensors(shape=("batch", 4)), "task_id": controls(dtype=int, min_value=0, max_value=2)}},
    branches={{f"heads.{{i}}": (lambda task_id, i=i: task_id == i) for i in range(3)}},
)
"""


@pytest.mark.parametrize("leak", ["False", "task_id == 0"])
def test_predicates_made_in_a_loop_bind_their_own_index(dyncheck_run, pytester, leak):
    # lambda task_id, i=i: ... was refused: "the predicate takes 'i', which is not a forward argument"
    pytester.makepyfile(heads=HEADS.format(leak=leak))
    run = dyncheck_run("--dyncheck", "heads:spec", ISO, "--dyncheck-max-examples=10")
    if leak == "False":
        assert run.outcomes() == {"dyncheck::heads:spec::grad_isolation": "PASSED"}, run.text
    else:  # head 1 also runs for task 0: its predicate, with i=1, does not hold there
        text = run.failure("::grad_isolation")
        assert "heads.1 ran although its branch predicate" in text and "task_id=0" in text, text


ONE_FRAME_ROWS = """
import torch
from torch import nn


class Model(nn.Module):
    '''Attention whose scores add a bias learned from the distance between frames (a Conformer's
    relative positions), over the frames SpeechBrain's relative lengths keep: with one valid
    frame a row, a softmax over one key is 1 whatever the bias.'''

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)
        self.pos = nn.Linear(1, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x, wav_lens):
        h = self.proj(x)
        steps = torch.arange(x.shape[1])
        distance = (steps[None, :] - steps[:, None]).to(x.dtype).unsqueeze(-1)
        scores = h @ h.transpose(1, 2) / 8 ** 0.5 + self.pos(distance).squeeze(-1)
        valid = steps[None, :] < torch.round(wav_lens * x.shape[1])[:, None]
        scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
        out = scores.softmax(-1) @ h
        weights = valid.unsqueeze(-1).to(x.dtype)
        return self.head((out * weights).sum(1) / weights.sum(1))
"""


def test_a_module_that_weighs_frames_is_not_called_masked_where_each_row_holds_one(dyncheck_run, pytester):
    # Every row one valid frame (wav_lens [1/3, 1/3]): pos ran and moved nothing, a degenerate
    # size. The search for an example where it counts moved the relative lengths with the
    # features, found one with more frames, and rule 3 told the user to skip pos.
    pytester.makepyfile(one_frame=ONE_FRAME_ROWS)
    run = dyncheck_run("--dyncheck", "one_frame:Model", "--dyncheck-invariants=grad_isolation", "--dyncheck-max-examples=10")
    assert run.outcomes() == {"dyncheck::one_frame:Model::grad_isolation": "PASSED"}, run.text


@pytest.mark.parametrize(("closed", "held"), [
    (lambda seed, sign: True, True),  # a mask: closed however the values move
    (lambda seed, sign: sign == (1.0 if seed == 2718 else -1.0), True),  # a control at its threshold
    (lambda seed, sign: seed == 2718 and sign == -1.0, False),  # one direction landed on a degenerate value
])
def test_a_module_is_called_masked_only_where_nudges_in_either_direction_leave_it_out(monkeypatch, closed, held):
    # pytorch-tabnet's sparsemax attention on an all-zero batch (its weights multiply the
    # features): one way of the first random nudge made its weights one-hot, whose Jacobian is
    # zero, and grad_isolation told the user to skip a module that only met zeros. A mask,
    # and a control exactly at its threshold, stay out one way in every direction.
    import torch

    import dyncheck.invariants._influence as influence
    from dyncheck.examples import Example

    class Nudging:  # stands for the nudges of the other modules' outputs
        def __init__(self, model, spared, sign, seed=2718):
            self.sign, self.seed = sign, seed

    def reaches(context, model, example, names, around):
        nudge = around()
        return None, set() if closed(nudge.seed, nudge.sign) else set(names)

    monkeypatch.setattr(influence, "_nudging", Nudging)
    monkeypatch.setattr(influence, "_gradient_reaches", reaches)
    context = type("Context", (), {"target": None})()
    example = Example({"x": torch.zeros(2, 3)}, 0, {})
    assert influence._holds_when_nudged(context, None, example, ["attention"]) == (["attention"] if held else [])
