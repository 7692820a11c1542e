"""How an old model's state becomes a new model's, and which modules correspond.

A refactor renames layers (``fc1`` -> ``encoder``) or restructures them (three projections
concatenated into one ``qkv``). ``Spec(state_map=...)`` says how: a dict of old names (a
parameter or a whole module) to new names, or a callable ``old_state_dict -> new_state_dict``.

:class:`StateMapping` applies it once to the old state, with the old floating tensors as
autograd leaves, so that

* the new model loads the result (every key matched, every shape right, or a one-line
  error naming the keys and the fix);
* each new key's **provenance** (the old keys it was computed from) is known, which gives
  the module correspondence (:class:`Correspondence`) used to compare paths and to name the
  first diverging module in both models' words;
* the new model's gradients are **mapped back to the old parameters** by the chain rule
  (a vector-Jacobian product through the mapping): if the new model computes the old
  function of the mapped weights, ``d loss / d old`` is the same on both sides, whatever
  the mapping does (renaming, concatenating, stacking, transposing).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch.nn.parameter import is_lazy

from dyncheck.errors import TargetError, one_line

__all__ = ["Correspondence", "StateMapping", "module_of"]


def module_of(key: str) -> str:
    """``encoder.layers.0.weight`` -> ``encoder.layers.0``; a top-level key -> ``""``."""
    return key.rpartition(".")[0]


def _shape(tensor: torch.Tensor) -> str:
    return f"[{', '.join(map(str, tensor.shape))}]"


def _names(keys: Iterable[str], limit: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


class StateMapping:
    """An old state mapped into a new model's names (see the module docstring).

    ``label`` starts every error message (``--dyncheck-against=git:main for mymod:Net``).
    """

    def __init__(
        self,
        state_map: Any,
        old_state: Mapping[str, torch.Tensor],
        new_state: Mapping[str, torch.Tensor],
        label: str,
        parameters: Iterable[str] = (),
    ) -> None:
        self.label = label
        self.old_keys = list(old_state)
        self.leaves: dict[str, torch.Tensor] = {}
        for key, tensor in old_state.items():
            leaf = tensor.detach().clone()
            if leaf.is_floating_point() or leaf.is_complex():
                leaf.requires_grad_(True)
            self.leaves[key] = leaf
        self.by_callable = callable(state_map)
        with torch.enable_grad():
            if state_map is None:
                self.mapped = dict(self.leaves)
                self.provenance = {key: (key,) for key in self.leaves}
            elif callable(state_map):
                self.mapped = self._call(state_map)
                self.provenance = self._trace_provenance()
            else:
                self.mapped, self.provenance = self._rename(dict(state_map))
        self._check_loads(new_state)
        if callable(state_map):
            self._check_connected(state_map, parameters)
        #: old keys no new key is computed from (a mapping that dropped or mis-mapped them)
        used = {old for sources in self.provenance.values() for old in sources}
        self.unused = [key for key in self.old_keys if key not in used]

    # ------------------------------------------------------------------ applying

    def _rename(self, table: dict[str, str | None]) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        modules = {module_of(k) for k in self.old_keys}
        prefixes = {p for m in modules for p in _prefixes(m)}
        for entry in table:
            if entry not in self.leaves and entry not in prefixes:
                close = difflib.get_close_matches(entry, sorted(set(self.old_keys) | prefixes), n=2)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise TargetError(
                    f"{self.label}: Spec(state_map=...) names {entry!r}, which the old model's state_dict "
                    f"has neither as a key nor as a module{hint}"
                )
        mapped: dict[str, torch.Tensor] = {}
        provenance: dict[str, tuple[str, ...]] = {}
        for key, leaf in self.leaves.items():
            new = _renamed(key, table)
            if new is None:
                continue
            if new in mapped:
                raise TargetError(
                    f"{self.label}: Spec(state_map=...) maps both {provenance[new][0]!r} and {key!r} to {new!r}; "
                    "each new key takes one old key (use a callable state_map to combine several)"
                )
            mapped[new] = leaf
            provenance[new] = (key,)
        return mapped, provenance

    def _call(self, function: Callable[[dict], Any]) -> dict[str, torch.Tensor]:
        name = getattr(function, "__name__", type(function).__name__)
        try:
            result = function(dict(self.leaves))
        except Exception as exc:
            raise TargetError(
                f"{self.label}: Spec(state_map={name}) raised {type(exc).__name__}: {one_line(exc)} on the old "
                f"model's state_dict (its keys: {_names(self.old_keys)})"
            ) from None
        if not isinstance(result, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in result.items()
        ):
            raise TargetError(
                f"{self.label}: Spec(state_map={name}) returned {type(result).__name__}, not a dict of new "
                "names to tensors (the new model's state_dict)"
            )
        return dict(result)

    def _trace_provenance(self) -> dict[str, tuple[str, ...]]:
        """new key -> the old keys it is computed from: through autograd for floating
        tensors, by identity (a tensor passed on as it is) for the others."""
        order = {key: index for index, key in enumerate(self.old_keys)}
        floating = [(k, v) for k, v in self.leaves.items() if v.requires_grad]
        provenance = {}
        for new, tensor in self.mapped.items():
            sources = [k for k, v in self.leaves.items() if v is tensor]
            if tensor.requires_grad and floating and not sources:
                grads = torch.autograd.grad(
                    tensor.sum() if not tensor.is_complex() else tensor.real.sum(),
                    [v for _, v in floating],
                    retain_graph=True,
                    allow_unused=True,
                )
                sources = [k for (k, _), g in zip(floating, grads) if g is not None]
            elif not sources:
                sources = [k for k, v in self.leaves.items() if _same_storage(v, tensor)]
            provenance[new] = tuple(sorted(sources, key=order.__getitem__))
        return provenance

    def _check_connected(self, function: Any, parameters: Iterable[str]) -> None:
        """Every floating parameter of the new model must be computed from old tensors with
        torch operations: its gradient is mapped back through them."""
        loose = [
            key for key in parameters
            if key in self.mapped and self.mapped[key].is_floating_point() and not self.mapped[key].requires_grad
        ]
        if loose:
            name = getattr(function, "__name__", type(function).__name__)
            raise TargetError(
                f"{self.label}: Spec(state_map={name}) gives the new model's {_names(loose)} a value computed from "
                "none of the old tensors (a constant, or cut off with .data, .detach(), .numpy() or torch.no_grad()), "
                "so its gradient cannot be mapped back; compute it from the old state_dict with torch operations "
                "(torch.cat, torch.stack, reshape, transpose)"
            )

    def _check_loads(self, new_state: Mapping[str, torch.Tensor]) -> None:
        # a lazy layer no recorded example reached has no weights to be given (nn.LazyLinear)
        missing = [k for k in new_state if k not in self.mapped and not is_lazy(new_state[k])]
        unexpected = [k for k in self.mapped if k not in new_state]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"the new model's {_names(missing)} get no value")
            if unexpected:
                parts.append(f"{_names(unexpected)} from the old state_dict have no place in the new model")
            raise TargetError(f"{self.label}: the old weights do not load into the new model: {'; '.join(parts)}; "
                              + self._suggestion(missing, unexpected, new_state))
        for key, tensor in self.mapped.items():
            target = new_state[key]
            if not is_lazy(target) and tensor.shape != target.shape:
                sources = ", ".join(self.provenance.get(key, ())) or "the mapping"
                raise TargetError(
                    f"{self.label}: the old weights do not load into the new model: {key} is {_shape(target)} "
                    f"in the new model but {_shape(tensor)} from {sources}; map it to a key of that shape "
                    "(Spec(state_map=...)), or reshape it in a callable state_map"
                )

    def _suggestion(self, missing: list[str], unexpected: list[str], new_state: Mapping[str, torch.Tensor]) -> str:
        """A state_map that would pair the unmatched keys: old and new keys of one shape, in
        order, folded to whole modules where every key of the module moves alike."""
        pairs: dict[str, str] = {}
        free = list(missing)
        for key in unexpected:
            source = self.provenance.get(key, (key,))
            if len(source) != 1:
                continue
            shape = self.mapped[key].shape
            leaf = key.rpartition(".")[2]
            match = next((m for m in free if new_state[m].shape == shape and m.rpartition(".")[2] == leaf), None)
            if match is not None:
                free.remove(match)
                pairs[source[0]] = match
        if not pairs or self.by_callable:
            return "map them with Spec(state_map={old name: new name}) or a callable old_state_dict -> new_state_dict"
        folded: dict[str, str] = {}
        for old, new in pairs.items():
            old_module, new_module = module_of(old), module_of(new)
            together = [o for o in pairs if module_of(o) == old_module]
            whole = [k for k in self.old_keys if module_of(k) == old_module]
            if old_module and new_module and sorted(together) == sorted(whole) and all(
                module_of(pairs[o]) == new_module for o in together
            ):
                folded[old_module] = new_module
            else:
                folded[old] = new
        return f"if they were renamed, say so with Spec(state_map={folded!r})"

    # ------------------------------------------------------------------ using

    def values(self) -> dict[str, torch.Tensor]:
        """The new model's state_dict, to load."""
        return {key: tensor.detach() for key, tensor in self.mapped.items()}

    def grads_back(self, grads: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The new model's parameter gradients as gradients of the old parameters: the
        vector-Jacobian product through the mapping (the chain rule)."""
        outputs, grad_outputs = [], []
        for key, grad in grads.items():
            tensor = self.mapped.get(key)
            if tensor is None or not tensor.requires_grad:
                continue
            outputs.append(tensor)
            grad_outputs.append(grad.to(device=tensor.device, dtype=tensor.dtype))
        inputs = [(k, v) for k, v in self.leaves.items() if v.requires_grad]
        if not outputs or not inputs:
            return {}
        found = torch.autograd.grad(
            outputs, [v for _, v in inputs], grad_outputs, retain_graph=True, allow_unused=True
        )
        return {key: grad.detach() for (key, _), grad in zip(inputs, found) if grad is not None}

    def news_of(self, old_key: str) -> list[str]:
        """The new keys computed from ``old_key``."""
        return [new for new, sources in self.provenance.items() if old_key in sources]


def _prefixes(module: str) -> list[str]:
    parts = module.split(".") if module else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _renamed(key: str, table: Mapping[str, str | None]) -> str | None:
    """``key`` renamed by the most specific entry of ``table``: the key itself, else its
    longest module prefix; keys no entry names keep their name."""
    if key in table:
        return table[key]
    for prefix in sorted(_prefixes(module_of(key)), key=len, reverse=True):
        if prefix in table:
            new = table[prefix]
            if new is None:
                return None
            rest = key[len(prefix):]
            return f"{new}{rest}" if new else rest.lstrip(".")
    return key


def _block_offset(whole: torch.Tensor, part: torch.Tensor) -> int | None:
    """Where ``part`` stands in ``whole`` along the first axis (concatenated, or stacked)."""
    if whole.dim() == part.dim() and whole.shape[1:] == part.shape[1:]:
        rows = part.shape[0] if part.dim() else 1
        for start in range(0, whole.shape[0] - rows + 1):
            if torch.equal(whole[start:start + rows], part):
                return start
    elif whole.dim() == part.dim() + 1 and whole.shape[1:] == part.shape:
        for index in range(whole.shape[0]):
            if torch.equal(whole[index], part):
                return index
    return None


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() and a.numel() > 0
    except (RuntimeError, NotImplementedError):
        return False


class Correspondence:
    """Which modules of the old model become which of the new one.

    Modules are linked through the mapping's provenance (a new module's weights computed
    from an old module's); each connected set is a group. A module with no state of its
    own corresponds to the module of the same name on the other side, when both have it
    and neither is in a group. A group of one module on each side is a 1:1 rename; one
    with more on a side (``q``, ``k``, ``v`` fused into ``qkv``; a loop of experts stacked
    into one batched module) is a restructuring.
    """

    def __init__(
        self,
        provenance: Mapping[str, tuple[str, ...]],
        old_modules: Iterable[str],
        new_modules: Iterable[str],
        unused: Iterable[str] = (),
    ) -> None:
        parent: dict[tuple[str, str], tuple[str, str]] = {}

        def find(node: tuple[str, str]) -> tuple[str, str]:
            parent.setdefault(node, node)
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        for new_key, sources in provenance.items():
            new_module = module_of(new_key)
            if not new_module:
                continue
            find(("new", new_module))
            for old_key in sources:
                old_module = module_of(old_key)
                if old_module:
                    parent[find(("old", old_module))] = find(("new", new_module))
        groups: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        for node in list(parent):
            side, name = node
            entry = groups.setdefault(find(node), ([], []))
            (entry[0] if side == "old" else entry[1]).append(name)
        old_modules, new_modules = list(old_modules), list(new_modules)
        old_order = {name: index for index, name in enumerate(old_modules)}
        new_order = {name: index for index, name in enumerate(new_modules)}
        self.old: dict[str, int] = {}
        self.new: dict[str, int] = {}
        self.groups: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        for old_names, new_names in groups.values():
            if not old_names or not new_names:
                continue
            gid = len(self.groups)
            self.groups.append((
                tuple(sorted(old_names, key=lambda n: (old_order.get(n, len(old_order)), n))),
                tuple(sorted(new_names, key=lambda n: (new_order.get(n, len(new_order)), n))),
            ))
            for name in old_names:
                self.old[name] = gid
            for name in new_names:
                self.new[name] = gid
        #: old modules whose state the mapping took nothing from (mis-mapped or dropped)
        self.orphans = frozenset(
            module_of(k) for k in unused if module_of(k) and ("old", module_of(k)) not in parent
        )
        linked = set(parent)
        old_set = set(old_modules)
        for name in new_modules:
            if name and name in old_set and ("new", name) not in linked and ("old", name) not in linked:
                gid = len(self.groups)
                self.groups.append(((name,), (name,)))
                self.old[name] = gid
                self.new[name] = gid

    def fused_order(self, gid: int, mapping: StateMapping, old: dict[str, torch.Tensor]) -> tuple[str, ...] | None:
        """For old modules fused into one new module: the old modules in the order their
        weights stand in the new weight (``torch.cat([q, k, v])`` -> q, k, v), read from
        the mapped values; None when it cannot be told (then the call order is used)."""
        olds, news = self.groups[gid]
        if len(news) != 1 or len(olds) < 2:
            return None
        for key, sources in mapping.provenance.items():
            if module_of(key) != news[0] or len(sources) < 2:
                continue
            whole = mapping.mapped[key].detach()
            offsets: dict[str, int] = {}
            for source in sources:
                part = old[source].detach()
                offset = _block_offset(whole, part)
                if offset is None:
                    return None
                offsets.setdefault(module_of(source), offset)
            if set(offsets) == set(olds):
                return tuple(sorted(offsets, key=offsets.__getitem__))
        return None

    def restructured(self, gid: int) -> bool:
        old, new = self.groups[gid]
        return len(old) > 1 or len(new) > 1

    def canonical(self, path: Iterable[str], side: str) -> tuple[int, ...]:
        """A path as group ids, comparable across the two models: modules with no
        counterpart are left out, and consecutive calls within a restructured group count
        as one visit (a loop over experts and one batched call are the same step)."""
        table = self.old if side == "old" else self.new
        out: list[int] = []
        for name in path:
            gid = table.get(name)
            if gid is None:
                continue
            if out and out[-1] == gid and self.restructured(gid):
                continue
            out.append(gid)
        return tuple(out)

    def new_label(self, name: str) -> str:
        """``gated (old fc2)``, ``qkv (old q, k, v)``, or the name when it did not change."""
        gid = self.new.get(name)
        if gid is None:
            return name
        old, _ = self.groups[gid]
        return name if old == (name,) else f"{name} (old {', '.join(old)})"

    def old_label(self, name: str) -> str:
        gid = self.old.get(name)
        if gid is None:
            return name
        _, new = self.groups[gid]
        return name if new == (name,) else f"{name} (now {', '.join(new)})"

    def group_label(self, gid: int, side: str = "new") -> str:
        old, new = self.groups[gid]
        if side == "new":
            return self.new_label(new[0]) if len(new) == 1 else f"{', '.join(new)} (old {', '.join(old)})"
        return self.old_label(old[0]) if len(old) == 1 else f"{', '.join(old)} (now {', '.join(new)})"
