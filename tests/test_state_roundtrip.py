"""state_roundtrip: messages pinned; state outside the state_dict is caught, state inside it
(buffers, lazy parameters, BatchNorm statistics) passes."""

from __future__ import annotations

import re

import pytest

SR = "--dyncheck-invariants=state_roundtrip"
FEW = "--dyncheck-max-examples=25"

HEADLINE = (
    "A fresh copy loaded from the state_dict gives different outputs: state lives outside the "
    "state_dict (plain attributes, tensors not registered as buffers, layers created in forward)."
)


def failure_lines(run, target, invariant="state_roundtrip"):
    assert run.outcomes().get(f"dyncheck::{target}::{invariant}") == "FAILED", run.text
    return run.failure(f"::{invariant}").strip().splitlines()


def test_counter_message(dyncheck_run):
    target = "reference_models.buggy.call_counter:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, "--dyncheck-seed=11"), target)
    assert lines[0] == f"state_roundtrip violated by {target}"
    assert lines[1] == ""
    assert lines[2] == HEADLINE
    assert lines[3] == "  output:"
    assert re.fullmatch(r"    Mismatched elements: \d+ / \d+ \(\d+\.\d%\)", lines[4])
    assert re.fullmatch(r"    Greatest absolute difference: \S+ at index \(\d+, \d+\) \(up to 0 allowed\)", lines[5])
    assert re.fullmatch(r"    Greatest relative difference: \S+ at index \(\d+, \d+\) \(up to 0 allowed\)", lines[6])
    assert lines[7] == "  attributes that differ between the original and the fresh copy (outside the state_dict):"
    # The original ran on the earlier examples and twice on this one; the copy only loaded.
    assert re.fullmatch(r"    calls: [2-6] on the original, 0 on the fresh copy", lines[8])
    assert re.fullmatch(r"  example:  x float32\[1, 8\].*, control=tensor\(\[0\.5\]\), seed=0", lines[9])
    assert lines[10] == "  sizes:    batch=1"
    assert lines[11] == "  path:     fc1 → fc3"
    assert lines[12] == ""
    assert lines[13] == f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=11 -k state_roundtrip"


def test_layer_grown_in_forward_is_reported_by_its_keys(dyncheck_run):
    target = "reference_models.buggy.grown_layer:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW), target)
    assert lines[2] == (
        "The original's state_dict does not load into a fresh copy: forward created (or resized) "
        "parameters or buffers that a freshly built model does not have. Create every layer in "
        "__init__ (a Lazy* module, such as nn.LazyLinear, loads into a fresh instance)."
    )
    assert lines[3] == "  unexpected keys (in the original's state_dict, not in a fresh copy's): head.weight, head.bias"
    assert lines[4].startswith("  example:  x float32[1, 8]")
    assert "raised" not in "\n".join(lines)  # a finding, not a crash


def test_data_dependent_init_flag_outside_the_state_dict(dyncheck_run):
    """ActNorm's flag as a plain attribute: calling one model twice cannot see it, a round
    trip through the state_dict (after another example) does."""
    target = "reference_models.buggy.actnorm_flag:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=determinism,state_roundtrip", "--dyncheck-seed=3")
    assert run.outcomes()[f"dyncheck::{target}::determinism"] == "PASSED", run.text
    lines = failure_lines(run, target)
    assert lines[2] == HEADLINE
    assert "    norm.initialized: True on the original, False on the fresh copy" in lines


def test_tie_made_in_forward(dyncheck_run):
    target = "reference_models.buggy.lazy_tie:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW), target)
    assert lines[2] == (
        "A fresh copy loaded from the state_dict shares parameters differently from the original: "
        "forward tied or untied them, and a state_dict does not carry ties. Tie in __init__."
    )
    assert lines[3] == (
        "  decoder.weight and encoder.weight are one Parameter on the original, separate ones on the fresh copy"
    )


STATEFUL = """
import torch
from torch import nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        {init}

    def forward(self, x):
        {forward}
"""


def _model(pytester, name, init, forward):
    pytester.makepyfile(**{name: STATEFUL.format(init=init, forward=forward)})
    return f"{name}:Model"


def test_cached_tensor_attribute(dyncheck_run, pytester):
    target = _model(
        pytester,
        "cached",
        init="self.memory = None",
        forward=(
            "h = self.fc(x)\n"
            "        out = h if self.memory is None else h + self.memory\n"
            "        self.memory = h.detach().mean(0)  # a plain tensor attribute, not a buffer\n"
            "        return out"
        ),
    )
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW), target)
    assert lines[2] == HEADLINE
    assert "    memory: a float32[3] tensor on the original, None on the fresh copy" in lines


def test_functions_kept_on_a_module_are_no_difference():
    # snntorch's Leaky keeps a surrogate gradient made by a factory and a bound method as
    # plain attributes: each copy holds its own, printed alike, and both were listed beside
    # the state that differed (a bound method's repr broke the report's layout too).
    import torch
    from torch import nn

    from dyncheck.invariants.state_roundtrip import attribute_differences

    def surrogate(slope):
        def inner(x):
            return torch.sigmoid(slope * x)
        return inner

    class Cell(nn.Module):
        def __init__(self, slope=25.0):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.spike_grad, self.state_function, self.mem = surrogate(slope), self._sub, None

        def _sub(self, x):
            return x

    original, fresh = Cell(), Cell()
    original.mem = torch.zeros(2, 4)
    assert attribute_differences(original, fresh) == ["mem: a float32[2, 4] tensor on the original, None on the fresh copy"]
    other = Cell(slope=5.0)
    other.state_function = other.fc.forward
    # a closure over another value, a method of another layer: they compute otherwise
    lines = attribute_differences(original, other)
    assert [line.split(":")[0] for line in lines] == ["spike_grad", "state_function", "mem"], lines
    assert all("\n" not in line for line in lines), lines


def test_functions_compared_without_raising_and_with_the_layers_they_close_over():
    # a tensor default compares by raising, a table of functions refers to itself, and an
    # unregistered layer held in a closure is built under another seed on the fresh copy
    import torch
    from torch import nn

    from dyncheck.invariants.state_roundtrip import attribute_differences

    def windowed(x, window=torch.ones(3)):
        return x * window.sum()

    def table():
        ops = {}
        ops["double"] = lambda x: ops["add"](x, x)
        ops["add"] = lambda x, y: x + y
        return ops

    class Holder(nn.Module):
        def __init__(self, seed):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            torch.manual_seed(seed)
            layer = nn.Linear(4, 4)  # not registered: outside the state_dict
            self.window, self.ops = windowed, table()
            self.project = lambda x: layer(x)

    assert attribute_differences(Holder(0), Holder(0)) == []
    lines = attribute_differences(Holder(0), Holder(1))
    assert [line.split(":")[0] for line in lines] == ["project"], lines


def test_a_random_value_drawn_when_building_outside_the_state_dict(dyncheck_run):
    # The fresh copy is built under another seed, as in another process: built under the
    # original's, it drew the same projection and the lost state never showed.
    target = "reference_models.buggy.plain_random_features:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW), target)
    assert lines[2] == HEADLINE
    at = lines.index("  attributes that differ between the original and the fresh copy (outside the state_dict):")
    assert lines[at + 1].startswith("    B (a float32[8, 8] tensor), the fresh copy against the original: Mismatched"), lines


def test_modules_in_a_plain_list_are_named(dyncheck_run):
    # Built under another seed, their weights differ; the report said only "the state is kept
    # deeper (inside an object the model holds)".
    target = "reference_models.buggy.plain_list_layers:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW), target)
    assert (
        "    blocks: 2 modules (Linear) in a plain list, not registered as submodules: their parameters are outside "
        "the state_dict and differ. Hold them in nn.ModuleList or nn.ModuleDict."
    ) in lines, lines


def test_non_persistent_buffer_that_matters(dyncheck_run, pytester):
    target = _model(
        pytester,
        "peak",
        init='self.register_buffer("peak", torch.zeros(()), persistent=False)',
        forward=(
            "out = self.fc(x) / (1 + self.peak)  # normalised by the peak seen so far\n"
            "        self.peak = torch.maximum(self.peak, x.abs().max().detach())\n"
            "        return out"
        ),
    )
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW), target)
    assert lines[2] == HEADLINE
    assert any(
        re.fullmatch(
            r"    peak \(a persistent=False buffer\): tensor\(\S+\) on the original, tensor\(0\) on the fresh copy",
            line,
        )
        for line in lines
    ), lines


def test_running_statistics_outside_the_state_dict_are_found_in_eval_mode(dyncheck_run):
    """In train mode the hand-written norm reads the batch's statistics and the copies agree;
    its code reads self.training, so the copies are compared in eval mode too."""
    target = "reference_models.buggy.unsaved_running_stats:Model"
    lines = failure_lines(dyncheck_run("--dyncheck", target, SR, FEW, "--dyncheck-seed=3"), target)
    assert lines[2] == HEADLINE.replace("different outputs:", "different outputs in eval mode:")
    assert lines[3] == "  output:"
    assert "  (in train mode the two agreed: the state is one that only eval mode reads)" in lines
    named = [line.split(" (a persistent")[0].strip() for line in lines if "(a persistent=False buffer)" in line]
    assert named == ["norm.running_mean", "norm.running_var"], lines


def test_eval_mode_is_compared_only_where_the_models_own_code_reads_training(monkeypatch, dyncheck_run, pytester):
    from dyncheck.invariants import state_roundtrip

    modes = []
    run = state_roundtrip.Context.run

    def spy(self, model, example, **kwargs):
        modes.append(model.training)
        return run(self, model, example, **kwargs)

    monkeypatch.setattr(state_roundtrip.Context, "run", spy)
    target = _model(pytester, "plain", init="self.drop = nn.Dropout(0.5)", forward="return self.fc(self.drop(x))")
    assert dyncheck_run("--dyncheck", target, SR, "--dyncheck-max-examples=5").ret == 0
    assert modes and all(modes)  # torch's Dropout reads self.training: torch's own, not read
    modes.clear()
    target = _model(
        pytester, "own", init="", forward="return self.fc(x) if self.training else self.fc(x).detach()"
    )
    assert dyncheck_run("--dyncheck", target, SR, "--dyncheck-max-examples=5").ret == 0
    assert False in modes


@pytest.mark.parametrize(
    ("init", "forward"),
    [
        # state in a persistent buffer travels with the state_dict
        ('self.register_buffer("calls", torch.zeros(()))', "self.calls += 1\n        return self.fc(x) / self.calls"),
        # a constant non-persistent buffer (a table built in __init__) is the same in any instance
        ('self.register_buffer("scale", torch.arange(1.0, 5.0), persistent=False)', "return self.fc(x * self.scale)"),
        # ActNorm done right: the flag is a buffer
        (
            'self.register_buffer("initialized", torch.tensor(False))',
            "if not self.initialized:\n"
            "            with torch.no_grad():\n"
            "                self.fc.bias.copy_(-self.fc(x).mean(0) + self.fc.bias)\n"
            "            self.initialized.fill_(True)\n"
            "        return self.fc(x)",
        ),
        # an attribute that changes but does not matter (a log of the last batch size)
        ("self.last_batch = 0", "self.last_batch = x.shape[0]\n        return self.fc(x)"),
        # a random projection drawn when building, registered: it travels
        ('self.register_buffer("B", torch.randn(4, 4))', "return self.fc(x @ self.B)"),
        # a randomly wired net (depth drawn when building: 3 under the build seed, 2 under
        # another): a checkpoint is loaded into the same architecture, built under the same seed
        (
            "self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(int(torch.randint(1, 4, ()))))",
            "for block in self.blocks:\n            x = torch.relu(block(x))\n        return self.fc(x)",
        ),
    ],
    ids=[
        "buffer-counter", "constant-non-persistent-buffer", "actnorm-flag-buffer", "harmless-attribute",
        "random-buffer", "random-architecture",
    ],
)
def test_state_inside_the_state_dict_passes(dyncheck_run, pytester, init, forward):
    target = _model(pytester, "inside", init=init, forward=forward)
    run = dyncheck_run("--dyncheck", target, SR, FEW)
    assert run.ret == 0, run.text


@pytest.mark.parametrize(
    "forward",
    [
        "return self.head(torch.relu(self.fc(x)))",
        # on a branch: some originals never materialise it, and load it uninitialised
        "h = self.fc(x)\n        return self.head(h) if h.sum() > 0 else h[:, :2]",
    ],
    ids=["always", "on-a-branch"],
)
def test_lazy_layers_load_into_a_fresh_instance(dyncheck_run, pytester, forward):
    """A LazyLinear materialises on the first forward; the fresh copy is loaded before any
    forward, and torch loads a state_dict into uninitialised lazy parameters (its first call
    then keeps them), so a lazy layer is not state outside the state_dict."""
    target = _model(pytester, "lazy", init="self.head = nn.LazyLinear(2)", forward=forward)
    run = dyncheck_run("--dyncheck", target, SR, FEW)
    assert run.ret == 0, run.text


def test_batch_norm_statistics_travel_with_the_state_dict(dyncheck_run, pytester):
    pytester.makepyfile(
        bn="""
        import dyncheck
        from dyncheck.strategies import tensors
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)
                self.bn = nn.BatchNorm1d(3)

            def forward(self, x):
                return self.bn(self.fc(x))

        spec = dyncheck.Spec(Model, dims={"batch": (2, 4)}, inputs={"x": tensors(shape=("batch", 4))})
        """
    )
    run = dyncheck_run("--dyncheck", "bn:spec", SR, FEW)
    assert run.ret == 0, run.text


def test_unseeded_randomness_is_left_to_determinism(dyncheck_run):
    """Two loaded copies that disagree with each other show a model that is not a function
    of its state: that is determinism's finding, not a state_dict's."""
    target = "reference_models.buggy.unseeded_generator:Model"
    run = dyncheck_run("--dyncheck", target, SR, FEW)
    assert run.ret == 0, run.text


@pytest.mark.parametrize("target", ["reference_models.gated:DynamicNet", "reference_models.rnn:DynamicRNN"])
def test_reference_models_pass(dyncheck_run, target):
    run = dyncheck_run("--dyncheck", target, SR, FEW)
    assert run.ret == 0, run.text


def test_each_example_starts_from_a_copy_of_the_model_the_earlier_examples_left(monkeypatch):
    # The earlier examples warm the original up; once chosen they are the same for every
    # example, so the model they leave is kept and copied rather than run again.
    import torch

    from dyncheck.examples import Example
    from dyncheck.invariants import Context
    from dyncheck.invariants.state_roundtrip import StateRoundtrip
    from dyncheck.target import resolve
    from reference_models.gated import DynamicNet

    target = resolve("reference_models.gated:DynamicNet")  # inference reads forward's source
    calls = []
    forward = DynamicNet.forward
    monkeypatch.setattr(DynamicNet, "forward", lambda self, x, control: calls.append(1) or forward(self, x, control))
    context = Context(target)
    check = StateRoundtrip()
    size = target.spec.init["input_size"]
    examples = [Example({"x": torch.ones(2, size) * i, "control": 0.25}, i, {"batch": 2}) for i in range(6)]
    per_example = []
    for example in examples:
        calls.clear()
        with context.counting():
            check.check(context, example)
        per_example.append(len(calls))
    # Two earlier examples are chosen (one path): the third example runs them (and keeps
    # the model they leave); every later one runs only itself: twice on the original, then
    # once on the original and once on the loaded copy. (The first example also pays for
    # the once-per-target probe of whether copies are the model's own.)
    assert per_example[1:] == [5, 6, 4, 4, 4]
    assert context.checked == 6


def test_a_forward_that_differentiates_inside_itself_runs_with_autograd(dyncheck_run, pytester):
    # A Hamiltonian network's field is dH/dx, taken in forward: the checks that call the
    # model without autograd made it raise "element 0 of tensors does not require grad".
    pytester.makepyfile(hamiltonian="""
        import torch
        from torch import nn

        class HNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.H = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1, bias=False))
                self.register_buffer("J", torch.tensor([[0.0, 1.0], [-1.0, 0.0]]))

            def forward(self, x):
                x = x.detach().requires_grad_(True)
                dH = torch.autograd.grad(self.H(x).sum(), x, create_graph=True)[0]
                return dH @ self.J.t()
        """)
    run = dyncheck_run(
        "--dyncheck", "hamiltonian:HNN", "--dyncheck-invariants=state_roundtrip,purity,batch_invariance,grad_isolation",
        "--dyncheck-max-examples=10",
    )
    assert run.ret == 0, run.text

