"""coverage: dead parameters, branches exercised both ways, the census, source branches."""

from __future__ import annotations

import os
import re

import pytest

COV = "--dyncheck-invariants=coverage"
CLASSIFIER_SPEC = """
import dyncheck
from reference_models.classifier import DynamicClassifier

spec = dyncheck.Spec(DynamicClassifier)  # a Spec of its own: the class's xfail does not apply
"""


def test_the_founding_classifier_has_a_dead_branch(dyncheck_run, pytester):
    pytester.makepyfile(asis=CLASSIFIER_SPEC)
    run = dyncheck_run("--dyncheck", "asis:spec", COV, "--dyncheck-seed=4")
    assert run.outcomes() == {"dyncheck::asis:spec::coverage": "FAILED"}
    lines = run.failure("::coverage").strip().splitlines()
    assert lines[0] == "coverage violated by asis:spec"
    assert re.fullmatch(
        r"510 of 6,070 parameters are dead: no example ran their module or reached them in \d+ examples "
        r"and a directed search of [\d,]+ more\.",
        lines[2],
    )
    assert lines[3] == (
        "  fc3 (Linear(in_features=50, out_features=10, bias=True)) never ran: "
        "fc3.weight [10, 50], fc3.bias [10] (510 parameters)"
    )
    assert re.fullmatch(r"  paths seen: fc1 → fc2 \(\d+\)", lines[4])
    assert re.fullmatch(
        r"  source: \S*classifier\.py:\d+  if x\.shape\[1\] > 40:  → never went on to line \d+: "
        r"x = torch\.relu\(self\.fc3\(x\)\)",
        lines[5],
    )
    assert lines[-1] == "Reproduce: pytest --dyncheck asis:spec --dyncheck-only --dyncheck-seed=4 -k coverage"


def test_experts_a_dispatch_can_never_reach_are_dead(dyncheck_run):
    # The router's one-hot choice one-hot encoded again (transformers' NLLB-MoE): experts 2
    # and 3 never run, though every sample is routed and every other check passes.
    target = "reference_models.buggy.one_hot_twice:Model"
    run = dyncheck_run("--dyncheck", target, COV)
    assert run.outcomes() == {f"dyncheck::{target}::coverage": "FAILED"}, run.text
    lines = run.failure("::coverage").strip().splitlines()
    assert lines[2].startswith("108 of 280 parameters are dead"), lines[2]
    assert [line.split(" (")[0] for line in lines[3:5]] == ["  experts.2", "  experts.3"], lines
    assert re.fullmatch(r"  paths seen: router → experts\.0 → experts\.1 → head \(\d+\)", lines[5]), lines[5]


def test_the_reference_classifier_declares_it_as_a_known_bug(dyncheck_run):
    target = "reference_models.classifier:DynamicClassifier"
    run = dyncheck_run("--dyncheck", target, COV)
    assert run.outcomes() == {f"dyncheck::{target}::coverage": "XFAIL"}
    assert run.ret == 0
    summary = run.text.split("dyncheck summary")[1]
    assert "coverage  xfailed  " in summary and "known: as written fc3 can never run" in summary
    assert "    dead: fc3 (510 parameters) never ran on any path" in summary
    assert "untaken source branch: " in summary


def test_a_fixed_classifier_makes_the_strict_xfail_fail(dyncheck_run, pytester):
    pytester.makepyfile(
        fixed="""
        import torch
        from reference_models.classifier import DynamicClassifier

        class Fixed(DynamicClassifier):
            def forward(self, x):
                x = torch.relu(self.fc1(x))
                return torch.relu(self.fc2(x) if x.shape[0] > 1 else self.fc3(x))
        """
    )
    run = dyncheck_run("--dyncheck", "fixed:Fixed", COV)
    assert run.outcomes() == {"dyncheck::fixed:Fixed::coverage": "FAILED"}  # XPASS(strict)
    assert "[XPASS(strict)] as written fc3 can never run" in run.text
    assert run.ret == 1


def test_a_declared_branch_the_inputs_never_take(dyncheck_run, pytester):
    pytester.makepyfile(
        oneside="""
        import dyncheck
        from dyncheck.strategies import controls
        from reference_models.gated import DynamicNet

        spec = dyncheck.Spec(
            DynamicNet,
            init={"input_size": 4, "hidden_size": 3, "output_size": 2},
            inputs={"control": controls(max_value=0.5, as_tensor=True)},
            branches={"fc2": lambda control: control > 0.5},
        )
        """
    )
    run = dyncheck_run("--dyncheck", "oneside:spec", COV)
    lines = run.failure("::coverage").strip().splitlines()
    assert lines[2] == "2 coverage problems:"
    assert re.fullmatch(r"  - 12 of 35 parameters are dead: .*", lines[3])
    assert re.fullmatch(
        r"  - The declared branch fc2 never ran in \d+ examples and a directed search of [\d,]+ more: "
        r"the inputs never made `control > 0\.5` true, "
        r"so one side of it is untested\.",
        lines[4],
    )


def test_good_models_pass_and_the_census_is_in_the_summary(dyncheck_run):
    target = "reference_models.random_depth:DynamicNet"
    run = dyncheck_run("--dyncheck", target, COV, "--dyncheck-seed=3")
    assert run.ret == 0, run.text
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(r"path input_layer → hidden_layer ×3 → output_layer  \(\d+ calls?, 124 params\)", summary)
    assert re.search(r"path input_layer → output_layer  \(\d+ calls?, 82 params\)", summary)
    assert "dead:" not in summary


def test_every_path_counts_its_parameters_those_other_checks_took_too(dyncheck_run):
    # Paths come from every check; the census counts the ones coverage's own calls took.
    # BlockDrop's eval path skips any set of its three blocks (272 parameters each): the rarer
    # sets are taken by other checks' examples, and are counted from the modules on them.
    target = "reference_models.block_drop:BlockDropNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=determinism,batch_invariance,coverage",
                       "--dyncheck-explain", "--dyncheck-seed=3")
    lines = [line for line in run.text.split("dyncheck summary")[1].splitlines() if line.startswith("    path ")]
    assert len(lines) >= 5, run.text
    for line in lines:
        found = re.fullmatch(r"    path (.+)  \(\d+ calls?, ([\d,]+) params\)", line)
        assert found, line
        skipped = 0 if found[1] == "all 9 modules" else len(re.findall(r"blocks\.(\d)(?:-(\d))?", found[1]))
        ranges = re.findall(r"blocks\.(\d)-(\d)", found[1])
        skipped += sum(int(b) - int(a) for a, b in ranges)
        assert int(found[2].replace(",", "")) == 1_055 - 272 * skipped, line


def test_explain_lists_every_path_layer_by_layer(dyncheck_run):
    target = "reference_models.routing:TopOneMoE"
    run = dyncheck_run("--dyncheck", target, COV, "--dyncheck-explain")
    summary = run.text.split("dyncheck summary")[1]
    assert "more (--dyncheck-explain lists all)" not in summary
    assert re.search(r"        router +Linear\(in_features=8, out_features=3, bias=True\) +27\n", summary)
    assert re.search(r"        head +Linear\(in_features=6, out_features=4, bias=True\) +28\n", summary)


def test_paths_show_in_hypothesis_statistics(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", COV, "--hypothesis-show-statistics",
                       "--dyncheck-seed=3", "--dyncheck-max-examples=20")
    statistics = run.text.split("Hypothesis Statistics")[1]
    assert re.search(r"path: fc1 → fc3", statistics)
    assert re.search(r"path: fc1 → fc2 → fc3", statistics)


def test_one_example_is_not_enough_to_call_a_rare_expert_dead(dyncheck_run):
    # With one example the search looked at ten times that, 14, and called expert 0 (chosen
    # about one time in ten) dead; it now looks at 200 at least.
    run = dyncheck_run("--dyncheck", "reference_models.routing:TopOneMoE", COV, "--dyncheck-seed=1",
                       "--dyncheck-max-examples=1")
    assert run.ret == 0, run.text
    assert "experts.0" in run.text.split("dyncheck summary")[1]


def test_the_statistics_are_the_checks_own_when_a_directed_search_ran(dyncheck_run):
    # At this seed the 30 examples never choose expert 0 and the directed search does; its
    # find() must not replace the check's statistics ("1 failing" was the search's hit).
    run = dyncheck_run("--dyncheck", "reference_models.routing:TopOneMoE", COV, "--hypothesis-show-statistics",
                       "--dyncheck-seed=3", "--dyncheck-max-examples=30")
    assert "experts.0" in run.text.split("dyncheck summary")[1], run.text
    statistics = run.text.split("Hypothesis Statistics")[1].split("dyncheck summary")[0]
    assert re.search(r"30 passing, 0 failing, and \d+ invalid test cases", statistics), statistics
    assert "path: router → experts.2 → head" in statistics, statistics
    assert "experts.0" not in statistics, statistics


def test_a_rare_path_is_found_by_the_directed_search(dyncheck_run):
    # Expert 0 of the reference mixture is chosen rarely; with seed 3 and 30 examples the
    # run itself never chooses it (the test above), the directed search does.
    run = dyncheck_run("--dyncheck", "reference_models.routing:TopOneMoE", COV, "--dyncheck-seed=3",
                       "--dyncheck-max-examples=30")
    assert run.ret == 0, run.text
    assert "experts.0" in run.text.split("dyncheck summary")[1]


# --------------------------------------------------------------------------- source branches


def test_a_line_with_no_branch_is_never_an_untaken_branch(dyncheck_run, pytester):
    pytester.makepyfile(
        plain="""
        import torch
        import torch.nn as nn


        class Inner(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 3)

            def forward(self, x): return self.fc(x)


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = Inner()

            def forward(self, x):
                with torch.autocast("cpu", enabled=False):
                    try:
                        y = self.inner(x)
                    except ValueError:
                        y = x
                return y if x.numel() else x
        """
    )
    run = dyncheck_run("--dyncheck", "plain:Model", COV, "--dyncheck-max-examples=5")
    assert run.ret == 0, run.text
    assert "untaken source branch" not in run.text


_LIBRARY = {
    "fakelib/__init__.py": "from fakelib.layers import Layer\n",
    "fakelib/deprecation.py": """
        import functools


        def deprecate_kwarg(name):
            def wrap(function):
                @functools.wraps(function)
                def wrapper(*args, **kwargs):
                    if name in kwargs:
                        kwargs.pop(name)
                    return function(*args, **kwargs)
                return wrapper
            return wrap
        """,
    "fakelib/layers.py": """
        import torch.nn as nn


        class Layer(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 3)

            def forward(self, x):
                if x.shape[0] > 1000:
                    return x
                return self.fc(x)
        """,
}
_USER = """
    import torch.nn as nn
    from fakelib import Layer
    from fakelib.deprecation import deprecate_kwarg


    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = Layer()
            self.norm = nn.LayerNorm(3)

        @deprecate_kwarg("old")
        def forward(self, x):
            if x.shape[0] > 1000:
                return x
            return self.norm(self.layer(x))
    """


def test_source_branches_are_the_models_own_code(tmp_path, monkeypatch):
    import textwrap

    from dyncheck.invariants.path_coverage import own_forwards

    site = tmp_path / "site-packages"
    for name, text in _LIBRARY.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(textwrap.dedent(text))
    (tmp_path / "user_models.py").write_text(textwrap.dedent(_USER))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_models
    from fakelib import Layer

    # The user's model: its own forward, measured in its own file (not the decorator's),
    # and neither the installed library's layers nor torch.nn's.
    functions = own_forwards(user_models.Model(), "user_models")
    assert [(f.filename, f.first) for f in functions] == [(str(tmp_path / "user_models.py"), 13)]
    assert functions[0].branches == {15}
    # A target that is the library's own model measures the library's code.
    functions = own_forwards(Layer(), "fakelib")
    assert [f.filename for f in functions] == [str(site / "fakelib" / "layers.py")]
    # torch's own layers only when the target is one of them.
    import torch.nn as nn

    assert own_forwards(nn.Sequential(nn.Linear(2, 2)), "mymodels") == []
    assert [os.path.basename(f.filename) for f in own_forwards(nn.LSTM(2, 2), "torch.nn")] == ["rnn.py"]


# --------------------------------------------------------------------------- train and eval

EARLY_EXIT = "reference_models.early_exit:EarlyExitNet"


def test_the_early_exit_taken_in_eval_is_not_an_untaken_branch(dyncheck_run):
    run = dyncheck_run("--dyncheck", EARLY_EXIT, COV, "--dyncheck-seed=3")
    assert run.ret == 0, run.text
    summary = run.text.split("dyncheck summary")[1]
    # The census has the eval-mode exits (the full path is training's) ...
    assert re.search(r"    path all 10 modules  \(\d+ calls, 1,164 params\)", summary)
    assert re.search(r"    path blocks\.1-2, exits\.1-2 skipped  \(\d+ calls, 484 params\)", summary)
    # ... and the source branches agree: the early return was taken.
    assert "untaken source branch" not in summary


def test_one_mode_alone_would_miss_the_early_exit():
    # What the test above guards against: measured in train mode only, the early return
    # is an untaken branch.
    import torch

    from dyncheck.invariants.path_coverage import _SourceBranches
    from reference_models.early_exit import EarlyExitNet

    torch.manual_seed(0)
    model = EarlyExitNet()
    source = _SourceBranches(model, "reference_models")
    x = torch.full((2, 8), 1e3)
    with source:
        model.train()(x)
    untaken = source.untaken()
    assert len(untaken) == 1
    assert re.fullmatch(
        r"\S*early_exit\.py:\d+  if not self\.training and done\.all\(\):  → never went on to line \d+: return logits",
        untaken[0],
    )
    with source:
        model.eval()(x)
    assert source.untaken() == []


FIXED_SETTING = """
import torch
from torch import nn


class Scored(nn.Module):
    # the chatbot tutorial's Attn: a setting fixed when the model is built picks the score
    def __init__(self, method="dot"):
        super().__init__()
        self.method = method
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if self.method == "general":
            x = self.fc(x)
        elif self.method == "dot":
            x = x * 2
        for step in range(3):
            if step == 0:
                break
        return x.sum(-1)
"""


def test_an_untaken_arc_to_a_line_that_ran_another_way_says_so(pytester):
    # "never went on to line N" read as "line N never ran" where it ran after the branch's
    # body: the side never taken past an elif whose body always ran is "held every time".
    import linecache

    import torch

    from dyncheck.invariants.path_coverage import _SourceBranches

    path = pytester.makepyfile(fixed_setting=FIXED_SETTING)
    pytester.syspathinsert()
    linecache.checkcache()
    model = __import__("fixed_setting").Scored()
    source = _SourceBranches(model, "fixed_setting")
    with source:
        model(torch.ones(2, 4))
    lines = path.read_text().splitlines()

    def at(code: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if line.strip() == code)

    shown = [line.split("  ", 1)[1] for line in source.untaken()]
    assert shown == [
        f'if self.method == "general":  → never went on to line {at("x = self.fc(x)")}: x = self.fc(x)',
        f'elif self.method == "dot":  → held every time: never skipped to line {at("for step in range(3):")}: '
        "for step in range(3):",
        f"for step in range(3):  → never went from here to line {at('return x.sum(-1)')} (it ran, reached another way): "
        "return x.sum(-1)",
        f"if step == 0:  → held every time: never skipped to line {at('for step in range(3):')}: for step in range(3):",
    ], shown


SETTINGS = """
import torch
from torch import nn


class Required(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.steps = nn.ModuleList([nn.Linear(16, 16) for _ in range(4)])
        self.cls_head, self.reg_head = nn.Linear(16, 3), nn.Linear(16, 1)

    def forward(self, x, num_steps: int, mode: str):
        h = torch.relu(self.inp(x))
        for i in range(min(num_steps, len(self.steps))):
            h = torch.relu(self.steps[i](h)) + h
        return self.cls_head(h) if mode == "classify" else self.reg_head(h)


class Defaulted(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.steps = nn.ModuleList([nn.Linear(16, 16) for _ in range(4)])
        self.head = nn.Linear(16, 3)

    def forward(self, x, num_steps: int = 2):
        h = torch.relu(self.inp(x))
        for i in range(num_steps):
            h = torch.relu(self.steps[i](h)) + h
        return self.head(h)


class Slimmable(nn.Module):
    # a slimmable net: one norm per width, the width chosen by a float multiplier

    def __init__(self):
        super().__init__()
        self.widths = (0.5, 1.0)
        self.inp = nn.Linear(8, 16)
        self.norms = nn.ModuleList([nn.LayerNorm(8), nn.LayerNorm(16)])
        self.head = nn.Linear(16, 3)

    def forward(self, x, width_mult: float = 1.0, eps: float = 1e-5):
        k = int(16 * width_mult)
        h = torch.relu(self.norms[self.widths.index(width_mult)](self.inp(x)[:, :k]))
        return self.head(torch.nn.functional.pad(h, (0, 16 - k)) + eps)


def defaulted():
    return Defaulted()
"""


@pytest.mark.parametrize(("name", "said"), [
    (
        "Required",
        "num_steps (drawn as controls(dtype=int, max_value=4, min_value=0)), mode (drawn as "
        "controls(choices=['classify']))",
    ),
    ("Defaulted", "num_steps (left at its default 2)"),
    ("Slimmable", "width_mult (left at its default 1.0)"),
    ("defaulted", "num_steps (left at its default 2)"),
])
def test_dead_modules_name_the_settings_that_choose_what_runs(dyncheck_run, pytester, name, said):
    # A correct model whose settings the examples gave too few values: the report said only
    # "dead", with nothing to act on. The Spec builds the target as named: a factory, not
    # the class it returns (pasted, Spec(Defaulted) would build other arguments' model).
    pytester.makepyfile(settings=SETTINGS)
    run = dyncheck_run("--dyncheck", f"settings:{name}", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    text = run.failure("::coverage")
    first = said.split(" ")[0]
    assert (
        f"  forward's settings {said} may choose what runs: if other values switch the dead modules on, give them, "
        f"e.g. dyncheck.Spec({name}, inputs={{{first!r}: dyncheck.strategies.controls(...)}}), or declare the "
        "modules Spec(unused=...)"
    ) in text, text  # a float setting named like an eps is not one


def test_the_census_starts_without_reading_the_callers_stack():
    # coverage.py's collector records inspect.stack() for its debug output on the first
    # start: the source of every frame, about 40 ms a check under pytest. The census
    # leaves that record empty, measures as before, and puts coverage.py's function back.
    import torch
    from coverage import collector

    from dyncheck.invariants.path_coverage import _SourceBranches
    from reference_models.early_exit import EarlyExitNet

    before = collector.short_stack
    source = _SourceBranches(EarlyExitNet(), "reference_models")
    with source:
        EarlyExitNet().train()(torch.full((2, 8), 1e3))
    assert source.coverage._collector.origin == ""
    assert collector.short_stack is before
    assert len(source.untaken()) == 1


OPTIONAL_MASK = """
import torch
from torch import nn


class MaskedMean(nn.Module):
    # A weighted mean over time; weights=None (an optional argument dyncheck does not draw) is a plain mean.
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x, weights=None):
        h = torch.tanh(self.proj(x))
        if weights is None:
            return h.mean(1)
        w = weights.unsqueeze(-1).float()
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)
"""


def test_an_untaken_branch_in_a_method_forward_calls_is_listed(dyncheck_run, pytester):
    # DeeBERT's early exit sits in the encoder loop forward calls (self.encode(h)): with a
    # threshold no entropy goes under, the exit never runs.
    pytester.makepyfile(exits="""
        import torch
        from torch import nn

        class Exits(nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(2))
                self.head = nn.Linear(8, 3)

            def encode(self, h):
                for layer in self.layers:
                    h = layer(h)
                    if h.abs().max() > 1e9:
                        return h.clamp(-1, 1)
                return h

            def forward(self, x):
                return self.head(self.encode(x))
        """)
    run = dyncheck_run("--dyncheck", "exits:Exits", COV, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::exits:Exits::coverage": "PASSED"}
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(
        r"    untaken source branch: \S*exits\.py:\d+  if h\.abs\(\)\.max\(\) > 1e9:  → never went on to line \d+: "
        r"return h\.clamp\(-1, 1\)\n",
        summary,
    ), summary


def test_a_branch_on_an_argument_left_at_its_default_names_it_and_the_spec_line(dyncheck_run, pytester):
    pytester.makepyfile(masked=OPTIONAL_MASK)
    run = dyncheck_run("--dyncheck", "masked:MaskedMean", COV, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::masked:MaskedMean::coverage": "PASSED"}
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(
        r"    untaken source branch: \S*masked\.py:\d+  if weights is None:  → never went on to line \d+: "
        r"w = weights\.unsqueeze\(-1\)\.float\(\); weights is left at its default None: give it values with "
        r"Spec\(inputs=\{'weights': \.\.\.\}\)\n",
        summary,
    ), summary


def test_a_branch_on_an_inferred_padding_argument_says_its_default_is_never_given(dyncheck_run):
    # x-transformers' mask=None, drawn on every example: `if mask is None:` stays untaken,
    # and the line says why rather than leaving the reader to wonder.
    target = "reference_models.padding_mask:MaskedTokenEncoder"
    run = dyncheck_run("--dyncheck", target, COV, "--dyncheck-seed=1", "--dyncheck-max-examples=5")
    assert run.outcomes() == {f"dyncheck::{target}::coverage": "PASSED"}
    summary = run.text.split("dyncheck summary")[1]
    assert re.search(
        r"    untaken source branch: \S*padding_mask\.py:\d+  if mask is None:  → never went on to line \d+: "
        r"return self\.head\(h\.mean\(1\)\); mask is inferred and given on every example: its default None never is\n",
        summary,
    ), summary


def test_a_branch_on_an_argument_the_spec_draws_is_not_said_to_be_left_at_its_default(dyncheck_run, pytester):
    pytester.makepyfile(masked=OPTIONAL_MASK, masked_spec="""
import dyncheck
from dyncheck.strategies import tensors
from masked import MaskedMean

spec = dyncheck.Spec(
    MaskedMean,
    inputs={"x": tensors(shape=("batch", "time", 8)), "weights": tensors(shape=("batch", "time"), max_value=1)},
)
""")
    run = dyncheck_run("--dyncheck", "masked_spec:spec", COV, "--dyncheck-seed=1")
    assert run.outcomes() == {"dyncheck::masked_spec:spec::coverage": "PASSED"}
    summary = run.text.split("dyncheck summary")[1]
    # Now the other way is the one no example took, and weights is not said to be left alone.
    assert re.search(r"if weights is None:  → never went on to line \d+: return h\.mean\(1\)\n", summary), summary
    assert "left at its default" not in summary


ELSEWHERE = """
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.regression = nn.Linear(4, 1)

    def forward(self, x):
        return self.regression(x)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)
        self.contact_head = Head()

    def forward(self, x):
        return self.layer(x)

    def predict_contacts(self, x):
        return self.contact_head(self.layer(x))

    # accessors hand the head back or replace it: they do not run it
    def get_contact_head(self):
        return self.contact_head

    def set_contact_head(self, head):
        self.contact_head = head


class Model(nn.Module):
    __dyncheck__ = {"inputs": {"x": __import__("dyncheck").strategies.tensors(shape=("batch", 4))}}

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()

    def forward(self, x):
        return self.encoder(x)
"""


def test_a_module_used_by_another_method_is_named_with_it(dyncheck_run, pytester):
    # ESM's contact head runs in predict_contacts(), never in forward: dead for forward, and
    # the report says which method uses it.
    pytester.makepyfile(elsewhere=ELSEWHERE)
    run = dyncheck_run("--dyncheck", "elsewhere:Model", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    lines = run.failure("::coverage").splitlines()
    at = next(i for i, line in enumerate(lines) if "encoder.contact_head.regression (Linear" in line)
    assert lines[at + 1] == (
        "    encoder.contact_head is used by Encoder.predict_contacts(), not by forward: check that method with a "
        "Spec whose model calls it, or declare it: Spec(unused={'encoder.contact_head': 'used by "
        "Encoder.predict_contacts()'})"
    )


HELPER = """
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.local = nn.Linear(4, 4)
        self.query_global = nn.Linear(4, 4)

    def forward(self, x, is_global=False):
        if is_global:
            return self._global_output(x)
        return self.local(x)

    def _global_output(self, x):
        return self._project(x) + 1

    def _project(self, x):
        return self.query_global(x)


class Model(nn.Module):
    __dyncheck__ = {"inputs": {"x": __import__("dyncheck").strategies.tensors(shape=("batch", 4))}}

    def __init__(self):
        super().__init__()
        self.attention = Attention()

    def forward(self, x, global_attention_mask=None):
        return self.attention(x, is_global=global_attention_mask is not None)
"""


def test_a_module_forward_reaches_through_a_helper_is_not_called_used_elsewhere(dyncheck_run, pytester):
    # Longformer's global attention: forward calls a helper (which calls another) that runs
    # the module, on a branch no example took. Not another entry point to check with a Spec.
    pytester.makepyfile(helper=HELPER)
    run = dyncheck_run("--dyncheck", "helper:Model", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    lines = run.failure("::coverage").splitlines()
    at = next(i for i, line in enumerate(lines) if "attention.query_global (Linear" in line)
    assert lines[at + 1] == (
        "    attention.query_global is used by Attention._project(), which forward calls: on a branch no example "
        "took; give inputs that take it, or, if none does (a setting fixed when the model is built), declare it: "
        "Spec(unused={'attention.query_global': 'used by Attention._project()'})"
    ), lines
    # ... and the optional argument that may switch the branch on is named after it.
    assert lines[at + 2].startswith(
        "  forward's optional argument global_attention_mask was left at its default None; if it switches the dead "
        "modules on, give it values"
    ), lines


REACHED = """
import torch
import torch.utils.checkpoint
from torch import nn

DY = {"inputs": {"x": __import__("dyncheck").strategies.tensors(shape=("batch", 4))}}


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.main, self.extra = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x, flag=None):
        return self.helper(x) if flag is not None else self.main(x)

    def helper(self, x):
        return self.extra(x)

    def outer_helper(self, x):
        return self.helper(x)


class AlsoElsewhere(Base):
    # forward calls helper, which uses extra; another method reads it too (CLIP's
    # set_grad_checkpointing beside encode_text)
    __dyncheck__ = DY

    def checkpointing(self):
        return self.extra.weight.requires_grad


class Override(Base):
    # forward calls Sub's helper, which never uses extra; the overridden one did
    __dyncheck__ = DY

    def helper(self, x):
        return self.main(x)

    def forward(self, x):
        return self.helper(x)


class Commented(Base):
    __dyncheck__ = DY

    def forward(self, x):
        # no extra here: call self.helper(x) yourself
        return self.main(x) if "self.helper(x)" else None


class Child(Base):
    # the helper is reached through the parent's forward, by super()
    __dyncheck__ = DY

    def forward(self, x, flag=None):
        return super().forward(x, flag) * 2


class Documented(Base):
    __dyncheck__ = DY

    def forward(self, x, flag=None):
        '''A docstring with an example at column 0:
>>> model(x)
        '''
        return self.helper(x) if flag is not None else self.main(x)


class Handed(Base):
    # the helper is handed to another function, not called here
    __dyncheck__ = DY

    def forward(self, x, flag=None):
        return torch.utils.checkpoint.checkpoint(self.helper, x, use_reentrant=False) if flag is not None else self.main(x)


class Chained(nn.Module):
    # forward calls a submodule's method, which calls another of its own
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.inner = Base()

    def forward(self, x, flag=None):
        return self.inner.outer_helper(x) if flag is not None else self.inner(x)


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.main, self.proj = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.main(x)

    def helper(self, x):
        return self.proj(x)


class Middle(nn.Module):
    def __init__(self):
        super().__init__()
        self.deep = Deep()

    def forward(self, x):
        return self.deep(x)

    def special(self, x):
        return self.deep.helper(x)


class Looped(nn.Module):
    # forward calls a method of each element of a container it loops over
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Deep(), Deep()])

    def forward(self, x, flag=None):
        for layer in self.layers:
            x = layer.helper(x) if flag is not None else layer(x)
        return x


class Enumerated(nn.Module):
    # ... through enumerate() over a ModuleDict's values()
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleDict({"a": Deep(), "b": Deep()})

    def forward(self, x, flag=None):
        for i, block in enumerate(self.blocks.values()):
            x = block.helper(x) if flag is not None else block(x)
        return x


class Indexed(nn.Module):
    # ... or of an element taken by index
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Deep()])

    def forward(self, x, flag=None):
        return self.layers[0].helper(x) if flag is not None else self.layers[0](x)


class SelfLooped(nn.Sequential):
    # ... through iterating the Sequential itself
    __dyncheck__ = DY

    def __init__(self):
        super().__init__(Deep(), Deep())

    def forward(self, x, flag=None):
        for layer in self:
            x = layer.helper(x) if flag is not None else layer(x)
        return x


class Elsewhere(nn.Module):
    # a loop over something else: a method called on its elements is not one of ours
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([Deep()])

    def forward(self, x, flag=None):
        for layer in [torch.nn.Identity()]:
            x = layer.helper(x) if flag is not None else layer(x)
        return self.layers[0](x)


class TwoLevels(nn.Module):
    # forward calls a submodule's method, which calls a method of its own submodule
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.inner = Middle()

    def forward(self, x, flag=None):
        return self.inner.special(x) if flag is not None else self.inner(x)


class Outer(nn.Module):
    # forward calls a method of a submodule
    __dyncheck__ = DY

    def __init__(self):
        super().__init__()
        self.inner = Base()

    def forward(self, x, flag=None):
        return self.inner.helper(x) if flag is not None else self.inner(x)
"""


@pytest.mark.parametrize(("name", "dead", "through"), [
    ("Override", "extra", False), ("Commented", "extra", False), ("Child", "extra", True), ("Outer", "inner.extra", True),
    ("Documented", "extra", True), ("Handed", "extra", True), ("Chained", "inner.extra", True),
    ("TwoLevels", "inner.deep.proj", True), ("Looped", "layers.1.proj", True), ("Enumerated", "blocks.b.proj", True),
    ("Indexed", "layers.0.proj", True), ("Elsewhere", "layers.0.proj", False), ("SelfLooped", "1.proj", True),
])
def test_which_methods_forward_calls_is_read_from_the_code(dyncheck_run, pytester, name, dead, through):
    # Only a call in forward's code of the method that runs (through super() and submodules
    # too, and the elements of a container forward loops over or indexes) makes a dead module
    # one "forward calls on a branch"; an overridden method or a comment does not.
    pytester.makepyfile(reached=REACHED)
    run = dyncheck_run("--dyncheck", f"reached:{name}", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    text = run.failure("::coverage")
    said = "which forward calls: on a branch no example took" if through else "not by forward"
    owner = "Base" if dead.endswith("extra") else "Deep"
    assert f"    {dead} is used by {owner}.helper(), {said}" in text, text


def test_a_method_forward_calls_is_told_apart_from_others_that_use_the_module(dyncheck_run, pytester):
    pytester.makepyfile(reached=REACHED)
    run = dyncheck_run("--dyncheck", "reached:AlsoElsewhere", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    assert (
        "    extra is used by Base.helper(), which forward calls: on a branch no example took; also by "
        "AlsoElsewhere.checkpointing(), which forward does not call; give inputs that take it"
    ) in run.failure("::coverage")


def test_a_module_declared_unused_is_not_dead_and_the_summary_says_so(dyncheck_run, pytester):
    # The fix the message above offers: the rest of the model is still checked for dead parameters.
    pytester.makepyfile(
        elsewhere=ELSEWHERE,
        declared="""
import dyncheck
from dyncheck.strategies import tensors
from elsewhere import Model

spec = dyncheck.Spec(Model, inputs={"x": tensors(shape=("batch", 4))},
                     unused={"encoder.contact_head": "used by Encoder.predict_contacts()"})
""",
    )
    run = dyncheck_run("--dyncheck", "declared:spec", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    assert run.outcomes() == {"dyncheck::declared:spec::coverage": "PASSED"}, run.text
    summary = run.text.split("dyncheck summary")[1]
    assert (
        "declared unused (Spec(unused=...)), not counted dead: encoder.contact_head (used by "
        "Encoder.predict_contacts())" in summary
    ), summary
    assert "    dead:" not in summary
    # --dyncheck-explain gives it back as Spec source.
    explained = dyncheck_run("--dyncheck", "declared:spec", "--dyncheck-only", "--dyncheck-explain", "--co")
    assert "    unused={'encoder.contact_head': 'used by Encoder.predict_contacts()'}," in explained.text, explained.text


def test_a_module_declared_unused_that_forward_runs_fails(dyncheck_run, pytester):
    # A stale declaration must not hide a module forward does use.
    pytester.makepyfile(
        stale="""
import dyncheck
from dyncheck.strategies import tensors
from torch import nn


class Model(nn.Module):
    __dyncheck__ = {"inputs": {"x": tensors(shape=("batch", 4))}, "unused": {"head": "not used any more"}}

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.head = nn.Sequential(nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.body(x))
"""
    )
    run = dyncheck_run("--dyncheck", "stale:Model", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    text = run.failure("::coverage")
    assert (
        "head is declared unused in forward ('not used any more'), but forward used it in 5 examples: head, head.0 ran. "
        "Remove 'head' from Spec(unused=...)." in text
    ), text


FROZEN = """
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import tensors


class Table(nn.Module):
    '''Fixed scales, a frozen parameter, read through a method: the module is never called.'''

    def __init__(self):
        super().__init__()
        self.scales = nn.Parameter(torch.linspace(0.5, 2.0, 4), requires_grad=False)

    def scaled(self, x):
        return x * self.scales


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.table = Table()
        self.spare = Table()  # never read at all

    def forward(self, x):
        return self.table.scaled(self.fc(x))


spec = dyncheck.Spec(Model, inputs={"x": tensors(shape=("batch", 4), min_value=1, max_value=2)})
"""


def test_a_frozen_parameter_the_output_moves_with_is_not_dead(dyncheck_run, pytester):
    # No gradient reaches a frozen parameter, and its module never ran: coverage called
    # rotary embeddings' fixed frequencies dead. Changed, they move the output; spare's do not.
    pytester.makepyfile(frozen=FROZEN)
    run = dyncheck_run("--dyncheck", "frozen:spec", COV, "--dyncheck-max-examples=10")
    text = run.failure("::coverage")
    assert "4 of 28 parameters are dead" in text, text
    assert "spare (Table()) never ran: spare.scales [4] (4 parameters)" in text
    assert "table (Table())" not in text


SOFT_HEADS = """
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import controls, tensors


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(2))

    def forward(self, x, task_id):
        # every head runs, weighted: the 'choice' is soft
        weights = torch.softmax(torch.nn.functional.one_hot(torch.tensor(task_id), 2).float() * 8, 0)
        return sum(w * head(x) for w, head in zip(weights, self.heads))


spec = dyncheck.Spec(
    Model,
    inputs={"x": tensors(shape=("batch", 4)), "task_id": controls(dtype=int, min_value=0, max_value=1)},
    branches={"heads.0": lambda task_id: task_id == 0, "heads.1": lambda task_id: task_id == 1},
)
"""


def test_a_branch_that_runs_whatever_its_predicate_says_is_told_so(dyncheck_run, pytester):
    # The inputs did make task_id == 0 false; the head ran all the same. It said "the inputs
    # never made `task_id == 0` false", and searched for inputs that would.
    pytester.makepyfile(soft=SOFT_HEADS)
    run = dyncheck_run("--dyncheck", "soft:spec", COV, "--dyncheck-max-examples=10")
    text = run.failure("::coverage")
    assert re.search(
        r"The declared branch heads\.0 always ran in 10 examples, although `task_id == 0` was false on \d+ of its "
        r"calls: it runs whatever its predicate says \(grad_isolation names an example\)\.", text
    ), text
    assert "never made" not in text and "directed search" not in text


def test_an_integer_frozen_table_read_by_index_is_changed_by_one_and_reached(dyncheck_run, pytester):
    # scaling it as floats raised inside dyncheck ("result type Float can't be cast to Long")
    pytester.makepyfile(permuted="""
        import torch
        from torch import nn


        class Table(nn.Module):
            def __init__(self):
                super().__init__()
                self.perm = nn.Parameter(torch.tensor([2, 0, 1, 3]), requires_grad=False)


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.table = Table()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x[:, self.table.perm])
    """)
    run = dyncheck_run("--dyncheck", "permuted:Model", COV, "--dyncheck-max-examples=5")
    assert run.outcomes() == {"dyncheck::permuted:Model::coverage": "PASSED"}, run.text


def test_a_parameter_of_no_elements_is_never_dead(dyncheck_run, pytester):
    # vit-pytorch's MAE runs its encoder's layers, not its forward; the encoder's cls_token
    # holds no tokens (pool='mean'). Coverage reported "0 of 35 parameters are dead".
    pytester.makepyfile(
        empty="""
        import torch
        from torch import nn

        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.cls_token = nn.Parameter(torch.randn(1, 0, 4))
                self.fc = nn.Linear(4, 4)

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = Encoder()
                self.head = nn.Linear(4, 3)

            def forward(self, x):
                return self.head(self.encoder.fc(x))
        """
    )
    run = dyncheck_run("--dyncheck", "empty:Model", "--dyncheck-invariants=coverage", "--dyncheck-max-examples=5")
    assert run.outcomes() == {"dyncheck::empty:Model::coverage": "PASSED"}, run.text
