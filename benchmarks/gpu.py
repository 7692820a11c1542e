"""One run for a machine with a GPU: CPU/CUDA agreement and packed RNNs on CUDA.

Run from the repository root, on a machine with CUDA:

    .venv/bin/python -m benchmarks.gpu                 # every reference model, ~2-4 minutes
    .venv/bin/python -m benchmarks.gpu --examples 10   # quicker

For each good reference model it runs ``device_agreement`` (cpu against cuda, TF32 off)
on generated examples, and for each recurrent one ``packed_rnn`` with the model on CUDA
(cuDNN's packed kernels against the naive float64 loop). It prints one table: the verdict
of each check, the seconds spent on the CPU side and on the CUDA side, and the first
finding. Without CUDA it says so plainly and exits 0, having compared nothing.

``--device cpu`` runs the same table with a second CPU run in place of CUDA: it proves the
script itself on a machine without a GPU (the numbers then compare CPU with CPU).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field

import torch

from benchmarks.common import examples as draw_examples
from dyncheck.agreement import Config, compare, run_config, tf32_disabled
from dyncheck.errors import DyncheckWarning
from dyncheck.invariants import Context
from dyncheck.invariants.packed_rnn import check_module, draw_lengths, recurrent_modules
from dyncheck.target import resolve
from reference_models import GOOD_TARGETS


@dataclass
class Row:
    target: str
    check: str
    examples: int = 0
    cpu_seconds: float = 0.0
    device_seconds: float = 0.0
    findings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if not self.examples:
            return "skipped"
        return f"FAILED on {len(self.findings)}" if self.findings else "passed"


def _timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def device_agreement(text, target, examples, device) -> Row:
    row = Row(text, "device_agreement")
    context = Context(target)
    cpu, other = Config("cpu", "cpu"), Config(device, device)
    with tf32_disabled():
        for example in examples:
            first, seconds = _timed(lambda: run_config(context.fresh_model(), target, example, cpu))
            row.cpu_seconds += seconds

            def on_device():
                run = run_config(context.fresh_model(), target, example, other)
                _synchronize(device)
                return run

            second, seconds = _timed(on_device)
            row.device_seconds += seconds
            row.examples += 1
            findings = compare(first, second, tolerance=None, model=first.model)
            if findings:
                row.findings.append(f"{findings[0]} ({example.describe()})")
    return row


def packed_rnn(text, target, examples, device) -> Row | None:
    model = Context(target).fresh_model()
    modules = recurrent_modules(model)
    if not modules:
        return None
    row = Row(text, "packed_rnn")
    for example in examples:
        generator = torch.Generator().manual_seed(example.seed)
        lengths, padded = draw_lengths(target, example, generator)
        for name, module in modules:
            for side, where in (("cpu", "cpu"), ("device", device)):
                moved = module.to(where)
                state = generator.get_state()

                def run():
                    found = check_module(name or type(model).__name__, moved, lengths, padded, generator)
                    _synchronize(where)
                    return found

                found, seconds = _timed(run)
                if side == "cpu":
                    row.cpu_seconds += seconds
                    generator.set_state(state)  # the device side draws the same inputs
                else:
                    row.device_seconds += seconds
                    row.findings += [f"{text_} ({setting}; lengths {lengths})" for text_, _, setting in found]
            module.to("cpu")
        row.examples += 1
    return row


def table(rows: list[Row], device: str) -> str:
    other = device if device != "cpu" else "cpu (second run)"
    head = f"| target | check | verdict | examples | cpu s | {other} s | first finding |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        first = r.findings[0].replace("|", "\\|")[:160] if r.findings else ""
        lines.append(
            f"| {r.target} | {r.check} | {r.verdict} | {r.examples} | {r.cpu_seconds:.2f} | "
            f"{r.device_seconds:.2f} | {first} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=25, help="examples per model and check (default 25)")
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU (default cuda)")
    parser.add_argument("--targets", default="", help="comma-separated substrings of the targets to run")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print(
            "No CUDA device is present (torch.cuda.is_available() is False): nothing was compared. "
            "Run this on a machine with a GPU and a CUDA build of torch."
        )
        return 0
    if torch.device(args.device).type == "cuda":
        print(f"device: {torch.cuda.get_device_name(args.device)}")
    warnings.simplefilter("ignore", DyncheckWarning)
    wanted = [t for t in args.targets.split(",") if t]
    rows: list[Row] = []
    started = time.perf_counter()
    for text in GOOD_TARGETS:
        if wanted and not any(w in text for w in wanted):
            continue
        target = resolve(text)
        examples = draw_examples(target, args.examples)
        rows.append(device_agreement(text, target, examples, args.device))
        row = packed_rnn(text, target, examples, args.device)
        if row is not None:
            rows.append(row)
        print(f"  {text}: done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(table(rows, args.device))
    failed = [r for r in rows if r.findings]
    for r in failed:
        print(f"\n{r.target} {r.check}:")
        for finding in r.findings[:5]:
            print(f"  - {finding}")
    print(f"\n{len(rows)} checks, {len(failed)} with findings, {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
