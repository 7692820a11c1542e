"""Golden baselines: a model against what it computed when the baseline was recorded.

``--dyncheck-baseline PATH`` (a ``.json`` file for one target, or a directory holding one
file per target) compares each target with its recorded baseline; with
``--dyncheck-update-baseline`` the baseline is recorded (again) instead, and the summary
says what changed.

A recording draws examples from the target's spec with a fixed seed (the file's own seed
when it is recorded again, else ``--dyncheck-seed``, else 0), runs each once to see its
path, and keeps the first two examples of every path seen, in the order they were drawn.
For each it keeps the inputs, the seed, the outputs, the parameter gradients and a
fingerprint of every module call's inputs and outputs (for localisation); the weights are
kept once. A later run loads the recorded weights (through ``Spec(state_map=...)`` when the
model's parameters were renamed since) and replays the recorded examples: the outputs,
gradients and paths must agree within the agreement checks' tolerances
(``[tool.dyncheck.baseline]`` overrides them).

The file is JSON: tensors as dtype, shape and base64 of their little-endian bytes; no
pickled code, nothing executed on load. It is written with sorted names and fixed float
formatting, so recording the same model with the same seed gives the same bytes (an empty
git diff), and ends with a SHA-256 checksum of its content, so a truncated or hand-edited
file is detected.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.parameter import is_lazy
from torch import nn

from dyncheck.agreement import Config, Run, numeric_findings, run_config
from dyncheck.cloning import clone
from dyncheck.errors import InvariantViolation, ModelError, TargetError
from dyncheck.examples import Example
from dyncheck.guard.localise import Call, localise, paths_part, record_calls, summarise
from dyncheck.guard.mapping import Correspondence, StateMapping, module_of
from dyncheck.target import Target
from dyncheck.tracing import describe_path

__all__ = [
    "FORMAT", "Baseline", "Comparison", "baseline_file", "changes", "generate", "load", "previous", "record", "select",
    "shown", "versions", "write",
]

#: The version of the file format; a file in another is refused with a clear message.
FORMAT = 1
#: Examples kept per path seen.
PER_PATH = 2

NOW = Config("the model", "cpu")
RECORDED = Config("the baseline", "cpu")


def versions() -> dict[str, str]:
    import dyncheck

    return {"dyncheck": dyncheck.__version__, "torch": torch.__version__}


def baseline_file(location: str, target_text: str) -> str:
    """The baseline file of one target: ``location`` itself when it is a ``.json`` file,
    else a file named after the target in that directory."""
    if location.endswith(".json"):
        return location
    name = re.sub(r"[^A-Za-z0-9_.-]", ".", target_text).strip(".")
    return os.path.join(location, f"{name}.json")


def shown(path: str) -> str:
    """A path as reports show it: relative to the current directory when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


# --------------------------------------------------------------------------- encoding


def _encode_tensor(tensor: torch.Tensor) -> dict[str, Any]:
    t = tensor.detach().to("cpu")
    entry: dict[str, Any] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}
    if not t.is_contiguous() and t.numel() > 1 and 0 not in t.stride():
        entry["stride"] = list(t.stride())
    raw = t.contiguous().reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
    data = bytes(raw.tolist())
    if sys.byteorder != "little" and t.element_size() > 1:  # pragma: no cover - big-endian hosts
        size = t.element_size()
        data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
    entry["data"] = base64.b64encode(data).decode("ascii")
    return entry


def _decode_tensor(entry: dict[str, Any]) -> torch.Tensor:
    dtype = getattr(torch, entry["dtype"])
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {entry['dtype']!r}")
    shape = [int(s) for s in entry["shape"]]
    data = base64.b64decode(entry["data"], validate=True)
    if sys.byteorder != "little" and dtype.itemsize > 1:  # pragma: no cover - big-endian hosts
        size = dtype.itemsize
        data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
    count = 1
    for size in shape:
        count *= size
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    flat = torch.frombuffer(bytearray(data), dtype=dtype)
    if flat.numel() != count:
        raise ValueError(f"{flat.numel()} values for shape {shape}")
    tensor = flat.reshape(shape).clone()
    if "stride" in entry:
        strided = torch.empty_strided(shape, [int(s) for s in entry["stride"]], dtype=dtype)
        strided.copy_(tensor)
        return strided
    return tensor


def _encode_value(value: Any, name: str) -> Any:
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value)
    if isinstance(value, enum.Enum):
        cls = type(value)
        return {"enum": f"{cls.__module__}:{cls.__qualname__}", "member": value.name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        # its four fields (data, batch_sizes, sorted_indices, unsorted_indices), the last two possibly None
        return {"packed": [_encode_value(v, name) for v in value]}
    if isinstance(value, (tuple, list)):
        return {"tuple" if isinstance(value, tuple) else "list": [_encode_value(v, name) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode_value(v, name) for k, v in value.items()}}
    raise TypeError(f"argument {name!r} is a {type(value).__name__}, which a baseline cannot record")


def _decode_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "data" in value:
        return _decode_tensor(value)
    if "enum" in value:
        module, _, qualname = value["enum"].partition(":")
        owner: Any = importlib.import_module(module)
        for part in qualname.split("."):
            owner = getattr(owner, part)
        return owner[value["member"]]
    if "packed" in value:
        return torch.nn.utils.rnn.PackedSequence(*(_decode_value(v) for v in value["packed"]))
    if "tuple" in value:
        return tuple(_decode_value(v) for v in value["tuple"])
    if "list" in value:
        return [_decode_value(v) for v in value["list"]]
    if "dict" in value:
        return {k: _decode_value(v) for k, v in value["dict"].items()}
    raise ValueError(f"unknown value {sorted(value)}")


def _checksum(document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def dumps(document: dict[str, Any]) -> bytes:
    """The file's bytes: JSON with one entry per line (a tensor, a fingerprint, a version),
    so a diff shows what changed; the checksum last."""
    document = {**{k: v for k, v in document.items() if k != "checksum"}, "checksum": _checksum(document)}
    return (_format(document, 0) + "\n").encode("utf-8")


def _format(value: Any, depth: int) -> str:
    """Indented JSON in which a dict or list holding no dict is written on one line."""
    def inline(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False, allow_nan=True, separators=(", ", ": "))

    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        items = [f"{inner}{inline(k)}: {_format(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        items = [f"{inner}{_format(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return inline(value)


# --------------------------------------------------------------------------- the file


@dataclass
class Recorded:
    """One recorded example: what went in, what came out, where it went."""

    example: Example
    path: tuple[str, ...]
    outputs: list[tuple[str, torch.Tensor]]
    grads: dict[str, torch.Tensor]
    calls: list[Call]


@dataclass
class Baseline:
    path: str
    target: str
    versions: dict[str, str]
    generation: dict[str, int]
    state: dict[str, torch.Tensor]
    examples: list[Recorded] = field(default_factory=list)

    @property
    def modules(self) -> list[str]:
        """Every module name the baseline mentions (its state's, its paths', its calls')."""
        names = dict.fromkeys(module_of(k) for k in self.state)
        for recorded in self.examples:
            names.update(dict.fromkeys(recorded.path))
            names.update(dict.fromkeys(c.name for c in recorded.calls))
        return [n for n in names if n]

    def version_note(self) -> str | None:
        now = versions()
        changed = [
            f"{name} {self.versions.get(name, '?')} (this run: {now[name]})"
            for name in now
            if self.versions.get(name) != now[name]
        ]
        if not changed:
            return None
        return f"the baseline was recorded with {', '.join(changed)}"


def _describe(path: tuple[str, ...], modules: list[str]) -> str:
    """A recorded path as :func:`describe_path` writes it, containers left out (a module
    whose name is a prefix of another's), though no model is at hand."""
    containers = {m for m in modules if any(o.startswith(m + ".") for o in modules)}
    return describe_path(tuple(m for m in path if m not in containers))


def _document(baseline: Baseline) -> dict[str, Any]:
    paths: dict[str, int] = {}
    modules = baseline.modules
    for recorded in baseline.examples:
        text = _describe(recorded.path, modules)
        paths[text] = paths.get(text, 0) + 1
    return {
        "dyncheck_baseline": FORMAT,
        "target": baseline.target,
        "recorded_with": baseline.versions,
        "generation": baseline.generation,
        "paths": paths,
        "state": {name: _encode_tensor(t) for name, t in baseline.state.items()},
        "examples": [
            {
                "described": r.example.describe(),
                "path": list(r.path),
                "seed": r.example.seed,
                "dims": dict(r.example.dims),
                "args": {name: _encode_value(v, name) for name, v in r.example.args.items()},
                "outputs": {name: _encode_tensor(t) for name, t in r.outputs},
                "grads": {name: _encode_tensor(t) for name, t in r.grads.items()},
                "modules": [c.as_json() for c in r.calls],
            }
            for r in baseline.examples
        ],
    }


def write(baseline: Baseline) -> bytes:
    """Write ``baseline`` to its path (atomically) and return the bytes written."""
    data = dumps(_document(baseline))
    directory = os.path.dirname(baseline.path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    temporary = f"{baseline.path}.tmp{os.getpid()}"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, baseline.path)
    return data


def load(path: str, label: str) -> Baseline:
    """Read and check a baseline file; every problem is a one-line :class:`TargetError`."""
    fix = "re-record it with --dyncheck-update-baseline (and review the diff)"
    if not os.path.exists(path):
        raise TargetError(
            f"{label}: there is no baseline at {shown(path)}; record one with --dyncheck-update-baseline and commit it"
        )
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise TargetError(f"{label}: {shown(path)} is not a dyncheck baseline (not UTF-8 text); {fix}") from None
    except json.JSONDecodeError as exc:
        ends = exc.pos >= len(text.rstrip())
        where = "it ends early: truncated?" if ends else f"line {exc.lineno}, column {exc.colno}"
        raise TargetError(f"{label}: {shown(path)} is damaged: not valid JSON ({exc.msg} at {where}); {fix}") from None
    except OSError as exc:
        raise TargetError(f"{label}: cannot read {shown(path)}: {exc.strerror or exc}") from None
    if not isinstance(document, dict) or "dyncheck_baseline" not in document:
        raise TargetError(f"{label}: {shown(path)} is JSON but not a dyncheck baseline; {fix}")
    recorded_with = document.get("recorded_with") or {}
    if document["dyncheck_baseline"] != FORMAT:
        raise TargetError(
            f"{label}: {shown(path)} was written by dyncheck {recorded_with.get('dyncheck', '?')} in baseline "
            f"format {document['dyncheck_baseline']!r}; this dyncheck ({versions()['dyncheck']}) reads format "
            f"{FORMAT}: use that dyncheck, or {fix}"
        )
    if document.get("checksum") != _checksum(document):
        raise TargetError(
            f"{label}: {shown(path)} does not match its checksum: it was edited by hand or damaged "
            f"(a merge, a truncation); {fix}"
        )
    try:
        baseline = Baseline(
            path=path,
            target=document["target"],
            versions=dict(recorded_with),
            generation=dict(document["generation"]),
            state={name: _decode_tensor(entry) for name, entry in document["state"].items()},
        )
        for entry in document["examples"]:
            example = Example(
                args={name: _decode_value(v) for name, v in entry["args"].items()},
                seed=int(entry["seed"]),
                dims=dict(entry["dims"]),
            )
            counts: dict[str, int] = {}
            calls = []
            for call in entry["modules"]:
                index = counts.get(call["module"], 0)
                counts[call["module"]] = index + 1
                calls.append(Call.from_json(call, index))
            baseline.examples.append(
                Recorded(
                    example=example,
                    path=tuple(entry["path"]),
                    outputs=[(name, _decode_tensor(t)) for name, t in entry["outputs"].items()],
                    grads={name: _decode_tensor(t) for name, t in entry["grads"].items()},
                    calls=calls,
                )
            )
    except Exception as exc:  # a file with a valid checksum that this code cannot read
        raise TargetError(f"{label}: {shown(path)} cannot be read: {type(exc).__name__}: {exc}; {fix}") from None
    return baseline


def previous(path: str) -> tuple[Baseline | None, bytes | None]:
    """The baseline at ``path`` and its bytes before it is recorded again (None, None when
    there is none or it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None, None
    try:
        return load(path, "baseline"), data
    except TargetError:
        return None, data


# --------------------------------------------------------------------------- recording


def generate(target: Target, model: nn.Module, seed: int, count: int) -> list[tuple[Example, tuple[str, ...]]]:
    """``count`` examples drawn from the spec with Hypothesis under a fixed seed (no example
    database: the same every time), steered toward new paths, each with the path it took.
    Examples on which the model raises are left out (the other checks report them)."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, given, settings

    from dyncheck.examples import from_target
    from dyncheck.invariants.padding_invariance import declared_padding

    drawn: list[tuple[Example, tuple[str, ...]]] = []
    paths: set[tuple[str, ...]] = set()

    @settings(
        database=None,
        max_examples=count,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.target],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.seed(seed)
    @given(from_target(target))
    def draw(example: Example) -> None:
        # padded as the spec declares, as every check's examples are
        example = declared_padding(target, example)
        try:
            run = run_config(clone(model), target, example, NOW)
        except ModelError:
            return
        hypothesis.target(float(run.path not in paths), label="new paths")
        paths.add(run.path)
        drawn.append((example, run.path))

    draw()
    return drawn


def select(drawn: list[tuple[Example, tuple[str, ...]]]) -> list[Example]:
    """The first :data:`PER_PATH` examples of every path, in the order they were drawn."""
    kept: dict[tuple[str, ...], int] = {}
    out = []
    for example, path in drawn:
        if kept.get(path, 0) < PER_PATH:
            kept[path] = kept.get(path, 0) + 1
            out.append(example)
    return out


def record(target: Target, model: nn.Module, example: Example) -> Recorded:
    """One example run and kept, with every module call's fingerprints."""
    with record_calls(model, fingerprints=True) as calls:
        run = run_config(model, target, example, NOW)
    return Recorded(example=example, path=run.path, outputs=run.outputs, grads=run.grads, calls=list(calls))


def changes(old: Baseline | None, old_bytes: bytes | None, new: Baseline, new_bytes: bytes) -> str:
    """What a recording changed, in one line, for the summary."""
    if old_bytes == new_bytes:
        return "unchanged (the same bytes)"
    if old is None:
        return "new" if old_bytes is None else "replaced a file that was not a readable baseline"
    parts = []
    now, before = new.versions, old.versions
    versions = [f"{k} {before.get(k, '?')} -> {v}" for k, v in now.items() if before.get(k) != v]
    if versions:
        parts.append("recorded with " + ", ".join(versions))
    if set(old.state) != set(new.state):
        parts.append("other parameters")
    else:
        weights = [k for k in new.state if not _same(old.state[k], new.state[k])]
        if weights:
            parts.append(f"weights {', '.join(weights[:4])}{' …' if len(weights) > 4 else ''}")
    old_paths = {r.path for r in old.examples}
    new_paths = {r.path for r in new.examples}
    if new_paths - old_paths:
        parts.append("new paths " + "; ".join(_describe(p, new.modules) for p in sorted(new_paths - old_paths)))
    if old_paths - new_paths:
        gone = sorted(old_paths - new_paths)
        parts.append("paths no longer seen " + "; ".join(_describe(p, old.modules) for p in gone))
    same_inputs = len(old.examples) == len(new.examples) and all(
        a.example.describe() == b.example.describe() and _same_args(a.example, b.example)
        for a, b in zip(old.examples, new.examples)
    )
    if not same_inputs:
        parts.append("other examples")
    else:
        outputs = sum(
            1 for a, b in zip(old.examples, new.examples)
            if a.path != b.path or dict(a.outputs).keys() != dict(b.outputs).keys()
            or not all(_same(t, dict(b.outputs)[n]) for n, t in a.outputs)
        )
        grads = sum(
            1 for a, b in zip(old.examples, new.examples)
            if a.grads.keys() != b.grads.keys() or not all(_same(t, b.grads[n]) for n, t in a.grads.items())
        )
        if outputs:
            parts.append(f"outputs of {outputs} of {len(new.examples)} examples")
        if grads:
            parts.append(f"gradients of {grads} of {len(new.examples)} examples")
    return "changed: " + ("; ".join(parts) if parts else "the recorded details (module fingerprints, generation)")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b) if a.numel() else a.shape == b.shape


def _same_args(a: Example, b: Example) -> bool:
    if a.args.keys() != b.args.keys() or a.seed != b.seed:
        return False
    for name, value in a.args.items():
        other = b.args[name]
        if isinstance(value, torch.Tensor):
            if not isinstance(other, torch.Tensor) or not _same(value, other):
                return False
        elif value != other:
            return False
    return True


# --------------------------------------------------------------------------- comparing


class Comparison:
    """A baseline made ready to compare a target with: the recorded state mapped into the
    model's names, and the module correspondence."""

    def __init__(self, baseline: Baseline, target: Target, model: nn.Module, label: str, tolerance: Any = None) -> None:
        self.baseline = baseline
        self.target = target
        self.tolerance = tolerance
        self.mapping = state_mapping(baseline, target, model, label)
        self.corr = Correspondence(
            self.mapping.provenance,
            baseline.modules,
            [name for name, _ in model.named_modules()],
            self.mapping.unused,
        )
        self.by_example = {id(r.example): r for r in baseline.examples}

    def examples(self) -> Iterator[Example]:
        return iter([r.example for r in self.baseline.examples])

    def load(self, model: nn.Module) -> nn.Module:
        values = self.mapping.values()
        # strict but for a lazy layer no recorded example reached, which keeps no weights
        lazy = [k for k, v in model.state_dict().items() if is_lazy(v) and k not in values]
        model.load_state_dict(values, strict=not lazy)
        return model

    def check(self, model: nn.Module, example: Example, record: Any = None) -> None:
        recorded = self.by_example[id(example)]
        index = self.baseline.examples.index(recorded)
        now = run_config(self.load(clone(model)), self.target, example, NOW)
        if record is not None:
            record(now.path)
        first = Run(RECORDED, recorded.outputs, recorded.grads, (), None)  # type: ignore[arg-type]
        second = Run(NOW, now.outputs, self.mapping.grads_back(now.grads), (), now.model)
        findings = numeric_findings(first, second, tolerance=self.tolerance, diverged=True)
        if not findings:
            return
        where = f"recorded example {index + 1} of {len(self.baseline.examples)} in {shown(self.baseline.path)}"
        notes = [n for n in [self.baseline.version_note()] if n]
        if notes:
            notes = [f"note: {notes[0]}: kernels may round differently; if only rounding changed, re-record "
                     "with --dyncheck-update-baseline and review the diff"]
        if self.corr.canonical(recorded.path, "old") != self.corr.canonical(now.path, "new"):
            module, how = paths_part(recorded.path, now.path, self.corr, old="the baseline", new="the model")
            raise InvariantViolation(
                f"path divergence: on {where} the baseline took {_describe(recorded.path, self.baseline.modules)}, "
                f"the model now takes "
                f"{describe_path(now.path, now.model)} — a branch decision changed since it was recorded",
                [f"first diverging module: {module} — {how}", *summarise(findings), *notes],
                path=now.path,
            )
        fresh = self.load(clone(model))
        with record_calls(fresh, fingerprints=True) as calls:
            run_config(fresh, self.target, example, NOW)
        located = localise(recorded.calls, calls, self.corr, self.tolerance, other="the recorded").describe()
        raise InvariantViolation(
            f"The model drifted from its baseline on {where}:",
            [*summarise(findings), *located, *notes],
            path=now.path,
        )


def state_mapping(baseline: Baseline, target: Target, model: nn.Module, label: str) -> StateMapping:
    """The recorded weights in the model's names: as they are when the names match, else
    through ``Spec(state_map=...)``; a one-line error names what does not match and how to
    map it."""
    current = model.state_dict()
    names_match = list(baseline.state) == list(current) or set(baseline.state) == set(current)
    state_map = None if names_match else target.spec.state_map
    try:
        parameters = [name for name, _ in model.named_parameters(remove_duplicate=False)]
        return StateMapping(state_map, baseline.state, current, label, parameters)
    except TargetError as exc:
        message = str(exc)
        for old, new in [
            ("the old weights do not load into the new model", "the recorded weights do not load into the model"),
            ("from the old state_dict", "from the baseline"),
            ("the new model's", "the model's"),
        ]:
            message = message.replace(old, new)
        raise TargetError(f"{message}; or re-record the baseline with --dyncheck-update-baseline") from None

