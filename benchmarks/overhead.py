"""How much dyncheck adds to the passes each property needs, per example.

Run from the repository root on an otherwise idle machine:

    .venv/bin/python -m benchmarks.overhead                      # small and mid-size model
    .venv/bin/python -m benchmarks.overhead --model mid --examples 5

For each invariant, one example is timed two ways on the same inputs:
  plain  — a hand-written PyTorch loop doing only the passes the property needs
           (determinism: two forwards; finite: forward and backward; batch_invariance:
           the batch, then each row alone; dtype_agreement: forward and backward in
           float32 and in float64; state_roundtrip: the example twice, the state_dict into
           a fresh build, then the example on both; packed_rnn: each sequence through the equations step
           by step in float64, and the packed batch unsorted and sorted, with backward;
           padding_invariance: on a float64 copy, the batch, each row trimmed, and the
           batch with two more padding steps, with backward; ...), on a model built once
           (the padded checks' passes read the mid-size model's ``x`` and ``lengths``);
  check  — dyncheck's whole check of that example (fresh models, seeding, tracing,
           comparisons, its extra probes),
and the ratio check / plain is printed against the target (≤ 1.5× on the mid-size model:
the two-layer LSTM tagger, hidden 256, batch 32, length 64). Numbers vary by machine;
they are measurements, not tests.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from benchmarks.common import examples as draw_examples
from dyncheck.errors import DyncheckWarning, InvariantViolation, ModelError
from dyncheck.invariants import Context, registry
from dyncheck.rnn_reference import naive_rnn_rows
from dyncheck.settings import Settings
from dyncheck.target import resolve
from dyncheck.tracing import floating_leaves

MODELS = {"small": "reference_models.gated:DynamicNet", "mid": "benchmarks.models:MID_SIZE"}
TARGET_RATIO = 1.5
SETTINGS = Settings(targets=(), seed=0, seed_given=True, max_examples=None, invariants=None, explain=False, only=True)


def _loss(output) -> torch.Tensor:
    return sum(t.sum() for _, t in floating_leaves(output) if t.is_floating_point())


def _forward(model, target, args):
    with torch.no_grad():
        return target.call(model, args)


def _forward_backward(model, target, args):
    model.zero_grad(set_to_none=True)
    _loss(target.call(model, args)).backward()


@contextlib.contextmanager
def _float64():
    """float64 as torch's default dtype inside the block (tensors made in forward follow)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _rows(example, args):
    """Each row of the batch alone, by the example's batch size (first axis)."""
    size = example.dims.get("batch") or 1
    for row in range(size):
        yield {n: v[row:row + 1] if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == size else v
               for n, v in args.items()}


def plain_passes(name: str) -> Callable | None:
    """The passes the property ``name`` needs, written as a user would: (model, target,
    example) -> None."""
    def determinism(model, target, example):
        _forward(model, target, example.fresh_args())
        _forward(model, target, example.fresh_args())

    def finite(model, target, example):
        _forward_backward(model, target, example.fresh_args())

    def coverage(model, target, example):
        # Every example in eval and in train mode (models differ between the two).
        _forward(model.eval(), target, example.fresh_args())
        _forward(model.train(), target, example.fresh_args())

    def state_roundtrip(model, target, example):
        # The original runs the example twice (state made lazily shows on the second call),
        # its state_dict loads into a freshly built model, and both run the example.
        _forward(model, target, example.fresh_args())
        _forward(model, target, example.fresh_args())
        fresh = target.build()
        fresh.load_state_dict(model.state_dict())
        _forward(model, target, example.fresh_args())
        _forward(fresh, target, example.fresh_args())

    def purity(model, target, example):
        _forward(model.train(), target, example.fresh_args())
        _forward(model.eval(), target, example.fresh_args())
        model.train()

    def tied_weights(model, target, example):
        _forward_backward(model, target, example.fresh_args())
        torch.optim.SGD(model.parameters(), lr=0.01).step()

    def dtype_agreement(model, target, example):
        _forward_backward(model, target, example.fresh_args())
        wide = copy.deepcopy(model).double()
        args = {n: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                for n, v in example.fresh_args().items()}
        _forward_backward(wide, target, args)

    def batch_invariance(model, target, example):
        model.eval()
        args = example.fresh_args()
        _forward(model, target, args)
        for row in _rows(example, args):
            _forward(model, target, row)
        model.train()

    def padding_invariance(model, target, example):
        # On a float64 copy (as the check runs, so float32 rounding is not compared): the
        # batch, each row alone trimmed to its length, and the batch with two more steps of
        # padding, each forward and backward.
        wide = copy.deepcopy(model).double().eval()
        args = {n: v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                for n, v in example.fresh_args().items()}
        with _float64():
            _forward_backward(wide, target, args)
            for row, length in enumerate(args["lengths"].tolist()):
                alone = {"x": args["x"][row:row + 1, :length], "lengths": args["lengths"][row:row + 1]}
                _forward_backward(wide, target, alone)
            longer = torch.cat([args["x"], torch.randn(args["x"].shape[0], 2, args["x"].shape[2],
                                                       dtype=torch.float64)], dim=1)
            _forward_backward(wide, target, {"x": longer, "lengths": args["lengths"]})

    def packed_rnn(model, target, example):
        # For each recurrent module: each sequence alone through the equations, step by step,
        # in float64 (side by side), with the gradients of a loss through them; then the packed batch forward
        # and backward, unsorted and sorted (enforce_sorted=False and True).
        args = example.fresh_args()
        lengths = args["lengths"].tolist()
        for module in (m for m in model.modules() if isinstance(m, torch.nn.RNNBase)):
            reference = copy.deepcopy(module).double().eval()
            x = torch.randn(len(lengths), max(lengths), module.input_size)
            rows = naive_rnn_rows(reference, [x[row, :length].double() for row, length in enumerate(lengths)])
            loss = sum(output.sum() for output, _, _ in rows)
            torch.autograd.grad(loss, list(reference.parameters()))
            module.eval()
            for enforce_sorted in (False, True):
                order = sorted(range(len(lengths)), key=lambda r: -lengths[r]) if enforce_sorted else range(len(lengths))
                packed = pack_padded_sequence(x[list(order)], torch.tensor([lengths[r] for r in order]),
                                              batch_first=module.batch_first, enforce_sorted=enforce_sorted)
                module.zero_grad(set_to_none=True)
                out, hidden = module(packed)
                padded, _ = pad_packed_sequence(out, batch_first=module.batch_first, total_length=max(lengths))
                (padded.sum() + sum(h.sum() for h in (hidden if isinstance(hidden, tuple) else (hidden,)))).backward()
            module.train()

    return {
        "determinism": determinism, "finite": finite, "grad_isolation": finite, "coverage": coverage,
        "state_roundtrip": state_roundtrip, "purity": purity, "tied_weights": tied_weights,
        "dtype_agreement": dtype_agreement, "batch_invariance": batch_invariance,
        "padding_invariance": padding_invariance, "packed_rnn": packed_rnn,
    }.get(name)


def _median_seconds(function, examples) -> float:
    times = []
    for example in examples:
        start = time.perf_counter()
        function(example)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(text: str, count: int, names: list[str]) -> list[tuple[str, float, float]]:
    target = resolve(text)
    examples = draw_examples(target, count + 1)
    warm, examples = examples[0], examples[1:] or examples
    model = target.build()
    rows = []
    for name in names:
        invariant = registry()[name]()
        passes = plain_passes(name)
        if passes is None or invariant.applies_to(target) or invariant.unavailable(SETTINGS):
            continue
        context = Context(target)
        context.settings = SETTINGS

        def check(example):
            try:
                context.materialise(example)  # as the plugin's items do: a flag after the first
                invariant.check(context, example)
            except (InvariantViolation, ModelError):
                pass  # a measurement: a finding costs what it costs

        passes(model, target, warm)  # first-call caches, lazy imports
        check(warm)
        plain = _median_seconds(lambda e: passes(model, target, e), examples)
        checked = _median_seconds(check, examples)
        rows.append((name, plain, checked))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--model", choices=[*MODELS, "both"], default="both")
    parser.add_argument("--invariants", default="", help="comma-separated (default: every non-opt-in one)")
    args = parser.parse_args(argv)
    # An optimizer's first construction imports torch._dynamo (seconds, once per process).
    importlib.import_module("torch._dynamo")
    warnings.simplefilter("ignore", DyncheckWarning)
    names = [n.strip() for n in args.invariants.split(",") if n.strip()] or [
        name for name, cls in registry().items() if not cls.opt_in
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.examples} examples")
    print("| model | invariant | plain passes | dyncheck's check | ratio | target | how far off |")
    print("|---|---|---|---|---|---|---|")
    for key in (MODELS if args.model == "both" else [args.model]):
        for name, plain, checked in measure(MODELS[key], args.examples, names):
            ratio = checked / plain
            target = f"≤ {TARGET_RATIO}×" if key == "mid" else ""
            off = ("met" if ratio <= TARGET_RATIO else f"{ratio / TARGET_RATIO:.1f}× over") if key == "mid" else ""
            print(f"| {key} | {name} | {plain * 1e3:.1f} ms | {checked * 1e3:.1f} ms | {ratio:.1f}× | {target} | {off} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
