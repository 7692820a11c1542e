"""dtype_agreement: the float32 model agrees with a float64 copy of itself.

A float64 copy (same weights, same example, same seed) is the reference; float32 outputs
and gradients must match it within float32's tolerance, atol scaled by the values'
magnitude (for gradients: the largest gradient of the model), and at least rtol=1e-3, atol=1e-4: float32 against float64 accumulates rounding
over the whole forward and backward pass (gradients sum over the batch and the steps, and
a saturated tanh or softmax has a float32 derivative of exactly 0 where float64's is tiny).
The check looks for instability — an overflow to inf, a cancellation that loses every
digit — which is orders of magnitude beyond that. Catches arithmetic that is unstable in float32: an unshifted log-sum-exp that
overflows, a variance computed as E[x²] - E[x]², a division by a tiny difference.
Attention runs its math kernel on both sides (:func:`~dyncheck.agreement.exact_attention`):
the fused kernels' float32 backward is noise at saturated logits, a kernel's trade, not
the model's. A ReLU-type kink whose side float32's rounding decided (a pre-activation that
cancels to 1e-8) is taken on float32's side in the reference too (:mod:`dyncheck.kinks`).

When the float64 copy cannot run (see :mod:`dyncheck.casting`):

* a kernel that refuses float64 (a fused or grouped kernel, a quantised op) leaves the
  example uncompared; when no example could be compared, the check is a skip that names
  the op and its error;
* ``.to(torch.float64)`` that did not reach part of the model (a plain tensor attribute, a
  closure, a global, a float32 tensor made in forward) is a finding that names the tensor
  or the line: the model cannot be cast.

A step the model pins to float32 for half-precision training (``q.to(torch.float32)``,
``softmax(..., dtype=torch.float32)``, ``mask.float()``) gives the float32 model its own
dtype, but gives the float64 copy float32 values midway, next to values that stayed float64: float64's
smallest number as an additive mask meets float32's (GPT-Neo's local attention), or
becomes -inf and turns a fully masked row into NaN (Longformer's). When the two disagree,
or the float64 copy is not finite where float32 is, the reference runs again with such
casts kept in float64 (:class:`~dyncheck.casting.KeptFloat64`), and that run is the
reference from then on; the summary's notes count the examples it settled. When the
float64 copy still gives NaN or inf where the float32 run is finite, it is no reference
and the example is left uncompared. Where both give NaN or inf (``finite``'s to report),
only the elements float64 gives a value for are compared (:func:`_where_referenced`).

A model that draws random numbers in eval mode in its own dtype (``torch.rand_like(x)``,
``x.uniform_()``) draws another stream in float64 than in float32 from one seed. When
the two disagree, both run again with the float32 copy's draws made in float64 and cast
(:mod:`dyncheck.streams`), so the comparison is of the arithmetic, not of two samples.
Draws that cannot be lined up that way leave the example uncompared, and the skip says
how to make the streams agree or how to declare it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.utils._pytree import tree_leaves, tree_map

from dyncheck.agreement import (
    Config,
    Run,
    close,
    compare,
    difference_margins,
    exact_attention,
    nothing_compared,
    run_config,
    seed_dependence,
)
from dyncheck.casting import KeptFloat64, cast, diagnose, dtype_name
from dyncheck.cloning import clone
from dyncheck.compare import all_finite, mismatch, tolerances
from dyncheck.errors import InvariantViolation, ModelError
from dyncheck.examples import Example
from dyncheck.invariants._base import Context, Invariant
from dyncheck.invariants._where import TOLERANCE, Recording, described, quiet, recorded, reported
from dyncheck.invariants.padding_invariance import keep_relative_lengths
from dyncheck.kinks import Kinks, run_aligned
from dyncheck.norms import constant_norm_overflow, constant_norms, note_overflow
from dyncheck.rounding import EPS32, SENSITIVITY_FACTOR, RoundingNoise, nudged
from dyncheck.streams import Draws

__all__ = ["DtypeAgreement"]

FLOAT32 = Config("float32", "cpu", torch.float32)
FLOAT64 = Config("float64 (reference)", "cpu", torch.float64)


#: Why an example whose float64 run is not finite while its float32 run is compares nothing.
_UNFIT_REFERENCE = (
    "the float64 copy gave NaN/inf where float32 is finite, so there is no reference: a step pinned to float32 "
    "(softmax(..., dtype=torch.float32)) after a mask of torch.finfo(dtype).min turns float64's smallest number "
    "into -inf there, which the model never meets in its own dtype"
)

#: Why an example whose float64 run is NaN/inf wherever it could be compared compares nothing.
_NO_FINITE_REFERENCE = (
    "the float64 copy gave NaN/inf in every output and gradient where float32 did not, so there is "
    "nothing to compare; NaN/inf in the model's own dtype is the finite check's to report"
)


def _finite(run: Run) -> bool:
    """Whether every output and gradient of ``run`` is finite."""
    return all_finite([t for _, t in run.outputs] + list(run.grads.values()))


def _where_referenced(reference: Run, single: Run) -> tuple[Run, Run] | None:
    """Both runs with the elements where the float64 reference is NaN or inf set to zero on
    both sides, when the float32 run is not finite either; None when nothing is left.

    Where float64 itself is NaN the model's arithmetic is broken in any dtype (``finite``
    reports it), so there is no reference value; float32's value there, NaN or a zero
    that rounding gave instead (a gradient that underflowed before the NaN met it), says
    nothing about float32. Where float64 is finite and float32 is not, the comparison
    stands: that is the overflow this check is for."""
    kept = 0

    def masked(ref: torch.Tensor, own: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        nonlocal kept
        if own is None or not ref.is_floating_point() or ref.shape != own.shape:
            kept += 1  # compared as it is: compare reports what does not line up
            return ref, own
        unreferenced = ~torch.isfinite(ref)
        kept += int(ref.numel() - unreferenced.sum())
        return ref.masked_fill(unreferenced, 0), own.masked_fill(unreferenced, 0)

    theirs = {name: masked(t, single.grads.get(name)) for name, t in reference.grads.items()}
    own_outputs = dict(single.outputs)
    outputs = {name: masked(t, own_outputs.get(name)) for name, t in reference.outputs}
    if not kept:
        return None
    return (
        dataclasses.replace(
            reference,
            outputs=[(name, outputs[name][0]) for name, _ in reference.outputs],
            grads={name: ref for name, (ref, _) in theirs.items()},
        ),
        dataclasses.replace(
            single,
            outputs=[(name, outputs[name][1] if name in outputs else t) for name, t in single.outputs],
            grads={**single.grads, **{name: own for name, (_, own) in theirs.items() if own is not None}},
        ),
    )


_DEVICES = ("cpu", "cuda")


def _autocast_enabled() -> list[str]:
    found = []
    for device in _DEVICES:
        try:
            if torch.is_autocast_enabled(device):
                found.append(device)
        except (RuntimeError, TypeError, AttributeError):  # a torch without the per-device API
            pass
    return found


def _autocast_run(context: Context, example: Example, *, off: bool) -> tuple[Run | None, torch.dtype | None]:
    """A float32 copy's run with every op seen under ``torch.autocast``: (the run, the lowest
    precision an op under autocast computed in, None when none did: an autocast that lowers
    nothing, ``tanh`` on the CPU, is no mixed precision). With ``off``, each such op runs with
    autocast switched off, in float32 as the rest of the model. None for the run when it raises."""
    from torch.overrides import TorchFunctionMode

    lowered: set[torch.dtype] = set()

    class Autocast(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            devices = _autocast_enabled()
            if not devices:
                return func(*args, **(kwargs or {}))
            if off:
                with contextlib.ExitStack() as stack:
                    for device in devices:
                        stack.enter_context(torch.autocast(device, enabled=False))
                    return func(*args, **(kwargs or {}))
            result = func(*args, **(kwargs or {}))
            for value in tree_leaves(result):
                if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
                    lowered.add(value.dtype)
            return result

    try:
        with Autocast():
            run = run_config(context.fresh_model(), context.target, example, FLOAT32)
    except Exception:
        return None, None
    low = max(lowered, key=lambda d: tolerances(d)[0]) if lowered else None
    return run, low


#: Selections whose indices depend on how ties among their values are broken.
_SELECTIONS = frozenset({"sort", "argsort", "topk", "argmax", "argmin"})


@dataclasses.dataclass
class _Selection:
    """One sort, argsort, topk, argmax or argmin a copy ran: the floating values it chose
    among, along ``dim`` (None: over every value), the ``k`` it kept, which end it took
    (``largest``: descending, argmax), and the indices it picked."""

    name: str
    values: torch.Tensor
    dim: int | None
    k: int
    largest: bool
    picked: torch.Tensor

    def allows(self, other: torch.Tensor, rtol: float, atol: float) -> bool:
        """Whether ``other`` (another copy's indices) is as good a pick on these values, to
        within the tolerance of their largest magnitude: an order or choice among values
        that tie, or nearly, in this copy's precision."""
        if other.shape != self.picked.shape:
            return False
        values = self.values.double()
        tol = atol + rtol * (float(values.abs().amax()) if values.numel() else 0.0)
        sign = 1.0 if self.largest else -1.0
        dim = self.dim
        if dim is None:
            values, other, dim = values.reshape(-1), other.reshape(-1), 0
        if other.dim() < values.dim():
            other = other.unsqueeze(dim)
        chosen = values.gather(dim, other)
        if self.name in ("argmax", "argmin"):
            best = values.amax(dim, keepdim=True) if self.largest else values.amin(dim, keepdim=True)
            return bool((sign * (best - chosen) <= tol).all())
        if self.name == "topk":
            kth = values.topk(self.k, dim=dim, largest=self.largest).values.narrow(dim, self.k - 1, 1)
            return bool((sign * (kth - chosen) <= tol).all())
        steps = chosen.shape[dim] - 1
        if steps < 1:
            return True
        return bool((sign * (chosen.narrow(dim, 1, steps) - chosen.narrow(dim, 0, steps)) <= tol).all())


def _selection(func: Any, args: Any, kwargs: Any, result: Any) -> _Selection | None:
    """The selection ``func(*args, **kwargs)`` made, giving ``result``; None for any other call
    and for one over integers (no rounding ties them)."""
    name = getattr(func, "__name__", "")
    if name not in _SELECTIONS or not args or not isinstance(args[0], torch.Tensor) or not args[0].is_floating_point():
        return None
    kwargs, rest = kwargs or {}, list(args[1:])
    dim, k = kwargs.get("dim"), 1
    if name == "topk":
        k = int(kwargs.get("k", rest.pop(0) if rest else 1))
        dim = kwargs.get("dim", rest.pop(0) if rest else -1)
        largest = bool(kwargs.get("largest", rest.pop(0) if rest else True))
    elif name in ("sort", "argsort"):
        if dim is None:
            dim = rest.pop(0) if rest and type(rest[0]) is int else -1
        largest = bool(kwargs.get("descending", rest.pop(0) if rest else False))
    else:
        if dim is None and rest and type(rest[0]) is int:
            dim = rest[0]
        largest = name == "argmax"
    # sort and topk give (values, indices); argsort, argmax and argmin the indices (a tensor's
    # own .indices is a sparse tensor's method)
    picked = result if isinstance(result, torch.Tensor) else getattr(result, "indices", None)
    if not isinstance(picked, torch.Tensor) or args[0].numel() < 2:
        return None
    return _Selection(name, args[0].detach().clone(), dim, k, largest, picked.detach().clone())


def _selections(context: Context, example: Example, config: Config) -> list[_Selection] | None:
    """Each selection a copy of the model in ``config`` makes on ``example``, in call order;
    None when the run raises."""
    from torch.overrides import TorchFunctionMode

    seen: list[_Selection] = []

    class Selections(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            result = func(*args, **(kwargs or {}))
            found = _selection(func, args, kwargs, result)
            if found is not None:
                seen.append(found)
            return result

    try:
        with Selections():
            run_config(context.fresh_model(), context.target, example, config)
    except Exception:
        return None
    return seen


def _tied_selection(context: Context, example: Example) -> str | None:
    """The first selection (a sort, a top-k, an argmax) at which the float32 copy picked
    other elements than the float64 copy's same call, where float64's picks are as good on
    float32's values to within float32's tolerance (saturated scores, several anchors at
    probability 1.0, or scores a few units apart): which of them comes first is float32's
    rounding, not the model's arithmetic. None when there is none: picks both copies make
    alike (ReLU's zeros, whole numbers, tied in both) rule out nothing."""
    single = _selections(context, example, FLOAT32)
    if not single:
        return None
    reference = _selections(context, example, FLOAT64)
    if reference is None:
        return None
    rtol, atol = tolerances(torch.float32)
    for ours, theirs in zip(single, reference):
        if ours.name != theirs.name:
            return None  # the two runs went other ways before this: not one call's tie
        if ours.picked.shape == theirs.picked.shape and torch.equal(ours.picked, theirs.picked):
            continue
        return ours.name if ours.allows(theirs.picked, rtol, atol) else None
    return None


def _constant_normalised(context: Context, example: Example) -> str | None:
    """The normalisation layers that, on a float32 copy in eval mode, normalised an input by
    its own statistics that was constant (an InstanceNorm, GroupNorm or LayerNorm given a
    constant map; not a BatchNorm that uses its running statistics), named; None when none did."""
    model = context.fresh_model().eval()
    try:
        with constant_norms(model) as found:
            run_config(model, context.target, example, FLOAT32)
    except Exception:
        return None
    modules = dict(model.named_modules())
    names = [
        name for name in found
        if not (isinstance(modules.get(name), nn.modules.batchnorm._BatchNorm) and modules[name].track_running_stats)
    ]
    if not names:
        return None
    return f"{', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''}"


class DtypeAgreement(Invariant):
    name = "dtype_agreement"
    summary = "float32 outputs and gradients agree with a float64 copy of the model (the reference)"
    #: (rtol, atol) below which the float32 defaults are not used (see the module docstring)
    floor = (1e-3, 1e-4)

    def check(self, context: Context, example: Example) -> None:
        with exact_attention():
            self._check(context, example)

    def _check(self, context: Context, example: Example) -> None:
        tolerance = context.tolerance(self.name)
        first_kept = None
        try:
            reference = run_config(context.fresh_model(), context.target, example, FLOAT64)
        except ModelError as exc:
            # A cast the model pins to float32 (``t.float()`` before a Linear, as a timestep
            # embedding computed in float32 for half-precision training) gives the float64
            # copy float32 tensors its float64 layers refuse: with such casts kept in float64
            # the copy runs the float32 model's program, as for a disagreement below.
            first_kept = self._kept(context, example, raw=True)
            if first_kept is None:
                self._cannot_cast(context, example, exc)
                return
            reference = first_kept[1]
        context.record(reference.path, example)
        if (lazy := context.lazy_on(reference.path)) is not None:
            return context.nothing_to_compare(lazy)
        missing = nothing_compared(reference)
        # The float64 copy's parameters (two model sizes; its output's graph holds them too)
        # go before the float32 run: its outputs and gradients are all the comparison needs.
        reference = dataclasses.replace(reference, model=context.prototype(), output=None)
        single = run_config(context.fresh_model(), context.target, example, FLOAT32)
        # Likewise the float32 copy's parameters (its output's graph holds them): its
        # gradients and detached outputs are what is compared.
        single = dataclasses.replace(single, model=reference.model, output=None)

        def judged(reference: Run) -> tuple[str | None, list[str]]:
            """(unfit, findings): why the reference cannot serve (NaN/inf where float32 is
            finite, or everywhere), else how the two disagree where it is finite."""
            theirs, ours = reference, single
            if not _finite(reference):
                if _finite(single):
                    return _UNFIT_REFERENCE, []
                masked = _where_referenced(reference, single)
                if masked is None:
                    return _NO_FINITE_REFERENCE, []
                theirs, ours = masked
            return None, compare(theirs, ours, tolerance=tolerance, floor=self.floor, model=reference.model)

        unfit, findings = judged(reference)
        float64, sites = FLOAT64, []
        if first_kept is not None:
            float64, sites = first_kept[0], first_kept[2]
            if not (unfit or findings):
                _note_kept(context, sites, raised=True)
        elif (unfit or findings) and (kept := self._kept(context, example)) is not None:
            float64, reference, sites = kept
            unfit, findings = judged(reference)
            if not (unfit or findings):
                _note_kept(context, sites)
        if findings and not unfit and tolerance is None and (low := _autocast_run(context, example, off=False)[1]):
            # Part of forward computes under torch.autocast in a lower precision, which the
            # float64 copy does not mirror (autocast leaves float64 alone): the precision the
            # model chose, not its arithmetic. The float32 copy is compared again with
            # autocast switched off, so the rest of the model is still judged at float32.
            off, _ = _autocast_run(context, example, off=True)
            if off is not None:
                off = dataclasses.replace(off, model=reference.model, output=None)
                findings = compare(reference, off, tolerance=tolerance, floor=self.floor, model=reference.model)
                if not findings:
                    context.compared()
                    return context.note("autocast", lambda count: (
                        f"compared with torch.autocast off on {count} example{'s' if count != 1 else ''}: forward runs "
                        f"part of itself under autocast({dtype_name(low)}), which the float64 copy does not mirror"
                    ))
                single = off
        if findings and not all_finite(single.grads.values()) and all_finite(reference.grads.values()):
            # float32's gradients overflowed where float64's did not: innocent when
            # normalisation layers that saw a constant input (a pre-norm stack's LayerNorms
            # on an all-zero image) are the whole cause, as finite and grad_isolation take
            # it. The outputs are still compared.
            reason = constant_norm_overflow(context, example, train=False)
            if reason is not None:
                note_overflow(context, reason)
                findings = compare(
                    dataclasses.replace(reference, grads={}), dataclasses.replace(single, grads={}),
                    tolerance=tolerance, floor=self.floor, model=reference.model,
                )
        if findings and not unfit and (constant := _constant_normalised(context, example)):
            # A norm over a constant input (an InstanceNorm given a black image) divides its
            # rounding of the mean by sqrt(eps): float32's and float64's roundings, amplified
            # by 316 at eps 1e-5, in any precision. Not the model's arithmetic.
            return context.nothing_to_compare(
                f"{constant} normalised a constant input (variance 0): what it outputs is each precision's rounding "
                "of the mean, amplified by 1/sqrt(eps), not comparable between float32 and float64"
            )
        if findings and not unfit and tolerance is None and (tie := _tied_selection(context, example)):
            # A selection among values float32 rounds to equal, or nearly (softmax saturated at
            # 1.0 for several anchors, then a top-k): float64 orders them by values float32
            # cannot hold, and picks others. The order of a tie is not the model's arithmetic.
            return context.nothing_to_compare(
                f"the float32 copy's {tie} picked other elements than float64's among values equal to within "
                "float32's tolerance (saturated or near-equal scores): which comes first is rounding"
            )
        if unfit:
            return context.nothing_to_compare(unfit)
        if not findings and missing:
            return context.nothing_to_compare(missing)
        notes: list[str] = []
        if findings:
            findings, notes, comparable = self._explain(context, example, reference, tolerance, float64)
            if not comparable:
                return context.nothing_to_compare(_STREAMS)
        context.compared()
        if findings and reported():
            flagged = {f.split(" differs on ")[0] for f in findings if " differs on " in f}
            notes += self._where(context, example, float64, flagged)
        if findings and sites:
            notes.append(
                f"The float64 reference kept float64 where the model casts to float32 ({_places(sites)}), "
                "as that cast gives the float32 model its own dtype: the difference is not that cast's."
            )
        if findings:
            raise InvariantViolation(
                findings[0] if len(findings) == 1 else f"float32 and float64 disagree ({len(findings)} differences):",
                ([] if len(findings) == 1 else [f"- {f}" for f in findings]) + notes,
                path=single.path,
            )

    @quiet
    def _where(self, context: Context, example: Example, float64: Config, flagged: set[str]) -> list[str]:
        """Where the float32 copy departs from the float64 one (:mod:`~dyncheck.invariants._where`):
        both run again, module by module, the float32 copy's random draws lined up with the
        reference's. Nothing when no output the findings name (``flagged``) differs past the
        walk's tolerance (a difference in the gradients alone is not in forward), the draws do
        not line up, the float32 run does not repeat, or the module found, run in float32 on
        the float64 copy's arguments, gives the float64 copy's output (it only passed on a
        difference its inputs had)."""
        draws = Draws()
        with draws:
            reference = recorded(context.fresh_model(), lambda m: run_config(m, context.target, example, float64))
        model = context.fresh_model()

        def narrow(run: Any) -> Any:
            lined_up = Draws(torch.float32, draws.calls, torch.float64)
            with lined_up:
                done = run(lambda m: run_config(m, context.target, example, FLOAT32))
            return done if lined_up.lined_up() is not False else None

        single = narrow(lambda call: recorded(model, call))
        again = narrow(lambda call: call(context.fresh_model()))
        if reference is None or single is None or again is None:
            return []
        wide, ours = reference.output, single.output
        if wide.path != ours.path:  # a flipped branch: the finding says so, and calls no longer pair
            return []
        repeated = dict(again.outputs)
        if any(name not in repeated or mismatch(t, repeated[name]) for name, t in ours.outputs):
            return []  # the float32 run does not repeat (NaN where NaN was repeats)
        outputs = dict(wide.outputs)
        if not any(
            name in flagged and name in outputs and close(t, outputs[name], tolerance=TOLERANCE) for name, t in ours.outputs
        ):
            return []

        def confirm(call: Any) -> bool:
            return self._own_loss(context, example, float64, call, reference)

        return described(
            model, reference, single, ours="on float32", theirs="the float64 copy",
            unchecked="their tensors do not pair", confirm=confirm,
        )

    @staticmethod
    def _own_loss(context: Context, example: Example, float64: Config, call: Any, reference: Recording) -> bool:
        """Whether the module of ``call``, run in float32 on the float64 copy's arguments of
        that call, gives another output than the float64 copy's: the module itself loses the
        digits. False when it draws random numbers, or the call cannot be made again."""
        from dyncheck.invariants._where import _arguments, _draws, _recalled, _reproduces

        key = (call.name, call.index)
        with Draws():
            given = _arguments(context.fresh_model(), lambda m: run_config(m, context.target, example, float64), key)
        recorded_call = reference.call(key)
        if given is None or recorded_call is None:
            return False
        expected = recorded_call.outputs
        base = context.fresh_model().eval().get_submodule(call.name)

        def module() -> torch.nn.Module:
            return clone(base)

        if not _reproduces(cast(module(), torch.float64), given, expected):
            return False  # on its own it is not the module that ran (state its parent set in forward)
        arguments = tree_map(
            lambda v: v.to(torch.float32) if isinstance(v, torch.Tensor) and v.dtype == torch.float64 else v, given
        )

        if _draws(module, arguments):
            return False
        output = _recalled(module(), arguments, 0)
        if len(expected) != len(output):
            return False
        return any(close(value, ref, tolerance=TOLERANCE) for (_, value), (_, ref) in zip(output, expected))

    def _kept(self, context: Context, example: Example, *, raw: bool = False) -> tuple[Config, Run, list[str]] | None:
        """The reference again with every cast of a float64 or integer tensor to float32 kept
        in float64 (:class:`~dyncheck.casting.KeptFloat64`): its config, its run and where
        casts were kept; None when the model casts nothing of the kind, or the copy cannot
        run that way (a kernel that takes float32 only). The run holds the prototype's
        parameters and no output, unless ``raw``: then it is the run as it came."""
        mode = KeptFloat64()

        def patch(model: torch.nn.Module) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                with mode:
                    return model(*args, **kwargs)

            return call

        config = dataclasses.replace(FLOAT64, patch=patch)
        try:
            run = run_config(context.fresh_model(), context.target, example, config)
        except ModelError:
            return None
        if not mode.sites:
            return None
        return config, run if raw else dataclasses.replace(run, model=context.prototype(), output=None), list(mode.sites)

    def _explain(
        self, context: Context, example: Example, reference: Run, tolerance: Any, float64: Config = FLOAT64
    ) -> tuple[list[str], list[str], bool]:
        """(findings, notes, comparable) for a disagreement, after ruling out its innocent
        explanations in turn:

        1. random draws in the model's own dtype: both sides again, the float32 copy's
           draws made in float64 where they line up with the reference's (:class:`Draws`);
        2. a model that is not a function of its inputs and seed (the same seed gives other
           results): nothing more can be said, the findings stand with a note; one whose
           output depends on the seed through draws out of sight, or that did not line up,
           is not comparable;
        3. the problem's own conditioning: atol grows by what float32-sized perturbations of
           the inputs and weights move in the float64 copy, and for gradients by what one ulp
           moves in the float32 run and what float32's rounding of every intermediate value
           moves in the float64 one (not with a configured tolerance);
        4. a kink decided by rounding: an element the two copies put on two sides of a
           ReLU-type kink, on values within float32's rounding of each other, takes the
           float32 copy's side in the reference too (:class:`~dyncheck.kinks.Kinks`).
        """
        recorded = Draws()
        with recorded:
            again = run_config(context.fresh_model(), context.target, example, float64)
        lined_up, kinked = Draws(torch.float32, recorded.calls, torch.float64), Kinks()
        with lined_up, kinked:
            single = run_config(context.fresh_model(), context.target, example, FLOAT32)
        aligned = lined_up.lined_up()
        findings = compare(again, single, tolerance=tolerance, floor=self.floor, model=again.model)
        if not findings:
            return [], [], True
        dependence = seed_dependence(context.fresh_model, context.target, example, float64, reference)
        if dependence == "unseeded":
            return findings, [_UNSEEDED], True
        if dependence == "seeded" and (not recorded.calls or aligned is False):
            return findings, [], False
        if tolerance is None:
            margins = self._conditioning(context, example, again, float64)
            # float32's own rounding: what one ulp moves in the float32 run itself, then (only
            # when that leaves a difference: it is the costlier run) what rounding every
            # intermediate value moves in the float64 one.
            for extra in (
                lambda: self._self_sensitivity(context, example, single, recorded, kinked.records),
                lambda: self._rounding_noise(context, example, again, float64),
            ):
                for name, margin in extra().items():
                    margins[name] = max(margins.get(name, 0.0), margin)
                findings = compare(again, single, floor=self.floor, model=again.model, margins=margins)
                if not findings:
                    break
        else:
            margins = {}
        if findings:
            kinked = self._kinks(context, example, recorded, tolerance, margins, float64)
            findings = findings if kinked is None else kinked
        return findings, [_ALIGNED] if aligned and findings else [], True

    def _kinks(
        self,
        context: Context,
        example: Example,
        recorded: Draws,
        tolerance: Any,
        margins: dict[str, float],
        float64: Config = FLOAT64,
    ) -> list[str] | None:
        """The findings left when the float64 copy takes the float32 copy's side of every
        kink the two decided otherwise on values within rounding of each other (both runs
        again, the float32 one recording its kinked calls); None when no kink was moved or
        the calls did not line up (the findings stand as they were)."""

        def single() -> Run:
            with Draws(torch.float32, recorded.calls, torch.float64):
                return run_config(context.fresh_model(), context.target, example, FLOAT32)

        runs = run_aligned(single, lambda: run_config(context.fresh_model(), context.target, example, float64))
        if runs is None:
            return None
        float32, reference = runs
        return compare(reference, float32, tolerance=tolerance, floor=self.floor, model=reference.model, margins=margins)

    def _conditioning(
        self, context: Context, example: Example, reference: Run, float64: Config = FLOAT64
    ) -> dict[str, float]:
        """How far the float64 copy's outputs and gradients move when its inputs and weights
        move by float32's rounding (each scaled by 1 + u·eps, u uniform in [-1, 1], drawn from
        the example's seed), times :data:`_CONDITIONING`: the part of a disagreement the
        problem's own conditioning explains. Steep functions of nearly equal values (a
        near-tie under a large multiplier) move by that much; an overflow, or a cancellation
        of every digit in the model's arithmetic, does not. Empty when the perturbed copy
        takes another path (a branch that close is a path divergence either way)."""
        generator = torch.Generator().manual_seed(example.seed)

        def jitter(tensor: torch.Tensor) -> torch.Tensor:
            u = torch.rand(tensor.shape, generator=generator, dtype=torch.float64) * 2 - 1
            return tensor * (1 + EPS32 * u).to(tensor.device)

        model = cast(context.fresh_model(), torch.float64)
        with torch.no_grad():
            for tensor in (*model.parameters(), *model.buffers()):
                if tensor.is_floating_point() and not is_lazy(tensor):  # a lazy one has no values yet
                    tensor.copy_(jitter(tensor))
        args = keep_relative_lengths(context.target, example.args, {
            name: jitter(value.to(torch.float64))
            if isinstance(value, torch.Tensor) and value.is_floating_point() else value
            for name, value in example.args.items()
        })
        moved = run_config(model, context.target, Example(args, example.seed, example.dims), float64)
        return difference_margins(reference, moved, _CONDITIONING)

    def _self_sensitivity(
        self,
        context: Context,
        example: Example,
        single: Run,
        recorded: Draws,
        kinks: list[tuple[str, torch.Tensor]],
    ) -> dict[str, float]:
        """How far the float32 run's own gradients move when every floating input, weight
        and buffer moves by one float32 ulp (up or down), times
        :data:`~dyncheck.rounding.SENSITIVITY_FACTOR`, the largest over :data:`_NUDGES`
        draws of directions from the example's seed: a gradient that one ulp moves by that
        much carries no more digits than that in float32, whatever float64 says. Attention
        saturated by inputs in the thousands (a post-norm ``nn.TransformerEncoderLayer`` fed
        raw values) computes the right outputs, but its query and key gradients are the
        rounding noise of a softmax backward at a one-hot distribution, which a one-ulp move
        reshuffles -- by amounts that vary a hundredfold from one draw of directions to the
        next, so one draw can underrate it.

        Each moved run draws the same random numbers as ``single`` (``recorded``, lined up)
        and takes ``single``'s side of every kink a move decided otherwise within rounding
        (``kinks``, its recorded kinked calls; :class:`~dyncheck.kinks.Kinks`): a ReLU that
        one ulp flips changes gradients by a whole unit's share, which is a kink's business
        (:meth:`_kinks`), not the gradient's precision, and would hide any difference.
        Outputs get no such margin: a forward that cancels its own digits (a variance as
        E[x²] - E[x]², a log-softmax without the max shift) is the model's numerical bug,
        and dtype_agreement reports it. A draw whose moved copy takes another path adds
        nothing."""
        generator = torch.Generator().manual_seed(example.seed + 1)
        margins: dict[str, float] = {}
        for _ in range(_NUDGES):
            model = context.fresh_model()
            with torch.no_grad():
                for tensor in (*model.parameters(), *model.buffers()):
                    if tensor.dtype == torch.float32 and not is_lazy(tensor):  # a lazy one has no values yet
                        tensor.copy_(nudged(tensor, generator))
            args = keep_relative_lengths(context.target, example.args, {
                name: nudged(value, generator)
                if isinstance(value, torch.Tensor) and value.dtype == torch.float32 else value
                for name, value in example.args.items()
            })
            try:
                with Draws(torch.float32, recorded.calls, torch.float64), Kinks(kinks):
                    moved = run_config(model, context.target, Example(args, example.seed, example.dims), FLOAT32)
            except ModelError:
                continue
            for name, margin in difference_margins(single, moved, SENSITIVITY_FACTOR, outputs=False).items():
                margins[name] = max(margins.get(name, 0.0), margin)
        return margins

    def _rounding_noise(
        self, context: Context, example: Example, reference: Run, float64: Config = FLOAT64
    ) -> dict[str, float]:
        """How far the float64 copy's gradients move when every value it computes, forward
        and backward, is rounded by float32's amount (:class:`~dyncheck.rounding.RoundingNoise`,
        drawn from the example's seed), times :data:`_CONDITIONING`. A softmax saturated by
        logits in the hundreds rounds its largest probability to exactly 1.0 in float32, and
        its backward ``p * (g - sum(p * g))`` then cancels to exactly 0 for that class, where
        float64 keeps about eps32 * |g|; multiplied by activations in the hundreds, that is a
        weight gradient beyond the atol floor which no one-ulp move of the inputs changes.
        Gradients only, as for :meth:`_self_sensitivity`. Empty when the rounded copy takes
        another path."""
        with RoundingNoise(torch.Generator().manual_seed(example.seed + 2)):
            try:
                moved = run_config(context.fresh_model(), context.target, example, float64)
            except ModelError:
                return {}
        return difference_margins(reference, moved, _CONDITIONING, outputs=False)

    def _cannot_cast(self, context: Context, example: Example, exc: ModelError) -> None:
        """The float64 copy raised: the model's own crash (float32 raises too), a kernel that
        refuses float64 (the example is not compared), or state .to() did not reach (a finding)."""
        run_config(context.fresh_model(), context.target, example, FLOAT32)  # float32's own crash first

        def run(model: torch.nn.Module) -> Any:
            return run_config(model, context.target, example, FLOAT64)

        failure = diagnose(run, context.fresh_model(), torch.float64)
        if failure is None:
            raise exc
        at = f" at {failure.where}" if failure.where else ""
        if failure.kind == "refused":
            op = f"{failure.op} refuses float64" if failure.op else "a kernel refuses float64"
            path = _experts_switch(context.fresh_model()) if "grouped_mm" in (failure.op or "") else None
            context.nothing_to_compare(
                f"the float64 reference cannot run: {op} ({failure.error}){at}; a fused, grouped or quantised "
                f"kernel often takes lower precisions only. Give it a float64 path to compare{path or ''}, or "
                "declare Spec(skip={'dtype_agreement': ...})."
            )
            return
        where = f"{failure.op}{at}" if failure.op else at.removeprefix(" at ")
        details = [f"error: {failure.error}"]
        if where:
            details.append(f"where: {where}")
        details.append(failure.fix)
        raise InvariantViolation(
            f"The model cannot be cast to float64: {failure.culprit}; the float64 copy fails where it meets "
            "float64 tensors.",
            details,
        )


def _experts_switch(model: nn.Module) -> str | None:
    """How to run a model's grouped experts in plain matmuls, where it (or a submodule) has
    the switch Hugging Face's mixture-of-experts models have (``set_experts_implementation``),
    as text to follow "Give it a float64 path to compare"; None where none has it or it is
    already "eager"."""
    for name, module in model.named_modules():
        setter = getattr(module, "set_experts_implementation", None)
        getter = getattr(module, "get_experts_implementation", None)
        if not (callable(setter) and callable(getter)):
            continue
        try:
            current = getter()
        except Exception:  # a library's own method: any failure means no switch to offer
            return None
        if not isinstance(current, dict) or all(value in (None, "eager") for value in current.values()):
            return None
        owner = f"model.{name}" if name else "model"
        return (
            f' ({owner}.set_experts_implementation("eager") runs its experts as plain matmuls, which take '
            "float64: check a factory that returns the model so set)"
        )
    return None


def _note_kept(context: Context, sites: list[str], *, raised: bool = False) -> None:
    """Count an example that agreed once the reference kept float64 through the model's
    casts to float32, in the summary's notes (with the first place it casts); ``raised``:
    the float64 copy ran only so (its float64 layers refused the cast's float32 tensors)."""
    if raised:
        context.note(
            "kept_float64_ran",
            lambda count: f"on {count} example{'s' if count != 1 else ''} the float64 copy ran only with float64 "
            f"kept where the model casts to float32 ({_places(sites)}): in the float32 model that cast gives the "
            "model's own dtype, in the float64 copy float32 tensors its float64 layers refuse",
        )
        return
    context.note(
        "kept_float64",
        lambda count: f"on {count} example{'s' if count != 1 else ''} the float64 reference kept float64 where "
        f"the model casts to float32 ({_places(sites)}): in the float32 model that cast gives the model's own "
        "dtype, in the float64 copy it gives float32 values midway, next to values that stayed float64",
    )


def _places(sites: list[str]) -> str:
    """The first place a cast was kept (its file's name, line and code) and how many more."""
    more = f" and {len(sites) - 1} more place{'s' if len(sites) > 2 else ''}" if len(sites) > 1 else ""
    return f"{os.path.basename(sites[0])}{more}"


#: Draws of one-ulp directions :meth:`DtypeAgreement._self_sensitivity` takes the largest
#: margin of: on a saturated softmax one draw's margin ranged from 0.03 to 12 over eight
#: draws of one example. Each draw is one more float32 forward and backward, taken only
#: for an example on which the two dtypes disagree beyond the tolerance.
_NUDGES = 3

#: float32 rounds every intermediate value too, not only the inputs and weights, and the
#: errors accumulate over the forward and backward pass: ten times what the inputs' rounding
#: alone moves covers that, while an overflow or a lost digit stays far beyond it.
_CONDITIONING = 10.0


_UNSEEDED = (
    "Run twice with the same seed, the float64 copy gives different results too: the model draws "
    "from a generator the seed does not reach, or keeps state between calls (see determinism)."
)
_ALIGNED = (
    "The model draws random numbers in its own dtype; dyncheck drew the float32 copy's in float64 "
    "too, so the two runs had the same numbers and the difference is in the arithmetic."
)
_STREAMS = (
    "the model draws random numbers even in eval mode in its own dtype (another seed changes its "
    "output), and float32 and float64 draw different streams from one seed, which dyncheck could not "
    "line up: draw in one dtype and cast (torch.rand(x.shape, dtype=torch.float32).to(x.dtype)) so both "
    "copies draw the same numbers, or declare Spec(skip={'dtype_agreement': ...})"
)
