"""Messages that are not one invariant's: crashes, bad losses, unsatisfiable specs, explain."""

from __future__ import annotations

import re

import pytest
import torch

DET = "--dyncheck-invariants=determinism"


def test_a_changing_plain_value_in_the_output_breaks_determinism(dyncheck_run, pytester):
    pytester.makepyfile(
        scored="""
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 2)
                self.calls = 0

            def forward(self, x):
                self.calls += 1
                return {"y": self.fc(x), "score": float(self.calls)}
        """
    )
    run = dyncheck_run("--dyncheck", "scored:Model", DET)
    lines = run.failure("::determinism").strip().splitlines()
    assert lines[3] == "  the first call changed calls: 0 → 1"
    assert lines[4] == "  output['score']: 2.0 != 1.0 (second call, then first)"


def test_a_layer_checked_alone_is_its_own_path(dyncheck_run, pytester):
    # A library's nn.GRU subclass as the target: the census said "path (no submodule ran)".
    pytester.makepyfile(layer="import torch.nn as nn\n\ndef gru():\n    return nn.GRU(3, 4, batch_first=True)\n")
    run = dyncheck_run("--dyncheck", "layer:gru", DET, "--dyncheck-max-examples=3")
    assert run.ret == 0, run.text
    assert re.search(r"^    path \(the model alone: it has no submodules\)  \(\d+ calls", run.text, re.M), run.text


def test_a_bad_spec_loss_is_reported_as_the_specs(dyncheck_run, pytester):
    pytester.makepyfile(
        badloss="""
        import dyncheck
        from reference_models.gated import DynamicNet

        spec = dyncheck.Spec(DynamicNet, init={"input_size": 4, "hidden_size": 3, "output_size": 2},
                             loss=lambda out: out.mean(0))
        """
    )
    run = dyncheck_run("--dyncheck", "badloss:spec", "--dyncheck-invariants=finite")
    text = run.failure("::finite")
    assert "finite: badloss:spec raised in the spec's loss" in text
    assert (
        "The spec's loss raised InvalidArgument on an example the spec allows: the loss must return a "
        "scalar tensor, got shape [2]; reduce it, e.g. loss=lambda out: out.sum()"
    ) in text
    assert "dyncheck/" not in text  # no dyncheck frames


def test_a_crash_on_inferred_inputs_says_they_were_inferred(dyncheck_run, pytester):
    pytester.makepyfile(
        fixed="""
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x).view(-1, 8)  # needs an even batch
        """
    )
    run = dyncheck_run("--dyncheck", "fixed:Model", "--dyncheck-invariants=determinism,coverage")
    # what each one was inferred as, and why, where the crash says it: a shape guessed wrong shows;
    # also where the crash is in eval mode (coverage's), which left the note out
    for invariant in ("determinism", "coverage"):
        text = run.failure(f"::{invariant}")
        assert (
            "  note:     the inputs were inferred: x as tensors(shape=('batch', 4)) (first consumed by fc "
            "(Linear(in_features=4))) (--dyncheck-explain shows the whole Spec); if the model needs other shapes or "
            "values, give them with Spec(inputs=..., dims=...)"
        ) in text, text


ROWS_ATTENDED = """
import torch
from torch import nn

import dyncheck
from dyncheck.strategies import tensors


class Model(nn.Module):
    # the rows it is given centred on their mean: one set per call, no batch axis

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = self.fc(x)
        return h - h.mean(0)


declared = dyncheck.Spec(Model, inputs={"x": tensors(shape=("batch", 4))})
"""


def test_a_batch_invariance_failure_names_the_batch_axis_inference_chose(dyncheck_run, pytester):
    # drawn as vectors, the rows of one sequence are read as samples: the note says which
    # axis was taken for the batch and how to give another
    pytester.makepyfile(rows=ROWS_ATTENDED)
    run = dyncheck_run("--dyncheck", "rows:Model", "--dyncheck", "rows:declared", "--dyncheck-invariants=batch_invariance")
    inferred, declared = run.failure("rows:Model::batch_invariance"), run.failure("rows:declared::batch_invariance")
    assert (
        "  note:     the batch axis was inferred: x ('batch', 4); if forward reads another axis as the batch "
        "(a time-major loop, rows that form one sequence), give the shape with Spec(inputs={'x': tensors(shape=(...))})"
    ) in inferred
    assert "the batch axis was inferred" not in declared  # the Spec said so


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the model runs")
def test_a_model_that_asks_for_cuda_on_a_machine_without_it_is_told_the_fix(dyncheck_run, pytester):
    # Older research code makes its hidden state with .cuda(): on a CPU machine every check
    # raises, and what to change is the device, not the inputs.
    pytester.makepyfile(
        oncuda="""
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x) + torch.zeros(4).cuda()
        """
    )
    run = dyncheck_run("--dyncheck", "oncuda:Model", DET)
    text = run.failure("::determinism")
    assert (
        "  why:\n    the model asks for CUDA (a tensor put there with .cuda(), .to('cuda') or device='cuda', or a "
        "torch.cuda call) and this machine has no CUDA device: make tensors on the input's device "
        "(torch.zeros(..., device=x.device)) and call torch.cuda only when x.is_cuda, so the model runs "
        "wherever its inputs are\n"
    ) in text, text
    assert "the inputs were inferred" not in text
    assert "torch.zeros(4).cuda()" in text  # the model's line, in its traceback


def test_a_spec_that_cannot_be_satisfied_is_one_message(dyncheck_run, pytester):
    pytester.makepyfile(
        unsat="""
        import dyncheck
        from reference_models.rnn import DynamicRNN

        spec = dyncheck.Spec(DynamicRNN, init={"input_size": 3, "hidden_size": 4, "output_size": 2},
                             dims={"time": 0})
        """
    )
    run = dyncheck_run("--dyncheck", "unsat:spec", DET)
    text = run.failure("::determinism")
    assert text.strip().startswith("determinism: dyncheck could not generate examples for unsat:spec:")
    assert "Traceback" not in text


def test_explain_prints_each_lambda_and_imports_named_functions(dyncheck_run, pytester):
    pytester.makepyfile(
        exspec="""
        import torch
        from hypothesis import strategies as st
        import dyncheck
        from reference_models.gated import DynamicNet


        def my_loss(out):
            return out.square().sum()


        spec = dyncheck.Spec(
            DynamicNet,
            init={"input_size": 4, "hidden_size": 3, "output_size": 2},
            branches={"fc2": lambda control: control > 0.5, "fc1": lambda x: True},
            inputs={"x": st.just(torch.zeros(2, 4))},
            loss=my_loss,
        )
        """
    )
    run = dyncheck_run("--dyncheck", "exspec:spec", "--dyncheck-explain", "--co")
    assert "        'fc2': lambda control: control > 0.5,\n        'fc1': lambda x: True,\n" in run.text
    assert "from exspec import my_loss" in run.text
    assert "    loss=my_loss," in run.text
    assert re.search(r"'x': \.\.\.,  # \w+: write this one by hand", run.text)


def test_explain_imports_an_enum_given_as_choices(dyncheck_run, pytester):
    pytester.makepyfile(
        modes="""
        import enum
        import torch.nn as nn

        class Mode(enum.Enum):
            FAST = 1
            SLOW = 2

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, 3)

            def forward(self, x, mode: Mode):
                return self.fc(x) if mode is Mode.FAST else self.fc(self.fc(x))
        """
    )
    run = dyncheck_run("--dyncheck", "modes:Model", "--dyncheck-explain", "--co")
    assert "from modes import Mode\n" in run.text
    assert "'mode': controls(choices=Mode)," in run.text


def test_explain_imports_the_class_of_an_inferred_dataclass_config(dyncheck_run, pytester):
    # A model built from a config object (init inferred as config=TinyLMConfig(...)): the
    # pasted spec must import the config's class, or it raises NameError.
    run = dyncheck_run("--dyncheck", "reference_models.hf_style:TinyCausalLM", "--dyncheck-explain", "--co")
    code = run.text[run.text.index("# dyncheck spec for"):run.text.index("\n)\n") + 3]
    assert "from reference_models.hf_style import TinyLMConfig\n" in code, code
    assert "'config': TinyLMConfig(" in code, code
    namespace: dict = {}
    exec(compile(code, "<explain>", "exec"), namespace)
    assert namespace["spec"].init["config"].hidden_size == 16


def test_an_error_inside_dyncheck_is_said_to_be_dyncheck_s_with_its_own_traceback(dyncheck_run, monkeypatch):
    # Not a finding about the model: the report says whose error it is, shows dyncheck's
    # frames (not pytest's and Hypothesis's) and the command that repeats it.
    import dyncheck.invariants.finite as finite

    def broken(tensor):
        raise ZeroDivisionError("a stand-in for a bug in dyncheck")

    monkeypatch.setattr(finite, "non_finite", broken)
    target = "reference_models.gated:DynamicNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=finite", "--dyncheck-seed=1")
    assert run.outcomes() == {f"dyncheck::{target}::finite": "FAILED"}
    lines = run.failure("::finite").strip().splitlines()
    assert lines[0] == (
        f"finite: dyncheck itself raised ZeroDivisionError while checking {target} "
        "(an error in dyncheck, not a finding about the model)"
    )
    assert lines[2] == "  a stand-in for a bug in dyncheck"
    assert lines[3].startswith("  example:  x float32[")
    assert lines[5] == "dyncheck's traceback:"
    assert "dyncheck/invariants/finite.py" in lines[6] and "_pytest" not in "\n".join(lines)
    assert lines[-1] == f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=1 -k finite"
    summary = run.text.split("dyncheck summary")[1]
    assert "dyncheck itself raised ZeroDivisionError (an error in dyncheck): a stand-in for a bug in dyncheck" in summary


def test_explain_prints_an_inferred_dict_of_inputs_on_one_line(dyncheck_run):
    run = dyncheck_run("--dyncheck", "reference_models.dict_batch:DictBatchClassifier", "--dyncheck-explain", "--co")
    assert (
        "        'batch': fixed_dictionaries({'tokens': tensors(dtype=torch.int64, max_value=29, min_value=0, "
        "shape=('batch', 'time')), 'lengths': sequence_lengths()}),\n"
    ) in run.text


def test_an_inferred_inputs_reason_is_cut_at_its_first_clause_outside_brackets():
    from dyncheck._report import _first_clause

    # an error quoted inside the reason's parentheses may hold "; " itself
    assert _first_clause("called on [2, 8] (it raised ValueError: a; b), it ran on [2, 3, 8]; drawn so") == (
        "called on [2, 8] (it raised ValueError: a; b), it ran on [2, 3, 8]"
    )
    assert _first_clause("first consumed by fc (Linear(in_features=4))") == "first consumed by fc (Linear(in_features=4))"


def test_a_batch_split_into_a_group_of_one_is_told_why_its_norm_raised(dyncheck_run, pytester):
    # pytorch-tabnet's ghost batch norm: chunks of 2 rows, so a batch of 3 ends in a chunk of
    # one, and BatchNorm refuses it in training. The crash gave only torch's words.
    pytester.makepyfile(ghost="""
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 6)
                self.bn = nn.BatchNorm1d(6)

            def forward(self, x):
                h = self.fc(x)
                return torch.cat([self.bn(part) for part in h.chunk(-(-h.shape[0] // 2))], 0)
        """)
    run = dyncheck_run("--dyncheck", "ghost:Model", DET, "--dyncheck-max-examples=20")
    text = run.failure("::determinism")
    assert "Expected more than 1 value per channel when training" in text, text
    assert re.search(
        r"    a BatchNorm in train mode got one row, though the batch has (3) samples: forward splits the batch "
        r"\(x\.chunk\(\.\.\.\) into groups, a ghost batch norm's last group of one sample\) or keeps one row of it; "
        r"a batch of \1 cannot be trained so", text,
    ), text


def test_the_warnings_a_models_source_raises_when_parsed_are_not_shown_under_the_checks(dyncheck_run, pytester):
    # torchdyn's galerkin.py has an invalid escape in a docstring: dyncheck's reading of the
    # source (a class's, which Python finds by parsing its module; coverage's analysis) showed
    # "<unknown>:19: DeprecationWarning: invalid escape sequence" under determinism and coverage.
    pytester.makepyfile(escaped='''
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        """e\\e: a docstring with an invalid escape once written to the file"""
        if not self.training:
            return self.fc(x) * 2
        return self.fc(x)
''')
    import py_compile
    import warnings

    with warnings.catch_warnings():  # compiling it warns here, once: the module's own
        warnings.simplefilter("ignore", DeprecationWarning)
        py_compile.compile(str(pytester.path / "escaped.py"))  # imported from bytecode, as an installed library is
    run = dyncheck_run("--dyncheck", "escaped:Model", "--dyncheck-invariants=determinism,coverage", "--dyncheck-max-examples=3")
    assert "invalid escape sequence" not in run.text, run.text


def test_a_length_capped_by_inference_is_said_in_the_summary(dyncheck_run):
    # A model that raises at longer sequences has its steps drawn up to the longest that ran.
    # That may be the model's limit (learned positions) or a bug a pass would then hide: the
    # summary says which lengths were not checked and the Spec that makes the cap deliberate.
    target = "reference_models.segment_positions:SegmentLM"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=finite", "--dyncheck-max-examples=2")
    assert run.outcomes() == {f"dyncheck::{target}::finite": "PASSED"}
    summary = run.text.split("dyncheck summary")[1]
    assert (
        "  time drawn up to 4 only (at time 8 the model raised AssertionError (sequence length 8 must be at most 4)): "
        "longer inputs were not checked. If they should run, that error is a bug; if 4 is the model's limit, "
        "declare Spec(dims={'time': (1, 4)})"
    ) in summary
    # a model inference did not cap has no such line
    run = dyncheck_run("--dyncheck", "reference_models.gated:DynamicNet", "--dyncheck-invariants=finite",
                       "--dyncheck-max-examples=2")
    assert "drawn up to" not in run.text


def test_a_difference_that_shrank_with_the_example_says_how_large_it_was_first(dyncheck_run, pytester):
    # Shrinking looks for the smallest example, and a coupling that scales with the inputs
    # shrinks with it: a leak of 1e-3 of the neighbour's row was shown a hair past its
    # tolerance, read as rounding noise. The first failure's size is said beside it.
    pytester.makepyfile(leak="""
        import torch
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                h = self.fc(x)
                return h + 1e-3 * h.roll(1, 0)

        class Constant(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x) + (x.shape[0] > 1)
        """)
    run = dyncheck_run("--dyncheck", "leak:Model", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    text = run.failure("::batch_invariance")
    found = re.search(r"\n  first found on example (\d+), (\S+) apart at most; the example below is shrunk, and its "
                      r"difference shrank with it\n", text)
    assert found, text
    shown = float(re.search(r"Greatest absolute difference: (\S+) at", text)[1])
    assert float(found[2]) > 10 * shown
    # a difference that does not shrink with the example gets no such line
    run = dyncheck_run("--dyncheck", "leak:Constant", "--dyncheck-invariants=batch_invariance", "--dyncheck-seed=1")
    assert "first found on example" not in run.failure("::batch_invariance")
