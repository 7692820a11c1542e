"""Everything dyncheck prints: failure messages, ``--dyncheck-explain`` and the summary.

A failure message has five parts (see the README): the invariant and the target; the
broken property in plain words; the minimal example and the path; the numbers; and a
command to reproduce. A crash inside the model keeps the model's own traceback.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from dyncheck.settings import SETTINGS_KEY

#: (target, stage, traceback) -> the first check whose report showed that traceback.
_SHOWN_KEY = pytest.StashKey[dict]()

if TYPE_CHECKING:
    from dyncheck._items import InvariantItem
    from dyncheck.target import Target

__all__ = ["explain", "failure"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _reproduce(item: InvariantItem, settings: Any) -> str:
    """The command that re-runs ``item``'s check: naming it with --dyncheck-invariants when
    the run collected it only because it was named (an opt-in check its target does not
    configure: causality on a model not declared causal)."""
    named = not item.invariant.collected_by_default(item.target, settings)
    return settings.reproduce(item.target.text, item.invariant.name, named=named)


def failure(item: InvariantItem, exc: BaseException) -> str | None:
    """The message for a failed check, or None for an error inside dyncheck itself."""
    from dyncheck.errors import InvariantViolation, ModelError

    from hypothesis.errors import FlakyFailure

    if isinstance(exc, FlakyFailure):
        inner = [failure(item, sub) for sub in exc.exceptions]
        if inner and all(p is not None for p in inner):
            head, blank, rest = inner[0].partition("\n\n")
            return (
                f"{head}{blank}The failure did not repeat when Hypothesis ran the same example "
                "again: the model is not a function of its inputs and seed (it keeps state "
                "outside the module, e.g. in a global, or draws from a generator dyncheck does "
                "not seed). The first failure:\n" + rest
            )
        return None
    if isinstance(exc, BaseExceptionGroup):
        parts = [failure(item, sub) for sub in exc.exceptions]
        if all(p is not None for p in parts):
            count = len(parts)
            head = f"{count} distinct failures of {item.invariant.name} on {item.target.text}:\n\n"
            return head + "\n\n".join(f"[{i}] {p}" for i, p in enumerate(parts, 1))
        return None
    from hypothesis.errors import FailedHealthCheck, Unsatisfiable

    if isinstance(exc, (Unsatisfiable, FailedHealthCheck)):
        return (
            f"{item.invariant.name}: dyncheck could not generate examples for {item.target.text}: "
            f"{_first_sentence(exc)}\nCheck that Spec(dims=..., inputs=...) can be satisfied "
            "together (e.g. lengths need a 'time' of at least 1); --dyncheck-explain shows the spec in use."
        )
    settings = item.config.stash[SETTINGS_KEY]
    example = getattr(exc, "example", None)
    if not isinstance(exc, (InvariantViolation, ModelError)):
        if not isinstance(exc, Exception) or not _raised_in_dyncheck(exc):
            return None
        # A bug of dyncheck's own: said so, with its traceback, not pytest's and Hypothesis's.
        lines = [
            f"{item.invariant.name}: dyncheck itself raised {type(exc).__name__} while checking "
            f"{item.target.text} (an error in dyncheck, not a finding about the model)",
            "",
            f"  {_first_line(exc)}",
        ]
        if example is not None:
            lines.append(f"  example:  {example.describe()}")
        lines.append("")
        lines.append("dyncheck's traceback:")
        lines.extend("  " + line for line in _dyncheck_traceback(exc).splitlines())
        lines.append("")
        lines.append("Please report it with this command, which repeats it:")
        lines.append(f"Reproduce: {_reproduce(item, settings)}")
        return "\n".join(lines)
    lines: list[str] = []
    if isinstance(exc, InvariantViolation):
        lines.append(f"{item.invariant.name} violated by {item.target.text}")
        lines.append("")
        lines.append(exc.headline)
        lines.extend(f"  {d}" for d in exc.details)
        lines.extend(_before_shrinking(item.context, exc.headline))
        if item.invariant.name == "batch_invariance":
            lines.extend(_inferred_batch_note(item.target))
    else:
        lines.append(f"{item.invariant.name}: {item.target.text} raised in {exc.stage}")
        lines.append("")
        who = "The spec's loss" if exc.stage == "the spec's loss" else "The model"
        lines.append(
            f"{who} raised {type(exc.original).__name__} on an example the spec allows: "
            f"{_first_line(exc.original)}"
        )
        no_device = _no_device(exc.original)
        hints = [*exc.hints, *no_device, *_one_row_norm(exc.original, example)]
        if hints:
            lines.append("  why:")
            lines.extend(f"    {hint}" for hint in hints)
        if exc.stage.startswith("forward") and item.target.inferred_inputs and not no_device:
            lines.append(
                f"  note:     the inputs were inferred: {_inferred_inputs(item.target)} (--dyncheck-explain shows "
                "the whole Spec); if the model needs other shapes or values, give them with Spec(inputs=..., dims=...)"
            )
    if example is not None:
        lines.append(f"  example:  {example.describe()}")
        if example.dims:
            lines.append("  sizes:    " + ", ".join(f"{k}={v}" for k, v in example.dims.items()))
    path = getattr(exc, "path", None)
    if path is not None and item.context is not None:
        lines.append(f"  path:     {item.context.describe_path(path, outline=True)}")
    if isinstance(exc, ModelError):
        lines.append("")
        shown = _model_traceback(exc.original)
        # an expected failure's report is not shown: it holds no traceback the others can point to
        shown_by = item.config.stash.setdefault(_SHOWN_KEY, {})
        first = item if item.get_closest_marker("xfail") else shown_by.setdefault((item.target.text, exc.stage, shown), item)
        title = "The model's traceback:" if who == "The model" else "The traceback:"
        if first is not item:
            # one crash (inputs inferred wrong) fails every check alike: its traceback once
            lines.append(f"{title} as in {first.invariant.name}'s report.")
        else:
            lines.append(title)
            lines.extend("  " + line for line in shown.splitlines())
    lines.append("")
    lines.append(f"Reproduce: {_reproduce(item, settings)}")
    return "\n".join(lines)


_GREATEST = re.compile(r"Greatest absolute difference: (\S+?)(?: at|;|$)")


def _before_shrinking(context: Any, headline: str) -> list[str]:
    """A line with the first failure's greatest difference where shrinking made the one shown
    ten times smaller or more: the smallest example also leaves the smallest gap, and a bug
    shown a hair past its tolerance reads as rounding noise when it was not."""
    first = getattr(context, "first_finding", None)
    then, now = (_GREATEST.search(text or "") for text in (first, headline))
    if then is None or now is None:
        return []
    try:
        before, after = float(then[1]), float(now[1])
    except ValueError:
        return []
    if not before > 10 * after:
        return []
    return [
        f"  first found on example {context.failed_at}, {before:.3g} apart at most; the example below is shrunk, and "
        "its difference shrank with it"
    ]


def _inferred_batch_note(target: Any) -> list[str]:
    """A line naming the inputs whose batch axis inference chose, for a batch_invariance
    failure: a forward that reads another axis as the batch (a time-major loop, the rows of
    one sequence) couples samples only as drawn."""
    from dyncheck.examples import strategy_arguments

    shapes = {
        name: strategy_arguments(target.spec.inputs[name]).get("shape")
        for name in target.inferred_inputs if name in target.spec.inputs
    }
    shown = [name for name, shape in shapes.items() if isinstance(shape, tuple) and "batch" in shape]
    if not shown:
        return []
    return [
        f"  note:     the batch axis was inferred: {', '.join(f'{n} {shapes[n]!r}' for n in shown)}; if forward reads "
        f"another axis as the batch (a time-major loop, rows that form one sequence), give the shape with "
        f"Spec(inputs={{{shown[0]!r}: tensors(shape=(...))}})"
    ]


def headline(exc: BaseException) -> str | None:
    """The one-line finding of a failed check, for the summary; None for other errors."""
    from dyncheck.errors import InvariantViolation, ModelError

    if isinstance(exc, BaseExceptionGroup):
        lines = [h for sub in exc.exceptions if (h := headline(sub))]
        return lines[0] if lines else None
    if isinstance(exc, InvariantViolation):
        if exc.headline.endswith(":") and exc.details:  # "3 problems:" says less than the first
            return exc.details[0].lstrip(" -")
        return exc.headline
    if isinstance(exc, ModelError):
        return f"the model raised {type(exc.original).__name__} in {exc.stage}: {_first_line(exc.original)}"
    if isinstance(exc, Exception) and _raised_in_dyncheck(exc):
        return f"dyncheck itself raised {type(exc).__name__} (an error in dyncheck): {_first_line(exc)}"
    return None


def _first_sentence(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    end = text.find(". ")
    return text if end == -1 else text[: end + 1]


#: What torch raises when code asks for CUDA on a machine that has none.
_NO_CUDA = ("Torch not compiled with CUDA enabled", "No CUDA GPUs are available", "Found no NVIDIA driver")


def _no_device(original: BaseException) -> list[str]:
    """Why a model that asks for CUDA on a machine without it raised, and the fix: tensors
    made on the input's device run wherever the model does."""
    if not any(text in str(original) for text in _NO_CUDA):
        return []
    return [
        "the model asks for CUDA (a tensor put there with .cuda(), .to('cuda') or device='cuda', or a "
        "torch.cuda call) and this machine has no CUDA device: make tensors on the input's device "
        "(torch.zeros(..., device=x.device)) and call torch.cuda only when x.is_cuda, so the model runs "
        "wherever its inputs are"
    ]


def _one_row_norm(original: BaseException, example: Any) -> list[str]:
    """Why a train-mode BatchNorm got one row on a batch of several: forward split the batch
    (pytorch-tabnet's ghost batch norm normalises chunks of ``virtual_batch_size`` rows, and
    a batch of 3 in chunks of 2 leaves a last chunk of one) or kept one row of it."""
    batch = getattr(example, "dims", {}).get("batch") if example is not None else None
    if "Expected more than 1 value per channel when training" not in str(original) or not batch or batch < 2:
        return []
    return [
        f"a BatchNorm in train mode got one row, though the batch has {batch} samples: forward splits the batch "
        "(x.chunk(...) into groups, a ghost batch norm's last group of one sample) or keeps one row of it; a "
        f"batch of {batch} cannot be trained so. If such batches are not meant, give the sizes that are with "
        "Spec(dims={'batch': ...})"
    ]


def _inferred_inputs(target: Any, most: int = 3) -> str:
    """The inferred inputs as a crash's note names them: each one's strategy and the first
    reason for it (``x as tensors(shape=('batch', 24, 'length')) (first consumed by tdnn
    (Conv1d(in_channels=24)))``), the first ``most`` of them."""
    shown = []
    for name, why in list(target.inferred_inputs.items())[:most]:
        drawn = repr(target.spec.inputs.get(name))
        drawn = drawn if len(drawn) <= 80 else drawn[:77] + "..."
        reason = _first_clause(why)
        reason = reason if len(reason) <= 120 else reason[:117] + "..."
        shown.append(f"{name} as {drawn}" + (f" ({reason})" if reason else ""))
    more = len(target.inferred_inputs) - most
    return "; ".join(shown) + (f"; {more} more" if more > 0 else "")


def _first_clause(text: str) -> str:
    """``text`` up to its first "; " outside brackets (an error quoted inside parentheses may
    hold one)."""
    depth = 0
    for index, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if depth <= 0 and text.startswith("; ", index):
            return text[:index].strip()
    return text.strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _raised_in_dyncheck(exc: BaseException) -> bool:
    """Whether dyncheck's own code is on ``exc``'s traceback (not only pytest's or Hypothesis's)."""
    return any(f.filename.startswith(_PACKAGE_DIR) for f in traceback.extract_tb(exc.__traceback__))


def _dyncheck_traceback(exc: BaseException) -> str:
    """The traceback from the check's own code on (dyncheck's frames and what they called)."""
    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, f in enumerate(frames) if f.filename.startswith(_PACKAGE_DIR)
                  and not f.filename.endswith(("_items.py", "_report.py"))), 0)
    text = "".join(traceback.format_list(frames[first:]))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


def _model_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside dyncheck and torch's module machinery."""
    frames = traceback.extract_tb(exc.__traceback__)
    internal = (_PACKAGE_DIR, os.path.join("torch", "nn", "modules", "module.py"))
    kept = [f for f in frames if not any(part in f.filename for part in internal)]
    # Only dyncheck's frames (a check of what the model returned): the message says it all.
    text = "".join(traceback.format_list(kept))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


# --------------------------------------------------------------------------- explain


def _lambda_source(function: Any) -> str | None:
    """The source of one lambda, also when several stand on one line: the lambda's first
    instruction gives the column of its body, and the ``lambda`` before it starts it."""
    try:
        lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return None
    positions = [  # (0, 0) columns belong to RESUME/RETURN, not to the body
        p for p in function.__code__.co_positions()
        if p[0] is not None and p[2] is not None and p[3] is not None and p[3] > p[2]
    ]
    if not positions:
        return None
    line, _, column, _ = min(positions, key=lambda p: (p[0], p[2]))
    row = line - first
    if not 0 <= row < len(lines):
        return None
    start = lines[row].rfind("lambda", 0, column)
    if start == -1:
        return None
    text = "".join(lines[row:])[start:]
    for end in range(len(text), 0, -1):
        try:
            node = ast.parse(text[:end], mode="eval").body
        except SyntaxError:
            continue
        if isinstance(node, ast.Tuple) and node.elts:
            node = node.elts[0]
        segment = ast.get_source_segment(text[:end], node) if isinstance(node, ast.Lambda) else None
        return " ".join(segment.split()) if segment else None
    return None


def _import_line(obj: Any) -> str:
    """The line that imports ``obj`` (a class or function) by its top-level name."""
    return f"from {obj.__module__} import {obj.__qualname__.split('.')[0]}"


def source_of(function: Any, imports: list[str] | None = None) -> str:
    """Python for a callable in a Spec: a lambda's own source, or a named function's name
    (with its import added to ``imports``)."""
    if getattr(function, "__name__", None) == "<lambda>":
        return _lambda_source(function) or "...,  # a lambda whose source is not available"
    name = getattr(function, "__qualname__", None)
    module = getattr(function, "__module__", None)
    if name and module and "<" not in name:
        if imports is not None:
            imports.append(_import_line(function))
        return name
    return f"...,  # {type(function).__name__}: write this one by hand"


def _imports_for(strategy: Any) -> list[str]:
    """Imports an inferred strategy's repr needs: an Enum class given as choices."""
    import enum

    choices = getattr(strategy, "_dyncheck_choices", None)
    if isinstance(choices, type) and issubclass(choices, enum.Enum):
        return [_import_line(choices)]
    return []


def _imports_for_value(value: Any) -> list[str]:
    """Imports a value's repr needs: the classes of the dataclass instances in it (an inferred
    ``config=TinyConfig(...)``), found through containers and the dataclasses' own fields."""
    import dataclasses

    found: list[str] = []
    pending, seen = [value], set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            cls = type(item)
            if "<" not in cls.__qualname__:
                found.append(_import_line(cls))
            pending.extend(getattr(item, f.name) for f in dataclasses.fields(item) if f.repr)
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
    return found


def _python(value: Any) -> str:
    """``repr(value)`` when it is Python on one line; otherwise a placeholder to fill in."""
    text = repr(value)
    if "\n" in text and text.startswith("fixed_dictionaries("):
        # Hypothesis pretty-prints a long dict over several lines: one line, when that is
        # still the same Python (fixed_dictionaries({...}) of a dict of inputs; a value's
        # own repr over lines, such as a tensor's, is not Python to paste).
        joined = re.sub(r"\n\s*", " ", text)
        try:
            same = ast.dump(ast.parse(joined, mode="eval")) == ast.dump(ast.parse(text, mode="eval"))
        except SyntaxError:
            same = False
        text = joined if same else text
    if "\n" in text or text.startswith("<"):
        return f"...,  # {type(value).__name__}: write this one by hand"
    return text


def explain(target: Target) -> str:
    """The spec dyncheck uses for ``target``, as Python a user can paste and edit."""
    spec = target.spec
    model = spec.model
    if inspect.isclass(model) or inspect.isfunction(model):
        import_line = _import_line(model)
        model_text = model.__qualname__
    else:
        import_line = f"# the model is an instance: {type(model).__qualname__}"
        model_text = "model"
    imports: list[str] = []
    lines = [
        f"# dyncheck spec for {target.text}"
        + (" (inferred parts marked)" if target.inferred_init or target.inferred_inputs else ""),
        "import torch",
        "from hypothesis.strategies import *",
        "import dyncheck",
        "from dyncheck.strategies import *",
        import_line,
        "",
        "spec = dyncheck.Spec(",
        f"    {model_text},",
    ]
    if spec.init:
        lines.append("    init={")
        for name, value in spec.init.items():
            why = target.inferred_init.get(name)
            imports.extend(_imports_for_value(value))
            lines.append(f"        {name!r}: {value!r},{f'  # inferred: {why}' if why else ''}")
        lines.append("    },")
    if spec.inputs:
        lines.append("    inputs={")
        for name, strategy in spec.inputs.items():
            why = target.inferred_inputs.get(name)
            if why:
                lines.append(f"        # inferred: {why}")
            shown = _python(strategy)
            imports.extend(_imports_for(strategy))
            lines.append(f"        {name!r}: {shown}{'' if shown.startswith('...') else ','}")
        for name, why in getattr(target, "kept_defaults", {}).items():
            lines.append(f"        # left at its default {_forward_default(target, name)!r}: {name} ({why})")
        lines.append("    },")
    from dyncheck.strategies import DEFAULT_DIMS

    for dim, why in getattr(target, "inferred_dims", {}).items():
        lines.append(f"    # inferred {dim}: {why}")
    lines.append(f"    dims={ {**DEFAULT_DIMS, **dict(spec.dims)}!r},")
    if spec.branches:
        lines.append("    branches={")
        for name, predicate in spec.branches.items():
            shown = source_of(predicate, imports)
            lines.append(f"        {name!r}: {shown}{'' if shown.startswith('...') else ','}")
        lines.append("    },")
    if spec.ties:
        lines.append(f"    ties={[list(g) for g in spec.ties]!r},")
    if spec.loss is not None:
        shown = source_of(spec.loss, imports)
        lines.append(f"    loss={shown}{'' if shown.startswith('...') else ','}")
    if spec.optimizer is not None:
        shown = source_of(spec.optimizer, imports)
        lines.append(f"    optimizer={shown}{'' if shown.startswith('...') else ','}")
    if spec.xfail:
        lines.append(f"    xfail={dict(spec.xfail)!r},")
    if spec.skip:
        lines.append(f"    skip={dict(spec.skip)!r},")
    if spec.tolerances:
        shown = {name: {"rtol": rtol, "atol": atol} for name, (rtol, atol) in spec.tolerances.items()}
        lines.append(f"    tolerances={shown!r},")
    if spec.frozen:
        lines.append(f"    frozen={list(spec.frozen)!r},")
    if spec.unused:
        lines.append(f"    unused={dict(spec.unused)!r},")
    if spec.lengths is not None:
        from dyncheck.infer import PACKED_LENGTHS_NOTE

        if target.inferred_inputs.get(spec.lengths) == PACKED_LENGTHS_NOTE:
            lines.append(f"    # inferred lengths: {spec.lengths} is {PACKED_LENGTHS_NOTE}")
        lines.append(f"    lengths={spec.lengths!r},")
    if spec.padding_value is not None:
        lines.append(f"    padding_value={spec.padding_value!r},")
    if spec.causal:
        lines.append(f"    causal={spec.causal!r},")
    if spec.load_with_assign:
        lines.append("    load_with_assign=True,")
    if spec.against is not None:
        against = spec.against
        shown = repr(against) if isinstance(against, str) else source_of(against, imports)
        lines.append(f"    against={shown}{'' if shown.startswith('...') else ','}")
    if isinstance(spec.state_map, dict):
        lines.append(f"    state_map={dict(spec.state_map)!r},")
    elif spec.state_map is not None:
        shown = source_of(spec.state_map, imports)
        lines.append(f"    state_map={shown}{'' if shown.startswith('...') else ','}")
    lines.append(")")
    header_end = lines.index("") if "" in lines else len(lines)
    for extra in dict.fromkeys(imports):
        if extra not in lines:
            lines.insert(header_end, extra)
            header_end += 1
    return "\n".join(lines)


def _forward_default(target: Any, name: str) -> Any:
    """The default of forward's argument ``name`` (None where it cannot be read)."""
    try:
        parameter = inspect.signature(target.model_class.forward).parameters.get(name)
    except (AttributeError, TypeError, ValueError):
        return None
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
