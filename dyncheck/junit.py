"""The properties a dyncheck item carries into JUnit XML (``--junitxml``).

Each check keeps its summary record in ``user_properties`` as one dict (it travels from
xdist workers that way); JUnit XML would write that dict's repr. For the XML it becomes
one ``<property>`` per fact, which CI dashboards read as key/value pairs::

    <property name="dyncheck.target" value="reference_models.gated:DynamicNet"/>
    <property name="dyncheck.invariant" value="grad_isolation"/>
    <property name="dyncheck.examples" value="100"/>
    <property name="dyncheck.paths" value="2"/>
    <property name="dyncheck.path" value="fc1 → fc3 (73 calls)"/>
"""

from __future__ import annotations

from typing import Any

__all__ = ["flatten"]


def flatten(nodeid: str, properties: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``properties`` with the dyncheck record replaced by flat ``dyncheck.*`` pairs;
    the target and invariant are there for every item, also one skipped before it ran."""
    if any(name == "dyncheck.target" for name, _ in properties):
        return list(properties)  # already flat (an xdist worker did it before sending)
    target, _, invariant = nodeid[len("dyncheck::"):].rpartition("::")
    flat: list[tuple[str, Any]] = [("dyncheck.target", target), ("dyncheck.invariant", invariant)]
    others: list[tuple[str, Any]] = []
    for name, value in properties:
        if name != "dyncheck" or not isinstance(value, dict):
            others.append((name, value))
            continue
        paths = _described(value)
        flat.append(("dyncheck.examples", value.get("examples", 0)))
        flat.append(("dyncheck.paths", len(paths)))
        flat.extend(("dyncheck.path", f"{path} ({count:,} call{'s' if count != 1 else ''})") for path, count in paths)
        if value.get("finding"):
            flat.append(("dyncheck.finding", value["finding"]))
    return flat + others


def _described(record: dict[str, Any]) -> list[tuple[str, int]]:
    """The record's paths (module names and calls) described as the summary describes
    them, commonest first."""
    from dyncheck.paths import Layout, PathSet

    raw = [(tuple(path), count) for path, count in record.get("paths") or ()]
    if not raw:
        return []
    modules = record.get("modules")
    layout = Layout(tuple(modules), lists=frozenset(record.get("lists") or ())) if modules else None
    texts = PathSet([path for path, _ in raw], layout).describe_all()
    return sorted(((texts[path], count) for path, count in raw), key=lambda item: (-item[1], item[0]))
