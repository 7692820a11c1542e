"""The audit report as JSON: the report model's fields as keys (``docs/audit.md``), checked
by ``schema.json`` (JSON Schema, draft 2020-12) shipped beside this module."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from dyncheck.audit.report import AuditReport, as_dict

__all__ = ["render", "schema"]


def render(report: AuditReport) -> str:
    """One JSON document; ``targets`` holds one object per target."""
    return json.dumps(as_dict(report), indent=2, ensure_ascii=False) + "\n"


def schema() -> dict[str, Any]:
    """The JSON Schema the document follows."""
    return json.loads(resources.files("dyncheck.audit").joinpath("schema.json").read_text(encoding="utf-8"))
