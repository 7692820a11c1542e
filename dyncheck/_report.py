"""Everything dyncheck prints: failure messages, ``--dyncheck-explain`` and the summary.

A failure message has five parts (see the README): the invariant and the target; the
broken property in plain words; the minimal example and the path; the numbers; and a
command to reproduce. A crash inside the model keeps the model's own traceback.
"""

from __future__ import annotations

import inspect
import os
import traceback
from typing import TYPE_CHECKING, Any

from dyncheck.settings import SETTINGS_KEY

if TYPE_CHECKING:
    from dyncheck._items import InvariantItem
    from dyncheck.target import Target

__all__ = ["explain", "failure"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


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
    if not isinstance(exc, (InvariantViolation, ModelError)):
        return None
    settings = item.config.stash[SETTINGS_KEY]
    example = getattr(exc, "example", None)
    lines: list[str] = []
    if isinstance(exc, InvariantViolation):
        lines.append(f"{item.invariant.name} violated by {item.target.text}")
        lines.append("")
        lines.append(exc.headline)
        lines.extend(f"  {d}" for d in exc.details)
    else:
        lines.append(f"{item.invariant.name}: {item.target.text} raised in {exc.stage}")
        lines.append("")
        lines.append(
            f"The model raised {type(exc.original).__name__} on an example the spec allows: "
            f"{_first_line(exc.original)}"
        )
        if exc.hints:
            lines.append("  why:")
            lines.extend(f"    {hint}" for hint in exc.hints)
    if example is not None:
        lines.append(f"  example:  {example.describe()}")
        if example.dims:
            lines.append("  sizes:    " + ", ".join(f"{k}={v}" for k, v in example.dims.items()))
    path = getattr(exc, "path", None)
    if path is not None and item.context is not None:
        lines.append(f"  path:     {item.context.describe_path(path)}")
    if isinstance(exc, ModelError):
        lines.append("")
        lines.append("The model's traceback:")
        lines.extend("  " + line for line in _model_traceback(exc.original).splitlines())
    lines.append("")
    lines.append(f"Reproduce: {settings.reproduce(item.target.text, item.invariant.name)}")
    return "\n".join(lines)


def headline(exc: BaseException) -> str | None:
    """The one-line finding of a failed check, for the summary; None for other errors."""
    from dyncheck.errors import InvariantViolation, ModelError

    if isinstance(exc, BaseExceptionGroup):
        lines = [h for sub in exc.exceptions if (h := headline(sub))]
        return lines[0] if lines else None
    if isinstance(exc, InvariantViolation):
        return exc.headline
    if isinstance(exc, ModelError):
        return f"the model raised {type(exc.original).__name__} in {exc.stage}: {_first_line(exc.original)}"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _model_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside dyncheck and torch's module machinery."""
    frames = traceback.extract_tb(exc.__traceback__)
    internal = (_PACKAGE_DIR, os.path.join("torch", "nn", "modules", "module.py"))
    kept = [f for f in frames if not any(part in f.filename for part in internal)]
    text = "".join(traceback.format_list(kept or frames))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


# --------------------------------------------------------------------------- explain


def _source_of(function: Any) -> str:
    try:
        source = inspect.getsource(function).strip()
    except (OSError, TypeError):
        return f"...  # {function!r}"
    if "lambda" in source:
        source = source[source.index("lambda"):]
        depth = 0
        for index, char in enumerate(source):
            depth += char in "([{"
            depth -= char in ")]}"
            if depth < 0 or (depth == 0 and char == ","):
                return source[:index].strip()
        return source.rstrip(",")
    return getattr(function, "__qualname__", repr(function))


def explain(target: Target) -> str:
    """The spec dyncheck uses for ``target``, as Python a user can paste and edit."""
    spec = target.spec
    model = spec.model
    if inspect.isclass(model) or inspect.isfunction(model):
        import_line = f"from {model.__module__} import {model.__qualname__.split('.')[0]}"
        model_text = model.__qualname__
    else:
        import_line = f"# the model is an instance: {type(model).__qualname__}"
        model_text = "model"
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
            lines.append(f"        {name!r}: {value!r},{f'  # inferred: {why}' if why else ''}")
        lines.append("    },")
    if spec.inputs:
        lines.append("    inputs={")
        for name, strategy in spec.inputs.items():
            why = target.inferred_inputs.get(name)
            if why:
                lines.append(f"        # inferred: {why}")
            lines.append(f"        {name!r}: {strategy!r},")
        lines.append("    },")
    from dyncheck.strategies import DEFAULT_DIMS

    lines.append(f"    dims={ {**DEFAULT_DIMS, **dict(spec.dims)}!r},")
    if spec.branches:
        lines.append("    branches={")
        for name, predicate in spec.branches.items():
            lines.append(f"        {name!r}: {_source_of(predicate)},")
        lines.append("    },")
    if spec.ties:
        lines.append(f"    ties={[list(g) for g in spec.ties]!r},")
    if spec.loss is not None:
        lines.append(f"    loss={_source_of(spec.loss)},")
    if spec.skip:
        lines.append(f"    skip={dict(spec.skip)!r},")
    if spec.frozen:
        lines.append(f"    frozen={list(spec.frozen)!r},")
    lines.append(")")
    return "\n".join(lines)
