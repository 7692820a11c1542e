"""The regression guard: refactor_agreement (new against old, also at a git revision) and
baseline (new against recorded), their messages, and their user errors."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import torch

GATED = "reference_models.gated:DynamicNet"
RENAMED = "reference_models.renamed_gated:GatedNet"
FUSED = "reference_models.fused_attention:FusedAttention"
BATCHED = "reference_models.batched_moe:BatchedTopOneMoE"
ATTENTION = "reference_models.attention:Attention"
FEW = "--dyncheck-max-examples=10"

#: The gated net with its layers renamed and no state_map.
RENAMED_UNMAPPED = """
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.encoder = nn.Linear(input_size, hidden_size)
        self.gated = nn.Linear(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = F.relu(self.encoder(x))
        if control > 0.5:
            h = F.relu(self.gated(h))
        return self.head(h)
"""

#: A model whose branch runs a block of its own: a one-line change inside the block is a
#: change of that module's output, which localisation names.
BLOCKY = """
import torch
import torch.nn as nn

class Block(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.fc = nn.Linear(size, size)

    def forward(self, h):
        return torch.relu(self.fc(h))

class Net(nn.Module):
    def __init__(self, input_size=8, hidden_size=6, output_size=4):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.block = Block(hidden_size)
        self.fc3 = nn.Linear(hidden_size, output_size)

    def forward(self, x, control):
        h = torch.relu(self.fc1(x))
        if control > 0.5:
            h = self.block(h)
        return self.fc3(h)
"""


def failure_lines(run, target, invariant):
    assert run.outcomes().get(f"dyncheck::{target}::{invariant}") == "FAILED", run.text
    return run.failure(f"::{invariant}").strip().splitlines()


def usage_error(run):
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.text
    assert "Traceback" not in run.text
    errors = [line for line in run.text.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, run.text
    return errors[0]


# --------------------------------------------------------------------------- collection


def test_nothing_is_collected_when_not_configured(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--co")
    assert "refactor_agreement" not in run.text and "baseline" not in run.text


def test_configured_checks_are_collected_beside_the_others(dyncheck_run, tmp_path):
    run = dyncheck_run("--dyncheck", RENAMED, "--co")
    assert f"dyncheck::{RENAMED}::refactor_agreement" not in run.outcomes()  # --co runs nothing
    assert "<InvariantItem refactor_agreement>" in run.text and "<InvariantItem determinism>" in run.text
    assert "<InvariantItem baseline>" not in run.text


def test_named_but_not_configured_is_a_skip_with_the_fix(dyncheck_run):
    run = dyncheck_run("--dyncheck", GATED, "--dyncheck-invariants=refactor_agreement,baseline")
    assert run.skip_reason(f"dyncheck::{GATED}::refactor_agreement") == (
        "no old model to compare with: give --dyncheck-against=OLD (module:Name or git:REV) or Spec(against=...)"
    )
    assert run.skip_reason(f"dyncheck::{GATED}::baseline") == (
        "no baseline to compare with: give --dyncheck-baseline=PATH (record it with --dyncheck-update-baseline)"
    )


# --------------------------------------------------------------------------- differential


@pytest.mark.parametrize("target", [RENAMED, FUSED, BATCHED])
def test_good_refactors_agree_with_the_old_model(dyncheck_run, target):
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=refactor_agreement", FEW, "--dyncheck-seed=3")
    assert run.outcomes() == {f"dyncheck::{target}::refactor_agreement": "PASSED"}, run.text
    assert "refactor_agreement  passed   10 examples" in run.text


def test_a_changed_threshold_is_a_path_divergence_at_the_module_that_ran(dyncheck_run):
    target = "reference_models.buggy.refactor_threshold:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    lines = failure_lines(run, target, "refactor_agreement")
    assert lines[0] == f"refactor_agreement violated by {target}"
    assert lines[2] == (
        f"path divergence: the old model ({GATED}) took fc1 → fc3, the new model encoder → gated → head — "
        "a branch decision changed in the refactor, and the outputs differ"
    )
    assert lines[3] == (
        "  first diverging module: gated (old fc2) — the paths part after encoder (old fc1): the new model runs "
        "gated (old fc2) where the old model ran fc3 (now head)"
    )
    assert re.fullmatch(
        r"  - output differs on the new model from the old model: Mismatched elements: \d+ / \d+ \(\S+%\); .*", lines[4]
    )
    assert lines[5].startswith("  - and the gradients of ") and "gated.weight" in lines[5]
    assert "control=tensor([0.5])" in run.failure("::refactor_agreement")
    assert lines[-1] == f"Reproduce: pytest --dyncheck {target} --dyncheck-only --dyncheck-seed=3 -k refactor_agreement"


def test_one_paths_math_changed_names_the_block(dyncheck_run):
    target = "reference_models.buggy.refactor_path_math:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    lines = failure_lines(run, target, "refactor_agreement")
    assert lines[2] == f"The new model computes something else than the old model ({ATTENTION}) on this example:"
    index = lines.index("  first diverging module: refine — its inputs agree, its output differs:")
    assert lines[index + 1] == "    output against the old model's:"
    assert re.fullmatch(r"      Mismatched elements: \d+ / \d+ \(\S+%\)", lines[index + 2])
    assert re.fullmatch(r"      Greatest absolute difference: \S+ at index \(.*\) \(up to \S+ allowed\)", lines[index + 3])
    assert re.search(r"  path:     pos → qkv → refine\.fc → out", run.text)
    assert "  the old model took pos → q → k → v → refine.fc → out: the same steps as the new model's path below" in lines


def test_a_mis_mapped_weight_names_the_fused_module_and_the_unused_weight(dyncheck_run):
    target = "reference_models.buggy.refactor_mismapped:Model"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    lines = failure_lines(run, target, "refactor_agreement")
    index = lines.index("  first diverging module: qkv (old q, k, v) — its inputs agree, its output differs:")
    assert lines[index + 1] == "    output (the old modules' outputs concatenated) against the old model's:"
    assert (
        "  note: the state_map computes no parameter of the new model from the old k.weight, k.bias "
        "(a mis-mapped or dropped weight?)"
    ) in lines


def test_the_option_checks_any_target_against_any_old_model(dyncheck_run, pytester):
    # One branch's math changed in forward's own code, between two modules.
    pytester.makepyfile(newmod=BLOCKY.replace("h = self.block(h)", "h = self.block(h) * 2"), oldmod=BLOCKY)
    run = dyncheck_run("--dyncheck", "newmod:Net", "--dyncheck-against=oldmod:Net",
                       "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    lines = failure_lines(run, "newmod:Net", "refactor_agreement")
    assert lines[2] == "The new model computes something else than the old model (oldmod:Net) on this example:"
    assert (
        "  first diverging module: none; the runs part in forward's own code between block, whose output agrees, "
        "and fc3, whose inputs differ"
    ) in lines
    assert lines[lines.index("    args[0] against the old model's:") + 1].startswith("      Mismatched elements: ")
    assert lines[-1] == (
        "Reproduce: pytest --dyncheck newmod:Net --dyncheck-only --dyncheck-seed=3 "
        "--dyncheck-against=oldmod:Net -k refactor_agreement"
    )


def test_a_change_inside_a_module_is_named(dyncheck_run, pytester):
    pytester.makepyfile(newmod=BLOCKY.replace("torch.relu(self.fc(h))", "torch.relu(self.fc(h)) + 0.01"), oldmod=BLOCKY)
    run = dyncheck_run("--dyncheck", "newmod:Net", "--dyncheck-against=oldmod:Net",
                       "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    lines = failure_lines(run, "newmod:Net", "refactor_agreement")
    assert "  first diverging module: block — its inputs agree, its output differs:" in lines


def test_spec_and_ini_name_the_old_model(dyncheck_run, pytester):
    pytester.makepyfile(
        specmod=f"""
        import dyncheck
        from newmod import Net

        spec = dyncheck.Spec(Net, against="{GATED}", state_map={{"fc1": "encoder", "fc2": "gated", "fc3": "head"}})
        """,
        newmod=RENAMED_UNMAPPED,
    )
    run = dyncheck_run("--dyncheck", "specmod:spec", "--dyncheck-invariants=refactor_agreement", FEW)
    assert run.outcomes() == {"dyncheck::specmod:spec::refactor_agreement": "PASSED"}, run.text
    pytester.makeini(f"[pytest]\ndyncheck_against = {GATED}\n")
    run = dyncheck_run("--dyncheck", "reference_models.buggy.threshold_off_by_one:Model",
                       "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    assert "path divergence: the old model (reference_models.gated:DynamicNet) took fc1 → fc3" in run.text


@pytest.mark.parametrize(
    ("against", "source", "message"),
    [
        ("nomod:Net", None, "no module named 'nomod' (searched the current directory and sys.path; "),
        (f"{GATED}x", None, "'reference_models.gated' has no attribute 'DynamicNetx'; did you mean reference_models.gated:DynamicNet?"),
        (
            GATED,
            RENAMED_UNMAPPED,
            "the old weights do not load into the new model: the new model's encoder.weight, encoder.bias, gated.weight, "
            "gated.bias, head.weight, head.bias get no value; fc1.weight, fc1.bias, fc2.weight, fc2.bias, fc3.weight, "
            "fc3.bias from the old state_dict have no place in the new model; if they were renamed, say so with "
            "Spec(state_map={'fc1': 'encoder', 'fc2': 'gated', 'fc3': 'head'})",
        ),
        (
            GATED,
            RENAMED_UNMAPPED.replace("nn.Linear(hidden_size, output_size)", "nn.Linear(hidden_size, output_size + 1)").replace(
                "class Net", "MAP = {'fc1': 'encoder', 'fc2': 'gated', 'fc3': 'head'}\n\nclass Net"
            ).replace("    def __init__", "    __dyncheck__ = {'state_map': MAP}\n\n    def __init__", 1),
            "the old weights do not load into the new model: head.weight is [5, 6] in the new model but [4, 6] from "
            "fc3.weight; map it to a key of that shape (Spec(state_map=...)), or reshape it in a callable state_map",
        ),
        (
            GATED,
            RENAMED_UNMAPPED.replace("    def __init__", "    __dyncheck__ = {'state_map': {'fc9': 'encoder'}}\n\n    def __init__", 1),
            "Spec(state_map=...) names 'fc9', which the old model's state_dict has neither as a key nor as a module; "
            "did you mean 'fc3' or 'fc2'?",
        ),
        (
            GATED,
            RENAMED_UNMAPPED.replace(
                "    def __init__",
                "    __dyncheck__ = {'state_map': lambda old: {'encoder.weight': old['q.weight']}}\n\n    def __init__", 1,
            ),
            "Spec(state_map=<lambda>) raised KeyError: 'q.weight' on the old model's state_dict (its keys: fc1.weight, "
            "fc1.bias, fc2.weight, fc2.bias, fc3.weight, fc3.bias)",
        ),
        (
            GATED,
            RENAMED_UNMAPPED.replace("def forward(self, x, control)", "def forward(self, x, control, scale=1.0)").replace(
                "    def __init__", "    __dyncheck__ = {'inputs': {'scale': __import__('hypothesis').strategies.just(1.0)}}\n\n    def __init__", 1
            ),
            "the old DynamicNet.forward does not take 'scale', which the new model is called with (the old one takes "
            "x, control); give OLD as a factory returning a module that adapts the call",
        ),
        (
            GATED,
            RENAMED_UNMAPPED.replace(
                "    def __init__",
                "    __dyncheck__ = {'state_map': lambda old: {k.replace('fc1', 'encoder').replace('fc2', 'gated')"
                ".replace('fc3', 'head'): v.detach() for k, v in old.items()}}\n\n    def __init__", 1,
            ),
            "Spec(state_map=<lambda>) gives the new model's encoder.weight, encoder.bias, gated.weight, gated.bias, "
            "head.weight, head.bias a value computed from none of the old tensors (a constant, or cut off with .data, "
            ".detach(), .numpy() or torch.no_grad()), so its gradient cannot be mapped back; compute it from the old "
            "state_dict with torch operations (torch.cat, torch.stack, reshape, transpose)",
        ),
    ],
)
def test_user_errors_are_one_line(dyncheck_run, pytester, against, source, message):
    target = GATED
    if source is not None:
        pytester.makepyfile(newmod=source)
        target = "newmod:Net"
    line = usage_error(dyncheck_run("--dyncheck", target, f"--dyncheck-against={against}"))
    assert line.startswith(f"ERROR: --dyncheck-against={against} for {target}: "), line
    assert message in line, line


def test_spec_fields_are_validated():
    import dyncheck

    with pytest.raises(dyncheck.InvalidArgument, match=r"Spec\(against=42\) must name the old model"):
        dyncheck.Spec(torch.nn.Linear, against=42)
    with pytest.raises(dyncheck.InvalidArgument, match=r"Spec\(state_map=\.\.\.\) has entry 'fc1': 3; "):
        dyncheck.Spec(torch.nn.Linear, state_map={"fc1": 3})
    with pytest.raises(dyncheck.InvalidArgument, match=r"must be a dict \{old name: new name\} or a callable"):
        dyncheck.Spec(torch.nn.Linear, state_map=[("fc1", "a")])


def test_gradients_are_mapped_back_through_a_callable_state_map():
    from dyncheck.guard.mapping import StateMapping

    old = {"q.weight": torch.randn(2, 3), "k.weight": torch.randn(2, 3)}
    new = {"qk.weight": torch.zeros(4, 3)}
    mapping = StateMapping(lambda s: {"qk.weight": torch.cat([s["q.weight"], s["k.weight"]])}, old, new, "test")
    assert mapping.provenance == {"qk.weight": ("q.weight", "k.weight")}
    grad = torch.arange(12.0).reshape(4, 3)
    back = mapping.grads_back({"qk.weight": grad})
    assert torch.equal(back["q.weight"], grad[:2]) and torch.equal(back["k.weight"], grad[2:])
    renamed = StateMapping({"q": "query"}, {"q.weight": old["q.weight"]}, {"query.weight": new["qk.weight"][:2]}, "test")
    assert torch.equal(renamed.grads_back({"query.weight": grad[:2]})["q.weight"], grad[:2])


# --------------------------------------------------------------------------- git revisions


def _git(path, *args):
    subprocess.run(
        ["git", "-c", "user.name=dyncheck", "-c", "user.email=dyncheck@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=path, check=True, capture_output=True,
    )


@pytest.fixture
def repository(pytester, monkeypatch):
    """A git repository holding one committed model, in pytester's directory."""
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    pytester.makepyfile(netmod=BLOCKY)
    _git(pytester.path, "init", "-q")
    _git(pytester.path, "add", "netmod.py")
    _git(pytester.path, "commit", "-q", "-m", "the model")
    return pytester.path


def test_git_revision_of_the_unchanged_working_tree_agrees(dyncheck_run, repository):
    run = dyncheck_run("--dyncheck", "netmod:Net", "--dyncheck-against=git:HEAD", "--dyncheck-invariants=refactor_agreement", FEW)
    assert run.outcomes() == {"dyncheck::netmod:Net::refactor_agreement": "PASSED"}, run.text


def test_git_revision_catches_a_working_tree_change(dyncheck_run, repository):
    source = (repository / "netmod.py").read_text()
    (repository / "netmod.py").write_text(source.replace("torch.relu(self.fc(h))", "torch.tanh(self.fc(h))"))
    run = dyncheck_run("--dyncheck", "netmod:Net", "--dyncheck-against=git:HEAD", "--dyncheck-invariants=refactor_agreement",
                       "--dyncheck-seed=3")
    lines = failure_lines(run, "netmod:Net", "refactor_agreement")
    assert lines[2] == "The new model computes something else than the old model (git:HEAD) on this example:"
    assert "  first diverging module: block — its inputs agree, its output differs:" in lines
    # The checkout is untouched: the working tree's change is still there, and nothing was written.
    assert "torch.tanh" in (repository / "netmod.py").read_text()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repository, capture_output=True, text=True).stdout
    assert status.split() == ["M", "netmod.py"]


def test_git_revision_with_another_name(dyncheck_run, repository):
    _git(repository, "mv", "netmod.py", "oldnet.py")
    _git(repository, "commit", "-q", "-m", "moved")
    (repository / "netmod.py").write_text((repository / "oldnet.py").read_text())
    run = dyncheck_run("--dyncheck", "netmod:Net", "--dyncheck-against=git:HEAD~1:netmod:Net",
                       "--dyncheck-invariants=refactor_agreement", FEW)
    assert run.outcomes() == {"dyncheck::netmod:Net::refactor_agreement": "PASSED"}, run.text


@pytest.mark.parametrize(
    ("against", "message"),
    [
        ("git:mian", "has no revision 'mian'; give a branch, tag or commit, e.g. git:main or git:HEAD~1"),
        ("git:", "no revision given; write e.g. git:main or git:HEAD~1"),
        ("git:HEAD:nothere:Net", "nothere does not exist at HEAD ("),
        ("git:HEAD:netmod:Nett", "'netmod' at HEAD has no attribute 'Nett'; did you mean Net?"),
    ],
)
def test_git_user_errors(dyncheck_run, repository, against, message):
    line = usage_error(dyncheck_run("--dyncheck", "netmod:Net", f"--dyncheck-against={against}"))
    assert line.startswith(f"ERROR: --dyncheck-against={against} for netmod:Net: "), line
    assert message in line, line


ARGPARSE = "argparse read pytest's command line: parse it only under if __name__ == \"__main__\": (or with parse_known_args())"


def test_an_old_revision_that_parses_the_command_line_is_one_line(dyncheck_run, repository, monkeypatch):
    # The old revision parsed its arguments on import; the working tree moved that under
    # __main__, and is checked against it. argparse reads pytest's command line and exits.
    monkeypatch.setattr("sys.argv", ["pytest", "--dyncheck", "netmod:Net"])  # as a user's run has it
    (repository / "netmod.py").write_text("import argparse\nargparse.ArgumentParser().parse_args()\n" + BLOCKY)
    _git(repository, "commit", "-q", "-am", "parses its arguments")
    (repository / "netmod.py").write_text(BLOCKY)
    line = usage_error(dyncheck_run("--dyncheck", "netmod:Net", "--dyncheck-against=git:HEAD"))
    assert line == (
        f"ERROR: --dyncheck-against=git:HEAD for netmod:Net: importing 'netmod' at HEAD failed: SystemExit: 2; {ARGPARSE}"
    )


def test_an_old_model_whose_constructor_parses_the_command_line_is_one_line(dyncheck_run, pytester, monkeypatch):
    monkeypatch.setattr("sys.argv", ["pytest", "--dyncheck", "netmod:Net"])
    pytester.makepyfile(netmod=BLOCKY, oldnet=BLOCKY.replace(
        "        super().__init__()\n        self.fc1", "        __import__('argparse').ArgumentParser().parse_args()\n"
        "        super().__init__()\n        self.fc1",
    ))
    line = usage_error(dyncheck_run("--dyncheck", "netmod:Net", "--dyncheck-against=oldnet:Net"))
    assert line == (
        "ERROR: --dyncheck-against=oldnet:Net for netmod:Net: building the old model Net() raised SystemExit: 2; "
        f"{ARGPARSE}, or name a factory that builds the model without it"
    )


def test_git_outside_a_repository(dyncheck_run, pytester):
    pytester.makepyfile(netmod=BLOCKY)
    line = usage_error(dyncheck_run("--dyncheck", "netmod:Net", "--dyncheck-against=git:main"))
    assert line == (
        "ERROR: --dyncheck-against=git:main for netmod:Net: netmod.py is not in a git repository, so git:main means nothing"
    )


# --------------------------------------------------------------------------- baselines


def record(dyncheck_run, target, path, *extra, seeded=True):
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=baseline", f"--dyncheck-baseline={path}",
                       "--dyncheck-update-baseline", *extra, seeded=seeded)
    assert run.outcomes() == {f"dyncheck::{target}::baseline": "PASSED"}, run.text
    return run


def compare(dyncheck_run, target, path, *extra):
    return dyncheck_run("--dyncheck", target, "--dyncheck-invariants=baseline", f"--dyncheck-baseline={path}", *extra)


def test_a_baseline_passes_on_the_next_run_and_records_again_to_the_same_bytes(dyncheck_run, pytester):
    run = record(dyncheck_run, GATED, "baselines/", FEW)
    path = pytester.path / "baselines" / "reference_models.gated.DynamicNet.json"
    first = path.read_bytes()
    note = re.search(r"recorded baselines/reference_models\.gated\.DynamicNet\.json: (\d+) examples on 2 paths, "
                     r"([\d.]+) kB; new", run.text)
    assert note, run.text
    assert float(note.group(2)) < 20  # far below 1 MB
    run = compare(dyncheck_run, GATED, "baselines/")
    assert run.outcomes() == {f"dyncheck::{GATED}::baseline": "PASSED"}, run.text
    assert f"baseline  passed   {note.group(1)} examples" in run.text
    run = record(dyncheck_run, GATED, "baselines/")  # the file's own seed and example count
    assert path.read_bytes() == first
    assert "unchanged (the same bytes)" in run.text


def test_the_file_is_plain_json_covering_every_path_seen(dyncheck_run, pytester):
    target = "reference_models.random_depth:DynamicNet"
    # Recorded without a seed: the file's examples are drawn from seed 0, so recording
    # again draws the same ones.
    run = record(dyncheck_run, target, "depth.json", "--dyncheck-max-examples=30", seeded=False)
    document = json.loads((pytester.path / "depth.json").read_text())
    seen = re.findall(r"    path (.+?)  \(", run.text.split("dyncheck summary")[1])
    assert len(seen) == 4 and sorted(document["paths"]) == sorted(seen)
    assert all(1 <= count <= 2 for count in document["paths"].values())
    assert document["recorded_with"] == {"dyncheck": __import__("dyncheck").__version__, "torch": torch.__version__}
    assert document["generation"] == {"seed": 0, "examples": 30, "hypothesis": __import__("hypothesis").__version__}
    assert set(document["examples"][0]) == {"described", "path", "seed", "dims", "args", "outputs", "grads", "modules"}


def test_a_one_line_change_in_a_branch_fails_naming_the_module(dyncheck_run, pytester, monkeypatch):
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    pytester.makepyfile(netmod=BLOCKY)
    record(dyncheck_run, "netmod:Net", "net.json", FEW)
    (pytester.path / "netmod.py").write_text(BLOCKY.replace("torch.relu(self.fc(h))", "torch.tanh(self.fc(h))"))
    run = compare(dyncheck_run, "netmod:Net", "net.json", "--dyncheck-seed=3")
    lines = failure_lines(run, "netmod:Net", "baseline")
    assert re.fullmatch(r"The model drifted from its baseline on recorded example \d of \d in net\.json:", lines[2])
    assert re.fullmatch(r"  - output differs on the model from the baseline: Mismatched elements: .*", lines[3])
    index = lines.index("  first diverging module: block — its inputs agree, its output differs:")
    assert lines[index + 1] == "    output against the recorded:"
    assert re.fullmatch(r"      sum \S+, recorded \S+ \(up to \S+ apart allowed\)", lines[index + 2])
    assert re.search(r"  path:     fc1 → block\.fc → fc3", run.text)
    assert lines[-1] == (
        "Reproduce: pytest --dyncheck netmod:Net --dyncheck-only --dyncheck-seed=3 --dyncheck-baseline=net.json -k baseline"
    )


def test_a_refactor_passes_the_old_models_baseline_and_a_buggy_one_fails_it(dyncheck_run):
    record(dyncheck_run, ATTENTION, "attention.json", FEW)
    run = compare(dyncheck_run, FUSED, "attention.json")
    assert run.outcomes() == {f"dyncheck::{FUSED}::baseline": "PASSED"}, run.text
    buggy = "reference_models.buggy.refactor_path_math:Model"
    lines = failure_lines(compare(dyncheck_run, buggy, "attention.json"), buggy, "baseline")
    assert "  first diverging module: refine — its inputs agree, its output differs:" in lines


def test_a_changed_branch_is_a_path_divergence_from_the_baseline(dyncheck_run, pytester, monkeypatch):
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    pytester.makepyfile(netmod=BLOCKY)
    record(dyncheck_run, "netmod:Net", "net.json", FEW)
    (pytester.path / "netmod.py").write_text(BLOCKY.replace("if control > 0.5:", "if control > 0.25:"))
    lines = failure_lines(compare(dyncheck_run, "netmod:Net", "net.json"), "netmod:Net", "baseline")
    assert re.fullmatch(
        r"path divergence: on recorded example \d of \d in net\.json the baseline took fc1 → fc3, the model now takes "
        r"fc1 → block\.fc → fc3 — a branch decision changed since it was recorded",
        lines[2],
    )
    assert lines[3] == (
        "  first diverging module: block — the paths part after fc1: the model runs block where the baseline ran fc3"
    )


def _edit(path, change):
    from dyncheck.guard.baseline import dumps

    document = json.loads(path.read_text())
    change(document)
    path.write_bytes(dumps(document))


def test_file_problems_are_one_line_with_the_fix(dyncheck_run, pytester):
    record(dyncheck_run, GATED, "gated.json", FEW)
    path = pytester.path / "gated.json"
    text = path.read_text()
    label = f"ERROR: --dyncheck-baseline=gated.json for {GATED}: "
    fix = "re-record it with --dyncheck-update-baseline (and review the diff)"

    path.write_text(text[: len(text) // 2])
    assert usage_error(compare(dyncheck_run, GATED, "gated.json")).startswith(
        f"{label}gated.json is damaged: not valid JSON (")
    path.write_text(text.replace('"seed": 0', '"seed": 1', 1))
    assert usage_error(compare(dyncheck_run, GATED, "gated.json")) == (
        f"{label}gated.json does not match its checksum: it was edited by hand or damaged (a merge, a truncation); {fix}"
    )
    path.write_text(text)
    _edit(path, lambda d: d.update(dyncheck_baseline=2, recorded_with={"dyncheck": "9.0", "torch": "9.0"}))
    assert usage_error(compare(dyncheck_run, GATED, "gated.json")) == (
        f"{label}gated.json was written by dyncheck 9.0 in baseline format 2; this dyncheck "
        f"({__import__('dyncheck').__version__}) reads format 1: use that dyncheck, or {fix}"
    )
    assert usage_error(compare(dyncheck_run, GATED, "nothere.json")) == (
        f"ERROR: --dyncheck-baseline=nothere.json for {GATED}: there is no baseline at nothere.json; "
        "record one with --dyncheck-update-baseline and commit it"
    )


def test_renamed_parameters_without_a_state_map_are_named(dyncheck_run, pytester):
    record(dyncheck_run, GATED, "gated.json", FEW)
    pytester.makepyfile(newmod=RENAMED_UNMAPPED)
    line = usage_error(compare(dyncheck_run, "newmod:Net", "gated.json"))
    assert line.startswith("ERROR: --dyncheck-baseline=gated.json for newmod:Net: the recorded weights do not load "
                           "into the model: the model's encoder.weight, ")
    assert line.endswith(
        "if they were renamed, say so with Spec(state_map={'fc1': 'encoder', 'fc2': 'gated', 'fc3': 'head'}); "
        "or re-record the baseline with --dyncheck-update-baseline"
    )


def test_another_torch_version_is_said_and_not_a_failure(dyncheck_run, pytester):
    record(dyncheck_run, GATED, "gated.json", FEW)
    _edit(pytester.path / "gated.json", lambda d: d["recorded_with"].update(torch="2.0.0"))
    run = compare(dyncheck_run, GATED, "gated.json")
    assert run.outcomes() == {f"dyncheck::{GATED}::baseline": "PASSED"}, run.text
    assert (
        f"DyncheckWarning: {GATED}: the baseline was recorded with torch 2.0.0 (this run: {torch.__version__}); "
        "it still agrees — re-record it with --dyncheck-update-baseline to keep it current"
    ) in run.text


def test_update_without_a_location_is_a_usage_error(dyncheck_run):
    line = usage_error(dyncheck_run("--dyncheck", GATED, "--dyncheck-update-baseline"))
    assert line == (
        "ERROR: --dyncheck-update-baseline needs to know where the baselines live: give --dyncheck-baseline=PATH "
        "(a .json file, or a directory for one file per target)"
    )


def test_a_recording_says_what_changed(dyncheck_run, pytester, monkeypatch):
    monkeypatch.setattr("sys.dont_write_bytecode", True)
    pytester.makepyfile(netmod=BLOCKY)
    record(dyncheck_run, "netmod:Net", "net.json", FEW)
    (pytester.path / "netmod.py").write_text(BLOCKY.replace("torch.relu(self.fc(h))", "torch.tanh(self.fc(h))"))
    run = record(dyncheck_run, "netmod:Net", "net.json")
    assert re.search(r"recorded net\.json: \d+ examples on 2 paths, [\d.]+ kB; changed: outputs of \d+ of \d+ examples; "
                     r"gradients of \d+ of \d+ examples", run.text), run.text


def test_fingerprints_are_the_same_numbers_everywhere():
    from dyncheck.guard.localise import fingerprint

    x = torch.arange(12, dtype=torch.float32).reshape(3, 4) - 5
    assert fingerprint(x).numbers == fingerprint(x.clone().t().contiguous().t()).numbers
    assert fingerprint(x).numbers != fingerprint(x.flip(0)).numbers  # a permutation shows


def test_explain_shows_the_old_model_and_the_state_map(dyncheck_run):
    run = dyncheck_run("--dyncheck", FUSED, "--dyncheck-explain", "--co")
    assert "    against='reference_models.attention:Attention'," in run.text
    assert "    state_map=fuse_qkv," in run.text
    assert "from reference_models.fused_attention import fuse_qkv" in run.text


def test_with_xdist_the_same_verdicts_and_the_same_baseline_bytes(pytester, dyncheck_run, subprocess_env):
    args = ["-p", "no:cacheprovider", "--dyncheck-only", "-rA", "--dyncheck", GATED, "--dyncheck", RENAMED,
            "--dyncheck-seed=9", FEW, "--dyncheck-invariants=refactor_agreement,baseline", "--dyncheck-baseline=b/",
            "--dyncheck-update-baseline"]
    # The serial run in this process (a fresh one costs seconds), the parallel one in fresh ones.
    serial = dyncheck_run(*args).result
    files = sorted((pytester.path / "b").iterdir())
    recorded = [f.read_bytes() for f in files]
    parallel = pytester.runpytest_subprocess("-n", "2", *args)
    assert [f.read_bytes() for f in files] == recorded and len(files) == 2
    assert parallel.stdout.str().count("unchanged (the same bytes)") == 2, parallel.stdout.str()

    def verdicts(result):
        return sorted(re.findall(r"^(PASSED|FAILED) (dyncheck::\S+)", result.stdout.str(), re.M))

    assert verdicts(serial) == verdicts(parallel)
    assert ("PASSED", f"dyncheck::{RENAMED}::refactor_agreement") in verdicts(parallel)


def test_bitwise_agreement_on_request(dyncheck_run, pytester):
    # A rename computes bitwise the same; a batched dispatch adds in another order, which the
    # default tolerances allow and a request for bitwise agreement does not.
    pytester.makefile(".toml", pyproject="[tool.dyncheck.refactor_agreement]\nrtol = 0\natol = 0\n")
    run = dyncheck_run("--dyncheck", RENAMED, "--dyncheck", BATCHED, "--dyncheck-invariants=refactor_agreement",
                       FEW, "--dyncheck-seed=1")
    assert run.outcomes()[f"dyncheck::{RENAMED}::refactor_agreement"] == "PASSED", run.text
    lines = failure_lines(run, BATCHED, "refactor_agreement")
    assert "(up to 0 allowed)" in lines[3], lines[3]


def test_a_refactored_copy_passes_with_its_key_mapping_and_fails_when_a_branch_changes(dyncheck_run, pytester):
    import reference_models.renamed_gated as renamed

    with open(renamed.__file__) as handle:
        text = handle.read()
    pytester.makepyfile(copied=text, changed=text.replace("h = F.relu(self.gated(h))", "h = F.relu(self.gated(h)) * 2"))
    run = dyncheck_run("--dyncheck", "copied:GatedNet", "--dyncheck", "changed:GatedNet",
                       "--dyncheck-invariants=refactor_agreement", "--dyncheck-seed=3")
    assert run.outcomes()["dyncheck::copied:GatedNet::refactor_agreement"] == "PASSED", run.text
    lines = failure_lines(run, "changed:GatedNet", "refactor_agreement")
    assert (
        "  first diverging module: none; the runs part in forward's own code between gated (old fc2), whose output "
        "agrees, and head (old fc3), whose inputs differ"
    ) in lines
    assert "  path:     encoder → gated → head" in lines


def test_a_baseline_of_a_model_with_a_declared_padding_value_compares(dyncheck_run, pytester):
    # Every check pads its examples as declared: the baseline looked its records up by the
    # example object, and the padded one was another, so the compare run raised KeyError.
    pytester.makepyfile(padded_ids="""
        import torch
        from torch import nn
        from dyncheck import Spec
        from dyncheck.strategies import attention_masks, tensors

        class Model(nn.Module):
            __dyncheck__ = Spec(
                inputs={
                    "input_ids": tensors(shape=("batch", "time"), dtype=torch.long, min_value=0, max_value=49),
                    "attention_mask": attention_masks(),
                },
                padding_value=0,
            )

            def __init__(self):
                super().__init__()
                self.emb, self.out = nn.Embedding(50, 8, padding_idx=0), nn.Linear(8, 3)

            def forward(self, input_ids, attention_mask):
                valid = (input_ids != 0) & attention_mask.bool()
                return self.out((self.emb(input_ids) * valid[..., None]).sum(1) / valid.sum(1, keepdim=True))
        """)
    record(dyncheck_run, "padded_ids:Model", "baselines/", FEW)
    run = compare(dyncheck_run, "padded_ids:Model", "baselines/", FEW)
    assert run.outcomes() == {"dyncheck::padded_ids:Model::baseline": "PASSED"}, run.text


def test_a_baseline_draws_no_pad_id_as_a_token_where_the_padding_is_found_by_value(dyncheck_run, pytester):
    # Every check pads its examples as declared; the examples a new baseline draws were not,
    # and a row of only the pad id (attending to no key) was recorded as NaN.
    import base64
    import json

    pytester.makepyfile(by_value="""
        from torch import nn
        import dyncheck

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(4, 8, padding_idx=0)
                self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
                self.out = nn.Linear(8, 4)

            def forward(self, tokens):
                x = self.emb(tokens)
                h, _ = self.attn(x, x, x, key_padding_mask=tokens.eq(0))
                return self.out(h)

        spec = dyncheck.Spec(Model, padding_value=0)
        """)
    record(dyncheck_run, "by_value:spec", "baselines/")
    recorded = json.loads((pytester.path / "baselines" / "by_value.spec.json").read_text())
    tokens = [torch.frombuffer(bytearray(base64.b64decode(e["args"]["tokens"]["data"])), dtype=torch.int64)
              for e in recorded["examples"]]
    assert tokens and not any(bool((t == 0).any()) for t in tokens)
