"""``--dyncheck module.path:Name``: every bad target is one line on stderr, naming the
target and the fix, with exit code 4 and no traceback; every accepted form of target runs.

Model modules are written into pytester's temporary directory, which is the current
directory of the run and is not on sys.path: dyncheck must make it importable itself.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

MODEL = """
import torch
from torch import nn

import dyncheck
from dyncheck import strategies as ds


class Model(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config, 2)

    def forward(self, x):
        return torch.tanh(self.fc(x))
"""


def module(body: str = "") -> str:
    return MODEL + textwrap.dedent(body)


def run(pytester: pytest.Pytester, target: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--dyncheck-only", "-p", "no:cacheprovider", "--dyncheck", target, *args)


def usage_error(pytester: pytest.Pytester, target: str) -> str:
    """The one stderr line of a rejected target, after ``ERROR: --dyncheck <target>: ``."""
    result = run(pytester, target)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    assert "Traceback" not in output
    lines = [line for line in result.stderr.lines if line.strip()]
    assert len(lines) == 1, output
    prefix = f"ERROR: --dyncheck {target}: "
    assert lines[0].startswith(prefix), output
    return lines[0][len(prefix):]


# --------------------------------------------------------------------------- finding the target


def test_target_without_a_colon(pytester):
    message = usage_error(pytester, "reference_models.gated")
    assert message == (
        "a target is module.path:Name (an nn.Module class, a dyncheck.Spec or a factory), "
        "e.g. --dyncheck mypackage.models:Net"
    )


def test_target_with_an_empty_part(pytester):
    message = usage_error(pytester, "mymod:")
    assert message == "both parts are needed: module.path:Name, e.g. mypackage.models:Net"


def test_module_that_does_not_exist(pytester):
    message = usage_error(pytester, "nosuchmodule.models:Net")
    assert message == (
        "no module named 'nosuchmodule' (searched the current directory and sys.path; "
        "run pytest from the project root or install the package)"
    )


def test_module_that_raises_on_import_shows_the_cause_and_the_line(pytester):
    pytester.makepyfile(mymod="import math\nRATIO = 1 / 0\n")
    message = usage_error(pytester, "mymod:Model")
    assert message == "importing 'mymod' failed at mymod.py:2: ZeroDivisionError: division by zero"


def test_missing_dependency_is_not_a_missing_target(pytester):
    # "my" is a prefix of "mymod": still the dependency that is missing, not the target.
    pytester.makepyfile(mymod="import my\n")
    message = usage_error(pytester, "mymod:Model")
    assert message == "importing 'mymod' failed at mymod.py:1: ModuleNotFoundError: No module named 'my'"


def test_missing_attribute_suggests_a_close_name(pytester):
    pytester.makepyfile(mymod=module())
    message = usage_error(pytester, "mymod:Modle")
    assert message == "'mymod' has no attribute 'Modle'; did you mean mymod:Model?"


def test_missing_attribute_lists_the_models_when_no_name_is_close(pytester):
    pytester.makepyfile(mymod=module())
    message = usage_error(pytester, "mymod:Transformer")
    assert message == "'mymod' has no attribute 'Transformer'; it has Model"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("3", "int 3"), ("'hello'", "str 'hello'")],
    ids=["int", "str"],
)
def test_attribute_that_is_not_a_model(pytester, value, shown):
    pytester.makepyfile(mymod=f"VALUE = {value}\n")
    message = usage_error(pytester, "mymod:VALUE")
    assert message == (
        f"{shown} is not an nn.Module subclass, a dyncheck.Spec or a zero-argument factory "
        "returning a module"
    )


def test_factory_that_needs_arguments(pytester):
    pytester.makepyfile(mymod=module("""
        def make(width, depth=2):
            return Model(width)
    """))
    message = usage_error(pytester, "mymod:make")
    assert message == (
        "make() needs arguments (width); a factory takes none "
        "— or write dyncheck.Spec(make, init={'width': ...})"
    )


def test_factory_that_returns_something_else(pytester):
    pytester.makepyfile(mymod="def make():\n    return 'a model'\n")
    assert usage_error(pytester, "mymod:make") == "the factory returned str, not an nn.Module"
    # a Spec: the target is the Spec itself, named at module level
    pytester.makepyfile(specmod="import dyncheck\nfrom torch import nn\n\ndef make():\n    return dyncheck.Spec(nn.Linear(3, 2))\n")
    assert usage_error(pytester, "specmod:make") == (
        "the factory returned a dyncheck.Spec, which is a target itself: name it at module level (spec = make()) "
        "and check module:spec"
    )


# --------------------------------------------------------------------------- building and inferring


def test_constructor_argument_that_cannot_be_inferred(pytester):
    pytester.makepyfile(mymod=module())
    message = usage_error(pytester, "mymod:Model")
    assert message == (
        "cannot infer constructor argument 'config' of Model(config=...); "
        "give it with dyncheck.Spec(Model, init={'config': ...})"
    )


def test_forward_argument_that_cannot_be_inferred(pytester):
    pytester.makepyfile(mymod=module("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 3)

            def forward(self, x, features):
                return self.fc(x) + features.mean()
    """))
    message = usage_error(pytester, "mymod:Net")
    assert message == (
        "cannot infer forward argument 'features' of Net (no layer in forward consumes it); "
        "write dyncheck.Spec(Net, inputs={'features': dyncheck.strategies.tensors(shape=(\"batch\", ...))})"
    )


def test_a_strategy_hypothesis_refuses_is_the_specs_mistake_in_one_line(pytester):
    # Drawn by the checks, every one of them said "dyncheck itself raised InvalidArgument".
    pytester.makepyfile(mymod=module("""
        import dyncheck
        from hypothesis import strategies as st

        spec = dyncheck.Spec(Model, init={"config": 4}, inputs={
            "x": st.lists(st.floats(0.05, 0.5, width=32), min_size=4, max_size=4).map(lambda v: torch.tensor([v])),
        })
    """))
    assert usage_error(pytester, "mymod:spec") == (
        "Spec(inputs={'x': ...}) is not a strategy Hypothesis can draw: min_value=0.05 cannot be exactly "
        "represented as a float of width 32 - use min_value=0.05000000074505806 instead."
    )


def test_a_strategy_that_raises_when_built_is_the_specs_mistake_in_one_line(pytester):
    pytester.makepyfile(mymod=module("""
        from hypothesis import strategies as st

        spec = dyncheck.Spec(Model, init={"config": 4}, inputs={"x": st.deferred(lambda: undefined_strategy)})
    """))
    assert usage_error(pytester, "mymod:spec") == (
        "Spec(inputs={'x': ...}) raised NameError when Hypothesis built it: name 'undefined_strategy' is not defined"
    )


def test_constructor_that_raises(pytester):
    pytester.makepyfile(mymod=module("""
        class Net(nn.Module):
            def __init__(self, hidden_size):
                super().__init__()
                raise ValueError(f"hidden_size={hidden_size} must be even")
    """))
    message = usage_error(pytester, "mymod:Net")
    assert message == (
        "building Net(hidden_size=8) raised ValueError: hidden_size=8 must be even; "
        "pass constructor arguments with dyncheck.Spec(Net, init={...})"
    )


def test_a_factory_of_no_arguments_that_raises_is_not_told_to_take_arguments(pytester):
    # Spec(make_net, init={...}) cannot help a factory that takes nothing: the error is its own.
    pytester.makepyfile(mymod=module("""
        def make_net():
            return Model(len(8))
    """))
    assert usage_error(pytester, "mymod:make_net") == (
        "building make_net() raised TypeError: object of type 'int' has no len(); make_net() takes no arguments, "
        "so the error is the factory's own: call it in Python to see where"
    )


ARGPARSE_FIX = (
    "argparse read pytest's command line: parse it only under if __name__ == \"__main__\": (or with "
    "parse_known_args())"
)


@pytest.mark.parametrize("where", ["module", "constructor"])
def test_a_model_that_parses_the_command_line_is_told_where_and_how(pytester, monkeypatch, where):
    # Research code often parses its arguments where the model is defined; under pytest the
    # command line is pytest's, and argparse exits. One line names it, never a traceback.
    target = "mymod:Model" if where == "module" else "mymod:Net"
    monkeypatch.setattr(sys, "argv", ["pytest", "--dyncheck", target])  # as a user's run has it
    parse = "args = argparse.ArgumentParser().parse_args()"
    if where == "module":
        source = f"import argparse\n{parse}\n" + module()
        expected = f"importing 'mymod' failed at mymod.py:2: SystemExit: 2; {ARGPARSE_FIX}"
    else:
        source = "import argparse\n" + module(f"""
            class Net(Model):
                def __init__(self):
                    {parse}
                    super().__init__(8)
        """)
        # A factory that builds the model without the parsing is an answer here only: a
        # module that exits while importing has none to offer.
        expected = f"building Net() raised SystemExit: 2; {ARGPARSE_FIX}, or name a factory that builds the model without it"
    pytester.makepyfile(mymod=source)
    result = run(pytester, target)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "Traceback" not in output, output
    # argparse's own usage lines come first, as the user's program prints them.
    assert [line for line in result.stderr.lines if line.strip()][-1] == f"ERROR: --dyncheck {target}: {expected}", output


def test_a_constructor_that_exits_is_a_usage_error(pytester):
    pytester.makepyfile(mymod=module("""
        import sys

        class Net(Model):
            def __init__(self, config=None):
                if config is None:
                    sys.exit("Net needs a config")
                super().__init__(config)
    """))
    assert usage_error(pytester, "mymod:Net") == (
        "building Net() raised SystemExit: Net needs a config; pass constructor arguments with "
        "dyncheck.Spec(Net, init={...})"
    )


SCRIPTED_FIX = (
    "is a TorchScript module (torch.jit.script or torch.jit.trace), and torch refuses it the forward hooks "
    "dyncheck follows paths with: check the eager module it is made from (a factory that builds the model "
    "without scripting), and script it after"
)


def test_a_torchscript_module_is_one_line_naming_it(pytester):
    # torch refuses hooks on a ScriptModule: every check would fail on a correct model.
    pytester.makepyfile(mymod=module("""
        import warnings

        def script(model):
            with warnings.catch_warnings():  # deprecated in favour of torch.compile, still used
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.script(model)

        class Part(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return torch.relu(self.fc(x))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.part = script(Part())
                self.out = nn.Linear(4, 2)

            def forward(self, x):
                return self.out(self.part(x))

        def scripted():
            return script(Part())
    """))
    assert usage_error(pytester, "mymod:Net") == f"'part' {SCRIPTED_FIX}"
    assert usage_error(pytester, "mymod:scripted") == f"the model {SCRIPTED_FIX}"


def test_a_model_that_cannot_be_copied_is_one_line_naming_the_attribute(pytester):
    # dyncheck checks copies, never the model itself: an attribute copy.deepcopy refuses
    # stopped resolution with a pytest INTERNALERROR from inside the copy.
    pytester.makepyfile(mymod=module("""
        import threading

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Sequential(nn.Linear(4, 2))
                self.fc[0].lock = threading.Lock()

            def forward(self, x):
                return self.fc(x)
    """))
    assert usage_error(pytester, "mymod:Net") == (
        "dyncheck works on copies of the model and cannot copy it: fc.0.lock (lock) cannot be copied: "
        "TypeError: cannot pickle '_thread.lock' object; keep something copy.deepcopy copies there "
        "(a function or method instead of the object)"
    )


# --------------------------------------------------------------------------- invalid Spec fields

SPEC = "spec = dyncheck.Spec(Model, init={'config': 3}, %s)\n"


def test_branches_naming_an_unknown_module(pytester):
    pytester.makepyfile(mymod=module(SPEC % "branches={'fc2': lambda x: True}"))
    message = usage_error(pytester, "mymod:spec")
    assert message == "Spec(branches=...) names module 'fc2', which Model does not have; did you mean 'fc'?"


def test_unused_naming_an_unknown_module(pytester):
    pytester.makepyfile(mymod=module(SPEC % "unused={'fcc': 'a head'}"))
    message = usage_error(pytester, "mymod:spec")
    assert message == "Spec(unused=...) names module 'fcc', which Model does not have; did you mean 'fc'?"


def test_unused_needs_a_reason(pytester):
    pytester.makepyfile(mymod=module(SPEC % "unused={'fc': ''}"))
    message = usage_error(pytester, "mymod:spec")
    assert message == (
        "importing 'mymod' failed at mymod.py:15: InvalidArgument: Spec(unused={'fc': ''}) needs a module name and a reason, e.g. "
        'unused={"contact_head": "run by predict_contacts(), not by forward"}'
    )


def test_ties_naming_an_unknown_parameter(pytester):
    pytester.makepyfile(mymod=module(SPEC % "ties=[('fc.weight', 'fc.weigth')]"))
    message = usage_error(pytester, "mymod:spec")
    assert message.startswith(
        "Spec(ties=...) names parameter 'fc.weigth', which Model does not have; did you mean 'fc.weight'"
    )


def test_inputs_holding_a_non_strategy_fails_while_importing(pytester):
    # Spec validates its fields when it is built, i.e. while the user's module is imported.
    path = pytester.makepyfile(mymod=module(SPEC % "inputs={'x': 3}"))
    message = usage_error(pytester, "mymod:spec")
    line = path.read_text().splitlines().index(SPEC.strip() % "inputs={'x': 3}") + 1
    assert message == (
        f"importing 'mymod' failed at mymod.py:{line}: InvalidArgument: Spec(inputs={{'x': 3}}): "
        "3 is not a Hypothesis strategy; write e.g. "
        "inputs={'x': dyncheck.strategies.tensors(shape=(\"batch\", 4))} or st.just(3)"
    )


def test_inputs_naming_an_argument_forward_does_not_take(pytester):
    pytester.makepyfile(mymod=module(SPEC % "inputs={'y': ds.tensors(shape=('batch', 3))}"))
    message = usage_error(pytester, "mymod:spec")
    assert message == "Spec(inputs=...) names 'y', which Model.forward does not take (it takes x)"


def test_predicate_naming_a_non_argument(pytester):
    pytester.makepyfile(mymod=module(SPEC % "branches={'fc': lambda control: control > 0.5}"))
    message = usage_error(pytester, "mymod:spec")
    assert message == (
        "Spec(branches={'fc': ...}): the predicate takes 'control', which is not a forward "
        "argument (forward takes x)"
    )


def test_skip_naming_an_unknown_invariant(pytester):
    pytester.makepyfile(mymod=module(SPEC % "skip={'determinsm': 'it samples'}"))
    message = usage_error(pytester, "mymod:spec")
    assert message.startswith(
        "Spec(skip=...) names unknown invariant 'determinsm'; did you mean 'determinism'? known: "
    )
    assert "determinism" in message.partition("known: ")[2]


def test_dunder_dyncheck_with_an_unknown_field(pytester):
    pytester.makepyfile(mymod=module("""
        class Net(Model):
            __dyncheck__ = {"inits": {"config": 3}}
    """))
    message = usage_error(pytester, "mymod:Net")
    assert message == (
        "__dyncheck__ has unknown Spec field(s) inits; did you mean init? the fields are "
        "against, branches, causal, dims, frozen, init, inputs, lengths, load_with_assign, loss, model, name, optimizer, "
        "padding_value, skip, state_map, ties, tolerances, unused, xfail"
    )


def test_spec_without_a_model(pytester):
    pytester.makepyfile(mymod=module("spec = dyncheck.Spec(init={'config': 3})\n"))
    assert usage_error(pytester, "mymod:spec") == "this Spec has no model; write dyncheck.Spec(MyModel, ...)"


# --------------------------------------------------------------------------- accepted targets

GOOD = {
    "mymod:spec": "spec = dyncheck.Spec(Model, init={'config': 3}, inputs={'x': ds.tensors(shape=('batch', 3))})\n",
    "mymod:make": "def make():\n    return Model(4)\n",
    "mymod:WithDict": "class WithDict(Model):\n    __dyncheck__ = {'init': {'config': 5}}\n",
    "mymod:WithSpec": "class WithSpec(Model):\n    __dyncheck__ = dyncheck.Spec(init={'config': 5})\n",
    "mymod:INSTANCE": "INSTANCE = Model(6)\n",
}


@pytest.mark.parametrize("target", list(GOOD))
def test_accepted_target_runs_and_passes(pytester, target):
    # Model's constructor needs `config`, which cannot be inferred: passing proves that
    # the Spec, the factory, the __dyncheck__ or the instance was used.
    pytester.makepyfile(mymod=module(GOOD[target]))
    result = run(pytester, target, "-rA", "--dyncheck-max-examples=5", "--dyncheck-invariants=determinism,finite")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([
        f"PASSED dyncheck::{target}::determinism",
        f"PASSED dyncheck::{target}::finite",
    ])
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("target", ["mymod:make", "mymod:INSTANCE"])
def test_users_instance_is_never_mutated(pytester, target):
    import torch

    pytester.makepyfile(mymod=module("""
        CALLED = []  # id() of every module whose forward ran

        class Recorded(Model):
            def forward(self, x):
                CALLED.append(id(self))
                return torch.tanh(self.fc(x))

        INSTANCE = Recorded(3)

        def make():
            return INSTANCE
    """))
    # Imported here first, so the run uses (and could change) this very module object.
    pytester.syspathinsert()
    mymod = importlib.import_module("mymod")
    instance = mymod.INSTANCE
    before = {name: p.detach().clone() for name, p in instance.named_parameters()}
    result = run(pytester, target, "--dyncheck-max-examples=5", "--dyncheck-invariants=determinism,finite")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert sys.modules["mymod"] is mymod
    assert mymod.CALLED, "the model never ran"
    assert id(instance) not in mymod.CALLED, "dyncheck ran the user's own instance, not a copy"
    for name, parameter in instance.named_parameters():
        assert torch.equal(parameter, before[name]), name
        assert parameter.grad is None, name
        assert parameter.requires_grad, name
    for name, submodule in instance.named_modules():
        assert submodule.training, name
        for hooks in ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(submodule, hooks), f"{name or 'model'}.{hooks}"


def test_the_current_directory_is_importable(pytester, monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    assert str(pytester.path) not in sys.path
    pytester.makepyfile(mymod=module(GOOD["mymod:make"]))
    result = run(pytester, "mymod:make", "--dyncheck-max-examples=2", "--dyncheck-invariants=finite")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)


def test_build_hands_out_copies_of_a_factorys_or_an_instances_module():
    # Unit level: Target.build itself never returns the user's object (the pytester test
    # above also covers the invariants' own copies).
    import torch
    from torch import nn

    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

    shared = Small()
    for model in (lambda: shared, shared):
        built = resolve_spec(Spec(model)).build()
        assert built is not shared and built.fc.weight is not shared.fc.weight
        assert torch.equal(built.fc.weight, shared.fc.weight)


# --------------------------------------------------------------------------- torch layers as targets
# Every builtin_layers target is in GOOD_TARGETS. Two of them once met false alarms on
# attention saturated by inputs of magnitude 1e3: dtype_agreement found the float32 query and
# key gradients apart from float64's (rounding noise of a softmax backward at a one-hot
# distribution), and batch_invariance a batch rounding differently from one sample. Both
# checks now give a difference the margin a one-ulp move of the inputs explains.

LAYERS = "reference_models.builtin_layers"


@pytest.mark.parametrize(
    ("target", "invariant"), [(f"{LAYERS}:encoder_layer", "dtype_agreement"), (f"{LAYERS}:cross_attention", "batch_invariance")]
)
def test_attention_saturated_by_large_inputs_is_rounding_not_a_finding(dyncheck_run, target, invariant):
    run = dyncheck_run("--dyncheck", target, f"--dyncheck-invariants={invariant}", "--dyncheck-seed=1",
                       "--dyncheck-max-examples=100")
    assert run.outcomes() == {f"dyncheck::{target}::{invariant}": "PASSED"}, run.text


@pytest.mark.parametrize(
    "target",
    [
        "reference_models.lenet:LeNet",  # the size probe calls it on random images
        "reference_models.word_lm:WordTransformerLM",  # the layout probe calls it on random ids
    ],
)
def test_resolution_leaves_the_callers_random_streams_as_they_were(target):
    import random

    import torch

    from dyncheck.target import resolve

    torch.manual_seed(5)
    random.seed(5)
    expected = (torch.rand(3).tolist(), random.random())
    torch.manual_seed(5)
    random.seed(5)
    resolve(target)
    assert (torch.rand(3).tolist(), random.random()) == expected


def test_a_decorated_forward_is_called_positionally(dyncheck_run, pytester):
    # tensordict's @dispatch reads keywords as keys of the dict it builds: called
    # forward(tensordict=...), every check raised "got multiple values for argument"
    pytester.makepyfile(
        dispatched="""
        import functools

        from hypothesis import strategies as st
        from torch import nn

        import dyncheck
        from dyncheck.strategies import tensors

        def dispatch(func):
            @functools.wraps(func)
            def wrapper(self, *args, **kwargs):
                if args and isinstance(args[0], dict):
                    return func(self, args[0], *args[1:], **kwargs)
                return func(self, {key: kwargs.pop(key) for key in self.in_keys if key in kwargs}, **kwargs)
            return wrapper

        class Module(nn.Module):
            in_keys = ["obs"]

            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(4, 8, batch_first=True)

            @dispatch
            def forward(self, tensordict=None):
                return self.gru(tensordict["obs"])[0]

        spec = dyncheck.Spec(Module, inputs={"tensordict": st.fixed_dictionaries({"obs": tensors(shape=("batch", "time", 4))})})
        """
    )
    run = dyncheck_run("--dyncheck", "dispatched:spec", "--dyncheck-invariants=determinism,batch_invariance")
    assert run.outcomes() == {
        "dyncheck::dispatched:spec::determinism": "PASSED", "dyncheck::dispatched:spec::batch_invariance": "PASSED",
    }, run.text
