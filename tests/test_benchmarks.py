"""The benchmark scripts run (their numbers are measurements, never asserted): the GPU
script's CPU-only paths and the detection table's verdicts."""

from __future__ import annotations

import pytest
import torch

from benchmarks import detection, gpu
from benchmarks.common import examples as draw_examples
from dyncheck.target import resolve


def test_without_cuda_it_says_plainly_that_nothing_was_compared(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "No CUDA device is present (torch.cuda.is_available() is False): nothing was compared." in out
    assert "| target |" not in out


def test_with_a_second_cpu_it_prints_the_table(capsys):
    assert gpu.main(["--device", "cpu", "--examples", "2", "--targets", "rnn:DynamicRNN"]) == 0
    out = capsys.readouterr().out
    assert "| target | check | verdict | examples | cpu s | cpu (second run) s | first finding |" in out
    assert "| reference_models.rnn:DynamicRNN | device_agreement | passed | 2 |" in out
    assert "| reference_models.rnn:DynamicRNN | packed_rnn | passed | 2 |" in out
    assert "2 checks, 0 with findings" in out


def test_a_broken_packed_rnn_is_reported_on_the_device_side():
    target = resolve("reference_models.buggy.unpacking_gru:Model")
    examples = draw_examples(target, 5)
    row = gpu.packed_rnn("unpacking_gru", target, examples, "cpu")
    assert row.examples == 5
    assert row.verdict.startswith("FAILED on"), row
    assert "h_n" in row.findings[0]


@pytest.mark.parametrize("check", [gpu.device_agreement])
def test_a_check_that_ran_nothing_is_a_skip_not_a_pass(check):
    target = resolve("reference_models.gated:DynamicNet")
    assert check("gated", target, [], "cpu").verdict == "skipped"


def test_detection_reports_a_caught_bug_with_its_shrunk_example():
    outcome = detection.run_check("reference_models.buggy.unpacking_gru:Model", "packed_rnn", 10, 0)
    assert outcome.verdict == "failed"
    assert 1 <= outcome.first_failure <= outcome.examples
    assert outcome.minimal.startswith("batch=")
    assert outcome.finding


def test_detection_confirms_a_good_model_and_skips_what_does_not_apply():
    assert detection.run_check("reference_models.gated:DynamicNet", "grad_isolation", 5, 0).verdict == "passed"
    skipped = detection.run_check("reference_models.gated:DynamicNet", "packed_rnn", 5, 0)
    assert skipped.verdict == "skipped" and skipped.finding == "no nn.RNN/LSTM/GRU submodule"


def test_detection_table_counts_misses_and_false_alarms(capsys):
    assert detection.main(["--examples", "5", "--targets", "masked_gate"]) == 0
    out = capsys.readouterr().out
    assert "| masked_gate:Model | grad_isolation | yes | 1 |" in out
    assert out.rstrip().endswith("0 bug(s) missed, 0 false alarm(s).")


def test_scaling_measures_the_plugin_import_against_its_target():
    from benchmarks import scaling

    [(figure, now, target, off), (_, more, _, _)] = scaling.plugin_import(1)
    assert figure == "plugin import without --dyncheck" and target == "< 20 ms"
    assert float(now.removesuffix(" ms")) > 0
    assert float(more.removesuffix(" ms more")) > 0
    assert scaling._off(10, 20, "ms") == "met"
    assert scaling._off(30, 20, "ms") == "10 ms over (1.50×)"


def test_scaling_starts_with_the_machines_speed_on_fixed_work():
    import torch

    from benchmarks import scaling

    threads = torch.get_num_threads()
    [(figure, now, target, off)] = scaling.machine(1)
    assert figure.startswith("machine speed") and now.endswith(" ms") and float(now[:-3]) > 0
    assert torch.get_num_threads() == threads  # the process's thread setting is left as it was
    assert list(scaling.SECTIONS)[0] == "machine"


def test_the_mid_size_model_runs_with_the_shapes_the_issue_names():
    from dyncheck.target import resolve

    target = resolve("benchmarks.models:MID_SIZE")
    model = target.build()
    assert 0.8e6 < sum(p.numel() for p in model.parameters()) < 0.9e6
    outcome = detection.run_check("benchmarks.models:MID_SIZE", "finite", 1, 0)
    assert outcome.verdict == "passed"


def test_overhead_times_a_check_against_the_plain_passes_it_needs():
    from benchmarks import overhead

    [(name, plain, checked)] = overhead.measure("reference_models.gated:DynamicNet", 1, ["determinism"])
    assert name == "determinism" and plain > 0 and checked > 0
    for invariant in ("determinism", "finite", "batch_invariance", "dtype_agreement", "padding_invariance"):
        assert overhead.plain_passes(invariant) is not None


def test_the_founding_suite_is_still_part_of_the_reference_suite():
    """The like-for-like speed figure times targets the suite still checks."""
    from benchmarks import scaling
    from reference_models import GOOD_TARGETS

    assert set(scaling.FOUNDING_TARGETS) <= set(GOOD_TARGETS)
    assert len(scaling.FOUNDING_TARGETS) == 11
