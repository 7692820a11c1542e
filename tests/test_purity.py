"""purity: messages pinned; inputs written in place (train or eval, contiguous or not) and
state changed at inference are caught; BatchNorm and training-time updates pass."""

from __future__ import annotations

import re

import pytest

PURITY = "--dyncheck-invariants=purity"
FEW = "--dyncheck-max-examples=25"


def failure_lines(run, target):
    assert run.outcomes() == {f"dyncheck::{target}::purity": "FAILED"}, run.text
    return run.failure("::purity").strip().splitlines()


def test_input_jitter_in_place_message(dyncheck_run):
    target = "reference_models.buggy.inplace_jitter:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, "--dyncheck-seed=1"), target)
    assert lines[0] == f"purity violated by {target}"
    assert lines[1] == ""
    assert lines[2] == (
        "forward modified its input x in place (in train mode): the caller's tensor is not the same "
        "after the call. Work on a copy (x = x + noise, not x.add_(noise))."
    )
    assert lines[3] == "  x in train mode (after the call, then before):"
    assert re.fullmatch(r"    Mismatched elements: \d+ / \d+ \(\d+\.\d%\)", lines[4])
    assert re.fullmatch(r"    Greatest absolute difference: \S+ at index \(\d+, \d+\) \(up to 0 allowed\)", lines[5])
    assert re.fullmatch(r"    Greatest relative difference: \S+ at index \(\d+, \d+\) \(up to 0 allowed\)", lines[6])
    # The smallest example that shows it: one row, not all zero (a zero row jitters to zero).
    assert re.fullmatch(r"  example:  x float32\[1, 8\] max \|x\| \S+, control=tensor\(\[0\.5\]\), seed=0", lines[7])
    assert lines[8] == "  sizes:    batch=1"
    assert lines[9] == "  path:     fc1 → fc3"
    assert lines[10] == ""
    assert lines[11] == f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=1 -k purity"


def test_running_statistics_updated_in_eval_mode_message(dyncheck_run):
    target = "reference_models.buggy.eval_running_stats:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, "--dyncheck-seed=1"), target)
    assert lines[2] == (
        "In eval mode forward changed the model's buffers norm.running_mean, norm.running_var: "
        "inference must not change the model. Update running statistics and caches only in "
        "training (if self.training: ...)."
    )
    assert lines[3] == "  norm.running_mean (buffer, after the call, then before):"
    assert re.fullmatch(r"    Mismatched elements: 1 / 1 \(100\.0%\)", lines[4])
    assert re.fullmatch(r"    Greatest absolute difference: \S+ at index \(\) \(up to 0 allowed\)", lines[5])
    assert lines[7] == "  norm.running_var (buffer, after the call, then before):"
    assert re.fullmatch(r"  example:  x float32\[1, 8\].*, control=tensor\(\[0\.5\]\), seed=0", lines[11])
    assert lines[13] == "  path:     fc1 → norm → fc3"



def test_a_buffer_outside_the_state_dict_that_no_later_call_reads_is_scratch(dyncheck_run):
    # snntorch's neurons: the last membrane written to a persistent=False buffer on every
    # call, the caller handing the membrane in and getting it back.
    target = "reference_models.spiking:LeakyLayerSNN"
    run = dyncheck_run("--dyncheck", target, PURITY, FEW)
    assert run.outcomes() == {f"dyncheck::{target}::purity": "PASSED"}, run.text
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(
        r"forward rewrote lif1\.mem, lif2\.mem in eval mode on 25 examples: buffers outside the state_dict "
        r"\(persistent=False\) that the next call does not read", summary,
    ), summary


def test_a_buffer_outside_the_state_dict_that_the_next_call_reads_message(dyncheck_run):
    target = "reference_models.buggy.carried_membrane:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, FEW), target)
    assert lines[2] == (
        "In eval mode forward changed the model's buffers lif1.mem, lif2.mem: inference must not change the "
        "model, and the next call starts from what they keep. Start each call from a state it is given or makes "
        "anew (reset the buffers), or keep the state outside the model."
    )
    assert lines[3:5] == [
        "  lif1.mem: forward replaced the buffer with another object",
        "  lif2.mem: forward replaced the buffer with another object",
    ]
    assert lines[5] == "  the next eval call reads them (from the state the first left, other outputs):"
    assert re.fullmatch(r"    output\[[01]\]:", lines[6]), lines

MODEL = """
import dyncheck
import torch
from torch import nn
from dyncheck.strategies import tensors

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        {init}

    def forward(self, x):
        {forward}

spec = dyncheck.Spec(Model, dims={{"batch": (2, 4)}}, inputs={{"x": tensors(shape=("batch", 4))}})
"""


def _model(pytester, name, forward, init="pass"):
    pytester.makepyfile(**{name: MODEL.format(init=init, forward=forward)})
    return f"{name}:spec"


def test_input_written_only_when_non_contiguous(dyncheck_run, pytester):
    """Inputs reach the model with their strides (a stride-2 view stays one), and the
    comparison is bitwise on the values the caller sees."""
    target = _model(
        pytester,
        "strided",
        "if not x.is_contiguous():\n"
        "            x.clamp_(min=0)  # an in-place fix-up on the slow path only\n"
        "        return self.fc(x)",
    )
    # A seed of its own: the shrunk batch is pinned (seed 25476 stops shrinking at a batch of 4).
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, "--dyncheck-seed=1"), target)
    assert lines[2].startswith("forward modified its input x in place (in train and eval mode)")
    assert lines[3] == "  x in train mode (after the call, then before):"
    assert re.fullmatch(r"  example:  x float32\[2, 4\] non-contiguous.*, seed=0", lines[11]), lines


def test_contiguous_returns_the_callers_tensor(dyncheck_run, pytester):
    """``x.contiguous()`` is the caller's tensor itself when it already is contiguous, so an
    in-place op after it writes into the input: found on a contiguous example."""
    target = _model(pytester, "contig", "h = x.contiguous()\n        h.mul_(0.5)\n        return self.fc(h)")
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY), target)
    assert lines[2].startswith("forward modified its input x in place (in train and eval mode)")
    assert "non-contiguous" not in lines[11]


def test_input_written_in_eval_mode_only(dyncheck_run, pytester):
    target = _model(
        pytester, "evalonly", "if not self.training:\n            x[0] = 0\n        return self.fc(x)"
    )
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY), target)
    assert lines[2].startswith("forward modified its input x in place (in eval mode): ")
    assert lines[3] == "  x in eval mode (after the call, then before):"


def test_entries_added_to_a_dict_of_inputs_are_no_change_of_the_callers_tensors(dyncheck_run, pytester):
    # sentence-transformers' modules hand on the features dict they were given, with their
    # outputs added to it: dyncheck raised KeyError on the new entry. A tensor of the dict
    # written in place is still found.
    pytester.makepyfile(features="""
        import torch
        from torch import nn

        import dyncheck
        from dyncheck.strategies import tensors

        class Model(nn.Module):
            def __init__(self, write=False):
                super().__init__()
                self.fc = nn.Linear(4, 3)
                self.write = write

            def forward(self, features: dict):
                if self.write:
                    features["x"].mul_(2)
                features["embedding"] = self.fc(features["x"])
                return features

        inputs = {"features": __import__("hypothesis").strategies.fixed_dictionaries({"x": tensors(shape=("batch", 4))})}
        adds = dyncheck.Spec(Model, inputs=inputs)
        writes = dyncheck.Spec(lambda: Model(write=True), inputs=inputs)
    """)
    run = dyncheck_run("--dyncheck", "features:adds", PURITY)
    assert run.outcomes() == {"dyncheck::features:adds::purity": "PASSED"}, run.text
    run = dyncheck_run("--dyncheck", "features:writes", PURITY)
    assert "forward modified its input features['x'] in place" in run.failure("::purity"), run.text


def test_parameter_replaced_at_inference(dyncheck_run, pytester):
    target = _model(
        pytester,
        "replace",
        "if not self.training:\n"
        "            self.fc.bias = nn.Parameter(self.fc.bias.detach().clone())\n"
        "        return self.fc(x)",
    )
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, FEW), target)
    assert lines[2] == (
        "In eval mode forward changed the model's parameter fc.bias: inference must not change the "
        "model. Create, tie and assign parameters and buffers in __init__, not in forward."
    )
    assert lines[3] == "  fc.bias: forward replaced the parameter with another object"


def test_a_buffer_assigned_anew_at_inference_is_told_it_may_be_streaming_state(dyncheck_run, pytester):
    # pytorch-tcn's streaming mode keeps a causal convolution's last inputs in a buffer it
    # assigns anew each call, by design: "create buffers in __init__" fitted nothing.
    target = _model(
        pytester,
        "streaming",
        "out = self.fc(torch.cat([self.last, x], 0))[-x.shape[0]:]\n"
        "        self.last = x[-1:].detach()\n"
        "        return out",
        init='self.register_buffer("last", torch.zeros(1, 4))',
    )
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, FEW), target)
    assert lines[2] == (
        "In eval mode forward changed the model's buffer last: inference must not change the model. forward "
        "assigns it a new tensor. If the model keeps state between calls by design (a streaming layer's last "
        "inputs, a cache), declare it with Spec(skip={'purity': '<why>'}); else update buffers only in training "
        "(if self.training: ...)."
    ), lines


def test_both_problems_are_listed(dyncheck_run, pytester):
    target = _model(
        pytester,
        "both",
        "self.seen += x.shape[0]\n        x.add_(1)\n        return self.fc(x)",
        init='self.register_buffer("seen", torch.zeros((), dtype=torch.long))',
    )
    lines = failure_lines(dyncheck_run("--dyncheck", target, PURITY, FEW), target)
    assert lines[2] == "forward is not pure (2 problems):"
    assert lines[3].startswith("  - forward modified its input x in place (in train and eval mode)")
    assert any(
        line.startswith("  - In eval mode forward changed the model's buffer seen: inference must not change")
        for line in lines
    ), lines
    assert "    seen (buffer, after the call, then before):" in lines


@pytest.mark.parametrize(
    ("init", "forward"),
    [
        # BatchNorm updates its running statistics in train mode only
        ("self.bn = nn.BatchNorm1d(3)", "return self.bn(self.fc(x))"),
        # a training-time counter in a buffer, guarded as it should be
        (
            'self.register_buffer("steps", torch.zeros((), dtype=torch.long))',
            "if self.training:\n            self.steps += 1\n        return self.fc(x)",
        ),
        # in-place ops on the model's own intermediate tensors, views and copies of the input
        (
            "pass",
            "h = x.t().contiguous().t()\n        h.mul_(2)\n"
            "        y = self.fc(x.clone().relu_())\n        return y.add_(h.sum())",
        ),
        # a lazy layer materialises in the train call, before the eval call is compared
        ("self.head = nn.LazyLinear(2)", "return self.head(self.fc(x))"),
    ],
    ids=["batchnorm", "guarded-counter", "inplace-on-copies", "lazy-layer"],
)
def test_pure_models_pass(dyncheck_run, pytester, init, forward):
    target = _model(pytester, "pure", forward, init=init)
    run = dyncheck_run("--dyncheck", target, PURITY, FEW)
    assert run.ret == 0, run.text


@pytest.mark.parametrize("target", ["reference_models.gated:DynamicNet", "reference_models.rnn:DynamicRNN"])
def test_reference_models_pass(dyncheck_run, target):
    run = dyncheck_run("--dyncheck", target, PURITY, FEW)
    assert run.ret == 0, run.text
