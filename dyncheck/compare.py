"""Tolerance-aware comparison of tensors, reported in torch.testing's words."""

from __future__ import annotations

import types
from typing import Any

import torch

__all__ = ["DEFAULT_TOLERANCES", "all_finite", "mismatch", "tensor_bytes", "tolerances"]

#: (rtol, atol) per dtype: the defaults of ``torch.testing.assert_close``.
DEFAULT_TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.complex32: (1e-3, 1e-5),
    torch.complex64: (1.3e-6, 1e-5),
    torch.complex128: (1e-7, 1e-7),
}


def all_finite(values: Any) -> bool:
    """Whether every floating or complex tensor among ``values`` is finite (other values
    are passed over)."""
    return all(
        bool(torch.isfinite(v).all())
        for v in values
        if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())
    )


def tolerances(*dtypes: torch.dtype) -> tuple[float, float]:
    """The loosest (rtol, atol) of the given dtypes; exact for integers and bools."""
    pairs = [DEFAULT_TOLERANCES.get(d, (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _index(flat_index: int, shape: torch.Size) -> tuple[int, ...]:
    index = []
    for size in reversed(shape):
        index.append(flat_index % size)
        flat_index //= size
    return tuple(reversed(index))


def _g(value: float) -> str:
    return f"{value:.3g}"


def _layout(tensor: torch.Tensor) -> str:
    return "nested" if tensor.is_nested else str(tensor.layout)


def _strided(tensor: torch.Tensor) -> torch.Tensor:
    """A sparse tensor as dense, a nested one padded with zeros (once its components' shapes
    are known to agree): what the comparison below can read."""
    if tensor.is_nested:
        return torch.nested.to_padded_tensor(tensor, 0.0)
    if tensor.layout != torch.strided:
        return tensor.to_dense()
    return tensor


def mismatch(
    actual: Any,
    expected: Any,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    equal_nan: bool = True,
) -> list[str]:
    """Lines describing how ``actual`` differs from ``expected``; empty when they agree.

    NaNs in the same places count as equal (``equal_nan``), as bitwise reproducibility
    of a NaN is still reproducibility; a NaN in one only is a mismatch.
    """
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return [] if _same_object(actual, expected) else [f"{actual!r} != {expected!r}"]
    if actual.layout != expected.layout or actual.is_nested != expected.is_nested:
        return [f"The values for attribute 'layout' do not match: {_layout(actual)} != {_layout(expected)}."]
    if actual.is_nested:
        shapes = [list(t.shape) for t in actual.unbind()], [list(t.shape) for t in expected.unbind()]
        if shapes[0] != shapes[1]:
            return [f"The values for attribute 'shape' do not match: components {shapes[0]} != {shapes[1]}."]
    actual, expected = _strided(actual), _strided(expected)
    for attribute in ("shape", "dtype", "device"):
        a, e = getattr(actual, attribute), getattr(expected, attribute)
        if a != e:
            return [f"The values for attribute '{attribute}' do not match: {a} != {e}."]
    if actual.numel() == 0:
        return []
    with torch.no_grad():
        if torch.equal(actual, expected):  # the common case, in one call (no NaN is equal)
            return []
    a = actual.detach().cpu()
    e = expected.detach().cpu()
    if a.dtype == torch.bool or not (a.is_floating_point() or a.is_complex()):
        a, e = a.to(torch.int64 if a.dtype != torch.bool else torch.int8), e.to(a.dtype if a.dtype != torch.bool else torch.int8)
        differ = a != e
        abs_diff = (a - e).abs().to(torch.float64)
        atol = 0.0  # compared exactly, whatever was asked: the message must not claim a tolerance
    else:
        a64, e64 = a.to(torch.complex128 if a.is_complex() else torch.float64), e.to(
            torch.complex128 if e.is_complex() else torch.float64
        )
        abs_diff = (a64 - e64).abs()
        nan_a, nan_e = torch.isnan(a64), torch.isnan(e64)
        both_nan = nan_a & nan_e if equal_nan else torch.zeros_like(nan_a)
        same_inf = torch.isinf(a64) & (a64 == e64)
        abs_diff = torch.where(both_nan | same_inf, torch.zeros_like(abs_diff), abs_diff)
        allowed = atol + rtol * e64.abs()
        differ = ~(abs_diff <= allowed)
        differ &= ~(both_nan | same_inf)
    count = int(differ.sum())
    if not count:
        return []
    total = differ.numel()
    flat_abs = torch.where(differ, abs_diff, torch.zeros_like(abs_diff)).reshape(-1)
    worst = int(torch.argmax(torch.nan_to_num(flat_abs, nan=float("inf"))))
    lines = [
        # torch.testing's own format: 100.0 * count / total rounds differently (23 / 80 -> 28.8%, not 28.7%)
        f"Mismatched elements: {count} / {total} ({count / total:.1%})",
        f"Greatest absolute difference: {_g(float(flat_abs[worst]))} at index "
        f"{_index(worst, actual.shape)} (up to {_g(atol)} allowed)",
    ]
    if a.is_floating_point() or a.is_complex():
        e_abs = e.to(torch.float64).abs().reshape(-1) if not e.is_complex() else e.abs().reshape(-1).to(torch.float64)
        relative = flat_abs / e_abs
        relative = torch.where(differ.reshape(-1), relative, torch.zeros_like(relative))
        worst_rel = int(torch.argmax(torch.nan_to_num(relative, nan=float("inf"))))
        lines.append(
            f"Greatest relative difference: {_g(float(relative[worst_rel]))} at index "
            f"{_index(worst_rel, actual.shape)} (up to {_g(rtol)} allowed)"
        )
    return lines


def _same_object(a: Any, b: Any) -> bool:
    if isinstance(a, torch.nn.Module) and isinstance(b, torch.nn.Module):
        # a submodule an output holds (the expert a router picked): each copy of the model has
        # its own, the same one where its type and weights are
        if a is b:
            return True
        mine, theirs = a.state_dict(), b.state_dict()
        return type(a) is type(b) and mine.keys() == theirs.keys() and all(
            _same_tensor(mine[key], theirs[key]) for key in mine
        )
    if isinstance(a, types.MethodType) and isinstance(b, types.MethodType):
        # a bound method of the model (partial(self.meta, c)): the same method of each copy's own
        return a.__func__ is b.__func__ and _same_object(a.__self__, b.__self__)
    if isinstance(a, types.FunctionType) and isinstance(b, types.FunctionType) and a is not b:
        # a closure made on each call (lambda z: self.meta(z, c)): the same code over the same values
        cells = (a.__closure__ or (), b.__closure__ or ())
        return a.__code__ is b.__code__ and len(cells[0]) == len(cells[1]) and all(
            _same_tensor(x.cell_contents, y.cell_contents) if isinstance(x.cell_contents, torch.Tensor)
            else _same_object(x.cell_contents, y.cell_contents)
            for x, y in zip(*cells)
        )
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _same_tensor(a: Any, b: Any) -> bool:
    return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and bool(
        torch.equal(a.detach().cpu(), b.detach().cpu())
    )


def tensor_bytes(value: torch.Tensor) -> bytes:
    """``value``'s elements as bytes, in order (as ``.numpy().tobytes()`` gives them, without
    numpy, which torch does not require): a key equal for equal tensors of one dtype."""
    # a fresh copy: a tensor of one element may keep any stride, which a view as bytes refuses
    flat = value.detach().cpu().flatten().clone(memory_format=torch.contiguous_format)
    try:
        return flat.numpy().tobytes()  # where numpy is installed: a hundred times faster
    except (RuntimeError, TypeError):  # "Numpy is not available", or a dtype numpy lacks (bfloat16)
        return bytes(flat.view(torch.uint8).tolist())
