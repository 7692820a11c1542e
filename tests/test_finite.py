"""finite: NaN/inf outputs and gradients, named; messages pinned."""

from __future__ import annotations

import re

NAN_OUTPUT = "reference_models.buggy.nan_output:Model"
NAN_GRADIENT = "reference_models.buggy.nan_gradient:Model"


def test_nan_output_message(dyncheck_run):
    run = dyncheck_run("--dyncheck", NAN_OUTPUT, "--dyncheck-seed=2", "--dyncheck-invariants=finite")
    lines = run.failure("::finite").strip().splitlines()
    assert lines[0] == f"finite violated by {NAN_OUTPUT}"
    assert lines[2] == "The model produced NaN/inf outputs for an input the spec allows."
    assert re.fullmatch(r"  output: 4 / 4 non-finite \(4 NaN\), first at index \(0, 0\)", lines[3])
    assert re.fullmatch(r"  example:  x float32\[1, 8\] all zero, control=tensor\(\[0\.5\]\), seed=0", lines[4])
    assert lines[-1] == f"Reproduce: pytest --dyncheck {NAN_OUTPUT} --dyncheck-only --dyncheck-seed=2 -k finite"


def test_nan_gradient_names_the_parameter(dyncheck_run):
    run = dyncheck_run("--dyncheck", NAN_GRADIENT, "--dyncheck-seed=2", "--dyncheck-invariants=finite")
    lines = run.failure("::finite").strip().splitlines()
    assert lines[2].startswith("The outputs are finite but backward produced NaN/inf gradients")
    assert re.fullmatch(r"  fc1\.weight\.grad: \d+ / 48 non-finite \(\d+ NaN\), first at index \(\d+, \d+\)", lines[3])


def test_crash_keeps_the_models_traceback_and_explains_the_tie(dyncheck_run):
    target = "reference_models.buggy.shared_original:SharedNet"
    run = dyncheck_run("--dyncheck", target, "--dyncheck-invariants=finite")
    text = run.failure("::finite")
    assert f"finite: {target} raised in forward" in text
    assert "The model raised RuntimeError on an example the spec allows: mat1 and mat2 shapes cannot be multiplied" in text
    assert (
        "    layers.hidden.weight (the same Parameter as layers.input.weight and layers.output.weight) "
        "has shape [6, 8], but layers.hidden is Linear(in_features=6, out_features=6, bias=True) and needs [6, 6]: "
        "a weight can only be tied between layers of the same shape"
    ) in text
    assert "The model's traceback:" in text
    assert "shared_original.py" in text and "in forward" in text
    assert "dyncheck/invariants" not in text  # dyncheck's own frames are not shown
