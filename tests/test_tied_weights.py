"""tied_weights: ties found, declared, trained, transformed; each bug by its message."""

from __future__ import annotations

import importlib
import re
import sys

import pytest
import torch

TIED = "--dyncheck-invariants=tied_weights"
LM = "reference_models.tied_lm:TiedLanguageModel"


def closure_finding(name):
    return (
        f"a copy of the model computes with the original's {name}, not its own: the model reaches it "
        "through a closure or a reference to another object (a function made in __init__ that holds self "
        "or a submodule), which copy.deepcopy leaves pointing at the original, so every copy (copy.deepcopy, "
        f"an EMA model, an nn.DataParallel replica) trains the original's {name}. Reach parameters through "
        "self in forward (a method, not a closure made in __init__)."
    )


def headline(run, target):
    assert run.outcomes() == {f"dyncheck::{target}::tied_weights": "FAILED"}, run.text
    lines = run.failure("::tied_weights").strip().splitlines()
    assert lines[0] == f"tied_weights violated by {target}"
    return lines[2]


@pytest.mark.parametrize("target", [LM, "reference_models.shared:SharedNet", "reference_models.gated:DynamicNet"])
def test_correct_models_pass(dyncheck_run, target):
    run = dyncheck_run("--dyncheck", target, TIED)
    assert run.ret == 0, run.text


def test_assign_loading_unties_a_correct_model_only_with_a_warning(dyncheck_run):
    run = dyncheck_run("--dyncheck", LM, TIED, "-W", "default")
    assert run.ret == 0
    assert "DyncheckWarning: reference_models.tied_lm:TiedLanguageModel: load_state_dict(assign=True) unties " in run.text
    assert "register_load_state_dict_post_hook" in run.text


ASSIGN = """
import dyncheck
from reference_models.tied_lm import TiedLanguageModel


class Retied(TiedLanguageModel):
    def __init__(self, vocab_size, hidden_size):
        super().__init__(vocab_size, hidden_size)
        self.register_load_state_dict_post_hook(lambda module, keys: module.tie_weights())

    def tie_weights(self):
        self.decoder.weight = self.encoder.weight


plain = dyncheck.Spec(TiedLanguageModel, init={"vocab_size": 7, "hidden_size": 4}, load_with_assign=True)
retied = dyncheck.Spec(Retied, init={"vocab_size": 7, "hidden_size": 4}, load_with_assign=True)
"""


def test_a_model_meant_for_assign_loading_must_re_tie(dyncheck_run, pytester):
    pytester.makepyfile(assign=ASSIGN)
    run = dyncheck_run("--dyncheck", "assign:plain", TIED)
    assert headline(run, "assign:plain") == (
        "load_state_dict(assign=True): encoder.weight and decoder.weight should be one Parameter but are "
        "two Parameters sharing one storage. Re-tie after loading: "
        "register_load_state_dict_post_hook(lambda module, keys: module.tie_weights())"
    )
    fixed = dyncheck_run("--dyncheck", "assign:retied", TIED, "-W", "default")
    assert fixed.ret == 0, fixed.text
    assert "DyncheckWarning" not in fixed.text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "cloned_tie",
            "encoder.weight and decoder.weight hold identical values but are two Parameters: a tie made by "
            "copying (clone, copy_, load) drifts apart at the first optimizer step. Tie the Parameter itself "
            "(self.decoder.weight = self.encoder.weight), or if they are meant to start equal and train "
            "apart, say so with Spec(skip={'tied_weights': ...}).",
        ),
        (
            "reinit_tie",
            "as built: decoder.weight and encoder.weight should be one Parameter but are two different "
            "Parameters (a Parameter assigned to one of the names after tying, e.g. in a re-initialisation).",
        ),
        (
            "lazy_tie",
            "forward changed which Parameter decoder.weight is (now encoder.weight): a tie made in forward "
            "happens after the optimizer and load_state_dict saw the untied model. Tie in __init__.",
        ),
        (
            "transposed_tie",
            "output_weight is a transposed copy of encoder.weight, a separate Parameter: the two drift apart "
            "at the first optimizer step. Use encoder.weight itself, transposed in forward "
            "(where output_weight is used, use encoder.weight.t()).",
        ),
        (
            "data_alias_tie",
            "encoder.weight and decoder.weight are two Parameters sharing one storage (.data aliasing): the "
            "values stay equal, but each gets its own gradient and optimizer state, so the storage is updated "
            "twice per step. Tie the Parameter itself: self.decoder.weight = self.encoder.weight",
        ),
        ("closure_tie", None),  # see closure_finding
    ],
)
def test_each_tying_bug_by_its_message(dyncheck_run, name, expected):
    target = f"reference_models.buggy.{name}:Model"
    expected = expected or closure_finding("encoder.weight")
    assert headline(dyncheck_run("--dyncheck", target, TIED), target) == expected


def test_a_declared_tie_that_is_not_one(dyncheck_run, pytester):
    pytester.makepyfile(
        declared="""
        import dyncheck
        from reference_models.gated import DynamicNet

        spec = dyncheck.Spec(DynamicNet, init={"input_size": 4, "hidden_size": 4, "output_size": 4},
                             ties=[("fc1.weight", "fc2.weight")])
        """
    )
    assert headline(dyncheck_run("--dyncheck", "declared:spec", TIED), "declared:spec") == (
        "as built: fc1.weight and fc2.weight should be one Parameter but are two different Parameters "
        "(a Parameter assigned to one of the names after tying, e.g. in a re-initialisation)."
    )


def test_a_shared_parameter_given_to_the_optimizer_twice(dyncheck_run, pytester):
    pytester.makepyfile(
        twice="""
        import torch
        import dyncheck
        from reference_models.tied_lm import TiedLanguageModel

        spec = dyncheck.Spec(
            TiedLanguageModel, init={"vocab_size": 7, "hidden_size": 4},
            optimizer=lambda params: torch.optim.SGD(
                [p for _, p in spec_model_parameters(params)], lr=0.1),
        )

        def spec_model_parameters(params):
            params = list(params)
            return [(None, p) for p in params] + [(None, params[0])]
        """
    )
    run = dyncheck_run("--dyncheck", "twice:spec", TIED, "-W", "ignore::UserWarning")
    assert re.search(
        r"Spec\(optimizer=\.\.\.\): encoder\.weight = decoder\.weight is in the optimizer 2 times: "
        r"it would be stepped 2 times per step\.",
        run.failure("::tied_weights"),
    )


def test_the_training_steps_run_once_per_path_and_reached_parameters(dyncheck_run, pytester):
    # Whether a tie survives a step depends on the optimizer and on which parameters get
    # gradients, not on their values: one model on one path trains once, not on every example.
    pytester.makepyfile(
        counted="""
        import torch
        import dyncheck
        from reference_models.tied_lm import TiedLanguageModel


        def counted(params):
            with open("optimizers.txt", "a") as out:
                out.write("1")
            return torch.optim.SGD(params, lr=0.1)

        spec = dyncheck.Spec(TiedLanguageModel, init={"vocab_size": 7, "hidden_size": 4}, optimizer=counted)
        """
    )
    run = dyncheck_run("--dyncheck", "counted:spec", TIED, "--dyncheck-max-examples=30", "-W", "ignore")
    assert run.ret == 0, run.text
    assert "30 examples" in run.text
    assert (pytester.path / "optimizers.txt").read_text() == "1"


UNTIED_BY = """
import torch
from torch import nn


class Base(nn.Module):
    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=False)
        self.decoder.weight = self.encoder.weight

    def forward(self, tokens):
        return self.decoder(torch.tanh(self.encoder(tokens)))

    def untie(self):
        self.decoder.weight = nn.Parameter(self.decoder.weight.detach().clone())


class Moved(Base):
    '''Refreshes the decoder after every move or cast: .to() unties it.'''

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.untie()
        return self


class Converted(Base):
    '''A load hook that rebuilds the decoder (a checkpoint-format conversion): loading unties it.'''

    def __init__(self, vocab_size, hidden_size):
        super().__init__(vocab_size, hidden_size)
        self.register_load_state_dict_post_hook(lambda module, keys: module.untie())
"""


@pytest.mark.parametrize(
    ("name", "broken_by"),
    [
        ("Moved", [".to(torch.float64) and back"]),
        (
            "Converted",
            ["load_state_dict into a fresh instance", "torch.save/torch.load(weights_only=True) and load_state_dict"],
        ),
    ],
)
def test_a_transformation_that_unties(dyncheck_run, pytester, name, broken_by):
    pytester.makepyfile(untied_by=UNTIED_BY)
    target = f"untied_by:{name}"
    run = dyncheck_run("--dyncheck", target, TIED, "--dyncheck-seed=3", "-W", "ignore")
    assert run.outcomes() == {f"dyncheck::{target}::tied_weights": "FAILED"}, run.text
    failure = run.failure("::tied_weights")
    for transformation in broken_by:
        assert (
            f"{transformation}: encoder.weight and decoder.weight should be one Parameter but are two"
            in failure
        ), failure


@pytest.mark.parametrize(
    ("name", "how"),
    [("cloned_tie", "two Parameters with equal values"), ("data_alias_tie", "two Parameters sharing one storage")],
)
def test_a_declared_tie_with_equal_values_or_one_storage_is_still_not_one(dyncheck_run, pytester, name, how):
    # Equal values and shared storage look tied, but each Parameter gets its own gradient and
    # optimizer state: a declared group must be one object.
    pytester.makepyfile(
        declared_copy=f"""
        import dyncheck
        from reference_models.buggy.{name} import Model

        spec = dyncheck.Spec(Model, init={{"vocab_size": 7, "hidden_size": 4}},
                             ties=[("decoder.weight", "encoder.weight")])
        """
    )
    run = dyncheck_run("--dyncheck", "declared_copy:spec", TIED)
    assert headline(run, "declared_copy:spec") == "Tied weights are not one Parameter throughout (2 problems):"
    lines = run.failure("::tied_weights").strip().splitlines()
    assert lines[3] == f"  - as built: decoder.weight and encoder.weight should be one Parameter but are {how}."


def test_layers_copied_whole_are_not_a_tie_made_by_copying(dyncheck_run, pytester):
    # nn.TransformerEncoder deep-copies its layer, and so does the ModuleList idiom below:
    # independent layers that start equal. Cloning one Parameter into another module is the bug.
    pytester.makepyfile(
        replicas="""
        import copy

        import torch
        from torch import nn

        class Encoder(nn.Module):
            def __init__(self, vocab_size=11, dim=8):
                super().__init__()
                self.embed = nn.Embedding(vocab_size, dim)
                layer = nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=16, batch_first=True)
                self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)

            def forward(self, tokens):
                return self.encoder(self.embed(tokens))

        class Stack(nn.Module):
            def __init__(self, dim=6):
                super().__init__()
                block = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, dim))
                self.blocks = nn.ModuleList([copy.deepcopy(block) for _ in range(3)])

            def forward(self, x):
                for block in self.blocks:
                    x = x + block(x)
                return x
        """
    )
    run = dyncheck_run("--dyncheck", "replicas:Encoder", "--dyncheck", "replicas:Stack", TIED, "--dyncheck-seed=3")
    assert run.outcomes() == {
        "dyncheck::replicas:Encoder::tied_weights": "PASSED",
        "dyncheck::replicas:Stack::tied_weights": "PASSED",
    }, run.text


# --------------------------------------------------------------------------- copies wired to the original

FORMS = """
import torch
from torch import nn

import dyncheck
from reference_models.buggy import closure_tie_factory
from reference_models.buggy.closure_tie import Model
from reference_models.tied_lm import TiedLanguageModel

INSTANCE = Model(7, 4)
instance_spec = dyncheck.Spec(Model(7, 4))
factory_spec = dyncheck.Spec(closure_tie_factory.make_model)


def cached():
    return INSTANCE


def good():
    return TiedLanguageModel(7, 4)


class Scaled(nn.Module):
    '''A closure over self that reads a number, not a parameter: its copies are its own.'''

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = 0.5
        self.post = lambda h: torch.tanh(h) * self.scale

    def forward(self, x):
        return self.post(self.fc(x))


def scaled():
    return Scaled()
"""

CHECKS = ("--dyncheck-invariants=tied_weights,dtype_agreement,determinism", "--dyncheck-seed=3")


def test_a_closure_tie_is_reported_whatever_the_target_form(dyncheck_run, pytester):
    # A class, a factory, a Spec holding a factory: each fresh model is built anew, so the
    # other checks run on models of their own (a float64 copy would decode with the float32
    # original and crash dtype_agreement).
    pytester.makepyfile(forms=FORMS)
    targets = {
        "reference_models.buggy.closure_tie:Model": "encoder.weight",
        "reference_models.buggy.closure_tie_factory:make_model": "token_emb.weight",
        "forms:factory_spec": "token_emb.weight",
    }
    run = dyncheck_run(*(a for t in targets for a in ("--dyncheck", t)), *CHECKS, "--dyncheck-max-examples=5")
    assert run.outcomes() == {
        f"dyncheck::{t}::{name}": "FAILED" if name == "tied_weights" else "PASSED"
        for t in targets for name in ("tied_weights", "dtype_agreement", "determinism")
    }, run.text
    for target, name in targets.items():
        lines = run.failure(f"{target}::tied_weights").strip().splitlines()
        assert lines[2] == closure_finding(name)


def test_copies_of_an_instance_wired_to_it_are_reported_and_nothing_runs_on_them(dyncheck_run, pytester):
    # An instance (in a Spec or as the target) or a factory handing out one instance cannot be
    # built anew: tied_weights says so, the other checks skip, and the user's model is untouched.
    pytester.makepyfile(forms=FORMS)
    pytester.syspathinsert()
    forms = importlib.import_module("forms")
    before = {name: p.detach().clone() for name, p in forms.INSTANCE.named_parameters()}
    cannot = {
        "forms:instance_spec": "an instance cannot be built anew",
        "forms:INSTANCE": "an instance cannot be built anew",
        "forms:cached": "the factory returns the same model on every call",
    }
    run = dyncheck_run(*(a for t in cannot for a in ("--dyncheck", t)), *CHECKS, "--dyncheck-max-examples=5")
    assert run.outcomes() == {
        f"dyncheck::{t}::{name}": "FAILED" if name == "tied_weights" else "SKIPPED"
        for t in cannot for name in ("tied_weights", "dtype_agreement", "determinism")
    }, run.text
    for target, why in cannot.items():
        lines = run.failure(f"{target}::tied_weights").strip().splitlines()
        assert lines[2] == closure_finding("encoder.weight") + (
            f" dyncheck checks copies of the model, and {why}, so the other checks are skipped: give the "
            "class, or a factory that builds a new model on each call, as the target "
            "(e.g. dyncheck.Spec(Model, init={...}))."
        )
        assert run.skip_reason(f"dyncheck::{target}::determinism") == (
            f"copies of the model compute with the original's encoder.weight (see tied_weights), and {why}: "
            "give the class, or a factory that builds a new model on each call, as the target"
        )
    assert sys.modules["forms"] is forms
    for name, parameter in forms.INSTANCE.named_parameters():
        assert torch.equal(parameter, before[name]), name
        assert parameter.grad is None, name


def test_factories_whose_copies_are_their_own_pass(dyncheck_run, pytester):
    # A tied model from a factory, and a closure over self that reads no parameter.
    pytester.makepyfile(forms=FORMS)
    run = dyncheck_run("--dyncheck", "forms:good", "--dyncheck", "forms:scaled", *CHECKS, "-W", "ignore")
    assert run.ret == 0, run.text
    assert set(run.outcomes().values()) == {"PASSED"}, run.text


def test_fresh_models_of_a_model_whose_copies_are_wired_are_built_anew():
    from dyncheck.copies import verdict
    from dyncheck.invariants import Context
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.buggy.closure_tie_factory import make_model

    calls = []

    def counted():
        calls.append(1)
        return make_model()

    target = resolve_spec(Spec(counted))
    rng = torch.random.get_rng_state()
    copies = verdict(target)
    assert (copies.reached, copies.unbuildable) == (("token_emb.weight",), None)
    found = len(calls)
    assert verdict(target) is copies and len(calls) == found  # once per target
    context = Context(target)
    first, second = context.fresh_model(), context.copy_of(context.fresh_model())
    assert torch.equal(torch.random.get_rng_state(), rng)  # building restores the RNG
    prototype = target.build()
    for model in (first, second):
        # Built anew: the same weights as the prototype, and a closure over the model itself.
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), prototype.state_dict().values()))
        model(torch.tensor([[1, 2]])).sum().backward()
        assert model.to_logits.__closure__[0].cell_contents is model
        assert model.token_emb.weight.grad is not None
    assert prototype.token_emb.weight.grad is None


def test_copies_missing_from_a_class_registry_that_resets_are_reported_and_built_anew(dyncheck_run):
    # snntorch's utils.reset resets the neurons a class-level list holds: a deepcopy is in no
    # list, and every check run on copies reported "forward changes state" while the model
    # as built resets itself on every call.
    target = "reference_models.buggy.registry_reset:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=tied_weights,determinism,purity")
    assert run.outcomes() == {
        f"dyncheck::{target}::tied_weights": "FAILED",
        f"dyncheck::{target}::determinism": "PASSED",
        f"dyncheck::{target}::purity": "PASSED",
    }, run.text
    assert (
        "a copy of the model is missing from the class-level _RegisteredLeaky.instances, which holds the original's "
        "modules: whatever works through it (a reset of every instance, snntorch's utils.reset) misses the copy. Two "
        "calls on a copy with the same input and seed differ where two on a new build agree"
    ) in " ".join(run.failure("tied_weights").split()), run.text


def test_a_class_registry_that_changes_nothing_leaves_copies_alone():
    # a list of every instance kept for bookkeeping (names, counts): copies compute alike
    from typing import ClassVar

    from torch import nn

    from dyncheck.copies import verdict
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    class Named(nn.Linear):
        instances: ClassVar[list[nn.Module]] = []

        def __init__(self):
            super().__init__(8, 3)
            Named.instances.append(self)

    copies = verdict(resolve_spec(Spec(Named)))
    assert copies.safe and copies.registries == ()


def test_a_registry_kept_as_a_dict_is_named_too():
    import itertools
    from typing import ClassVar

    from torch import nn

    from dyncheck.copies import verdict
    from dyncheck.spec import Spec
    from dyncheck.strategies import tensors
    from dyncheck.target import resolve_spec

    class Neuron(nn.Module):
        instances: ClassVar[dict[int, nn.Module]] = {}
        ids = itertools.count()

        def __init__(self):
            super().__init__()
            Neuron.instances[next(Neuron.ids)] = self
            self.mem = None

        def forward(self, x):
            self.mem = x if self.mem is None else 0.9 * self.mem + x
            return self.mem

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 4), Neuron()

        def forward(self, x):
            for neuron in Neuron.instances.values():
                neuron.mem = None
            return self.lif(self.fc(x))

    held = len(Neuron.instances)
    copies = verdict(resolve_spec(Spec(Model, inputs={"x": tensors(shape=("batch", 4))})))
    assert [name.rpartition(".")[2] for name in copies.registries] == ["instances"]
    assert all(isinstance(key, int) for key in Neuron.instances) and len(Neuron.instances) > held  # put back


def test_a_bookkeeping_registry_is_not_blamed_for_a_drift_it_does_not_cause():
    # the copy drifts through a closure over the original's neuron, which has no parameters
    # for the reach probe to find; with the copy's neurons put in the list, it still drifts
    from typing import ClassVar

    from torch import nn

    from dyncheck.copies import verdict
    from dyncheck.spec import Spec
    from dyncheck.strategies import tensors
    from dyncheck.target import resolve_spec

    class Neuron(nn.Module):
        created: ClassVar[list[nn.Module]] = []

        def __init__(self):
            super().__init__()
            Neuron.created.append(self)
            self.mem = None

        def forward(self, x):
            self.mem = x if self.mem is None or self.mem.shape != x.shape else 0.9 * self.mem + x
            return (self.mem > 1).float()

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 4), Neuron()
            self.step = lambda x: self.lif(x)

        def forward(self, x):
            for module in self.modules():
                if isinstance(module, Neuron):
                    module.mem = None
            return sum(self.step(self.fc(x) * 3) for _ in range(3))

    assert verdict(resolve_spec(Spec(Model, inputs={"x": tensors(shape=("batch", 4))}))).registries == ()


def test_a_model_whose_copies_are_its_own_is_still_copied():
    from dyncheck.copies import verdict
    from dyncheck.invariants import Context
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec
    from reference_models.tied_lm import TiedLanguageModel

    calls = []

    def counted():
        calls.append(1)
        return TiedLanguageModel(7, 4)

    target = resolve_spec(Spec(counted))
    assert verdict(target).safe
    found = len(calls)
    Context(target).fresh_model()
    assert len(calls) == found + 1  # the prototype; the fresh model is its copy


def test_parameters_alike_by_a_formula_are_not_a_copied_tie():
    # Mamba's A_log: log(1..n) repeated for every channel, the same in every layer. Values
    # that repeat are a formula; a copied random initialisation has them all distinct.
    import torch

    from dyncheck.invariants.tied_weights import _lookalikes, _structured

    formula = torch.log(torch.arange(1, 5, dtype=torch.float32)).repeat(8, 1)
    assert _structured(formula)
    assert not _structured(torch.randn(8, 4))
    model = torch.nn.Module()
    model.a, model.b = torch.nn.Parameter(formula.clone()), torch.nn.Parameter(formula.clone())
    assert _lookalikes(model) == []
    copied = torch.randn(8, 4)
    model.a, model.b = torch.nn.Parameter(copied.clone()), torch.nn.Parameter(copied.clone())
    assert len(_lookalikes(model)) == 1 and "hold identical values" in _lookalikes(model)[0]


class _TimeMix(torch.nn.Module):
    """RWKV's first layer: time_mix_key and time_mix_value both (i / n) ** r, all values
    distinct and equal to each other, whatever the seed."""

    def __init__(self, copied=False):
        super().__init__()
        ramp = torch.arange(8, dtype=torch.float32) / 8
        self.key = torch.nn.Linear(8, 8)
        self.time_mix_key = torch.nn.Parameter(ramp ** 1.0)
        self.time_mix_value = torch.nn.Parameter(ramp ** 1.0)
        if copied:  # a drawn initialisation copied: the broken tie
            self.time_mix_key = torch.nn.Parameter(torch.randn(8))
            self.time_mix_value = torch.nn.Parameter(self.time_mix_key.detach().clone())


def test_parameters_equal_by_a_formula_of_distinct_values_are_not_a_copied_tie():
    from dyncheck.invariants.tied_weights import _lookalikes

    assert _lookalikes(_TimeMix(), _TimeMix) == []
    # without a second build to tell, equal distinct values read as a copy
    assert len(_lookalikes(_TimeMix())) == 1
    copied = _lookalikes(_TimeMix(copied=True), lambda: _TimeMix(copied=True))
    assert len(copied) == 1 and "time_mix_key and time_mix_value hold identical values" in copied[0]


def test_a_factory_that_seeds_torch_itself_does_not_hide_a_copied_tie():
    # torch.manual_seed(0) before building, as many factories do: a build under another seed
    # gave every parameter again, and a copied drawn initialisation passed as a formula
    from dyncheck.invariants.tied_weights import _built_unseeded, _lookalikes
    from dyncheck.seeding import seeded

    class Factory:  # what _built_unseeded asks of a target: a build under a seed
        def __init__(self, copied):
            self.copied = copied

        def build(self, seed=0):
            with seeded(seed):
                torch.manual_seed(0)  # the factory's own seeding
                return _TimeMix(copied=self.copied)

    manual_seed, random_seed = torch.manual_seed, torch.random.manual_seed
    for copied, found in ((True, 1), (False, 0)):
        target = Factory(copied)
        assert len(_lookalikes(target.build(), lambda: _built_unseeded(target))) == found
    assert torch.manual_seed is manual_seed and torch.random.manual_seed is random_seed  # put back


def test_a_parameter_fetched_from_outside_the_model_in_forward_is_said_to_be_replaced(dyncheck_run, pytester):
    # Pyro's PyroParam fetches its Parameter from a global store in forward: a copy is bound
    # to the first model's. The finding said "changed which Parameter scale is (now scale)".
    pytester.makepyfile(stored="""
        import torch
        from torch import nn

        _STORE = {}


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 3)
                self.scale = nn.Parameter(torch.ones(3))

            def forward(self, x):
                stored = _STORE.setdefault("scale", self.scale)
                if stored is not self.scale:
                    self.scale = stored
                return self.fc(x) * self.scale
    """)
    run = dyncheck_run("--dyncheck", "stored:Model", "--dyncheck-invariants=tied_weights")
    text = run.failure("::tied_weights")
    assert (
        "forward replaced Parameter scale with an object the model did not hold before the call (a new Parameter, "
        "or one kept outside the model: a global parameter store's, another model's)"
    ) in text, text
    assert "(now scale)" not in text


def test_a_load_state_dict_of_the_models_own_that_raises_is_the_models_error(dyncheck_run, pytester):
    # OpenNMT-py's models read checkpoint["model"] in their load_state_dict: tied_weights said
    # "dyncheck itself raised KeyError" where state_roundtrip named the model's load_state_dict.
    pytester.makepyfile(checkpointed="""
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)

            def forward(self, x):
                return self.fc(x)

            def load_state_dict(self, checkpoint, strict=True):
                return super().load_state_dict(checkpoint["model"], strict=strict)
        """)
    run = dyncheck_run("--dyncheck", "checkpointed:Net", "--dyncheck-invariants=tied_weights", "--dyncheck-max-examples=3")
    text = run.failure("::tied_weights")
    assert text.startswith("tied_weights: checkpointed:Net raised in load_state_dict"), text
    assert "dyncheck itself" not in text


STAGED = """
import torch
from torch import nn


class StagedEMA(nn.Module):
    '''routing-transformer's k-means update: a backward hook made in __init__ as a closure over
    the model applies what the train-mode forward staged, and asserts something was.'''

    def __init__(self, dim=8):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.register_buffer("center", torch.zeros(dim))
        self.staged = None
        owner = self

        def hook(module, grad_output):
            owner.update()

        self.out.register_full_backward_pre_hook(hook)

    @torch.no_grad()
    def update(self):
        if not self.training:
            return
        assert self.staged is not None, "new centre has not been supplied"
        self.center.mul_(0.9).add_(0.1 * self.staged)
        self.staged = None

    def forward(self, x):
        if self.training:
            self.staged = x.detach().mean(0)
        return self.out(torch.relu(self.proj(x - self.center)))
"""


def test_a_hook_closed_over_the_original_is_named_and_the_checks_build_anew(dyncheck_run, pytester):
    # Every copy's backward ran the original's update, which had nothing staged: finite,
    # grad_isolation and tied_weights reported "raised in backward: new centre has not been
    # supplied" as the model's crash. The hook is found in the copy, every model is built
    # anew, and tied_weights names it.
    pytester.makepyfile(staged=STAGED)
    run = dyncheck_run("--dyncheck", "staged:StagedEMA", "--dyncheck-max-examples=5")
    outcomes = run.outcomes()
    assert outcomes.pop("dyncheck::staged:StagedEMA::tied_weights") == "FAILED", run.text
    assert set(outcomes.values()) == {"PASSED", "SKIPPED"}, run.text
    assert outcomes["dyncheck::staged:StagedEMA::finite"] == "PASSED"
    text = run.failure("::tied_weights")
    assert (
        "a copy of the model runs hooks that work on the original, not on the copy: the backward pre-hook "
        "StagedEMA.__init__.<locals>.hook of out holds the original model." in text
    ), text
    assert "new centre has not been supplied" not in run.text


def test_parameters_over_the_same_memory_are_an_alias_whatever_their_shapes():
    # An expanded per-head view (stride 0) was compared with nothing of another size and
    # passed; views side by side in one flat buffer share a storage but no memory.
    from dyncheck.invariants.tied_weights import _lookalikes

    model = torch.nn.Module()
    model.layer = torch.nn.Linear(4, 4, bias=False)
    model.per_head = torch.nn.Parameter(model.layer.weight.expand(2, 4, 4))
    (found,) = _lookalikes(model)
    assert found.startswith("layer.weight and per_head are two Parameters sharing one storage")
    assert "per_head is an expanded view (stride 0)" in found

    flat = torch.randn(20)
    side_by_side = torch.nn.Module()
    side_by_side.a = torch.nn.Parameter(flat[:8].view(2, 4))
    side_by_side.b = torch.nn.Parameter(flat[8:])
    assert _lookalikes(side_by_side) == []


def test_column_blocks_of_one_fused_matrix_are_no_alias():
    # Their address ranges interleave, their elements do not.
    from dyncheck.invariants.tied_weights import _lookalikes

    fused = torch.randn(8, 12)
    model = torch.nn.Module()
    model.wq = torch.nn.Parameter(fused[:, :4])
    model.wkv = torch.nn.Parameter(fused[:, 4:])
    assert _lookalikes(model) == []
