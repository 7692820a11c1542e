"""``dyncheck audit``: the report on the terminal, as JSON valid against the documented
schema, and as an HTML page that renders in headless Chromium with the picture of the
paths; exit codes 0 / 1 / 4; progress lines.

Three audits run as subprocesses (as a user types them), each with a few examples and a
few invariants: one with a finding (threshold_off_by_one) beside a model with skipped
and repeated blocks (random_depth), one clean with a known bug (classifier's dead fc3),
and one with a bad option. Everything else reads their output.
"""

from __future__ import annotations

import dataclasses
import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dyncheck.audit import graph, report
from dyncheck.audit.json_report import schema
from dyncheck.audit.progress import Progress, interactive

ROOT = Path(__file__).resolve().parent.parent
DEPTH = "reference_models.random_depth:DynamicNet"
OFF_BY_ONE = "reference_models.buggy.threshold_off_by_one:Model"
CLASSIFIER = "reference_models.classifier:DynamicClassifier"


def audit(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "dyncheck", "audit", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def finding(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("audit")
    result = audit(
        folder, DEPTH, OFF_BY_ONE, "--examples", "10", "--invariants", "determinism,grad_isolation,coverage",
        "--seed", "3", "--json", "out.json", "--html", "out.html",
    )
    return result, folder


@pytest.fixture(scope="module")
def document(finding: Any) -> dict[str, Any]:
    return json.loads((finding[1] / "out.json").read_text())


@pytest.fixture(scope="module")
def known_bug(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("audit-known")
    result = audit(
        folder, CLASSIFIER, "--examples", "5", "--invariants", "finite,coverage", "--seed", "1",
        "--json", "out.json", "--html", "out.html", "--no-cost",
    )
    return result, folder


# --------------------------------------------------------------------------- exit codes


def test_a_finding_exits_1_and_a_known_bug_exits_0(finding, known_bug):
    assert finding[0].returncode == 1, finding[0].stdout + finding[0].stderr
    assert known_bug[0].returncode == 0, known_bug[0].stdout + known_bug[0].stderr
    assert "Traceback" not in finding[0].stderr + known_bug[0].stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--examples", "0"], "dyncheck audit: --examples=0 must be at least 1"),
        (["--examples", "ten"], "dyncheck audit: --examples='ten' must be a whole number, e.g. --examples=500"),
        (["--time-budget", "0"], "dyncheck audit: --time-budget=0 must be a positive duration in seconds (90, 90s, 1.5m or 2h), e.g. --time-budget=60"),
        (["--time-budget", "soon"], "dyncheck audit: --time-budget=soon must be a positive duration in seconds (90, 90s, 1.5m or 2h), e.g. --time-budget=60"),
        (["--seed", "-2"], "dyncheck audit: --seed=-2 must be at least 0"),
        (["--frobnicate"], "dyncheck audit: unrecognized arguments: --frobnicate; dyncheck audit --help lists the options"),
        ([DEPTH, "--json", "no/such/dir/out.json"], "dyncheck audit: --json no/such/dir/out.json: no directory {cwd}/no/such/dir; create it or write elsewhere"),
        (["nosuch_module_for_audit"], "dyncheck: cannot import 'nosuch_module_for_audit': no module named 'nosuch_module_for_audit' (searched the current directory and sys.path)"),
    ],
)
def test_usage_errors_are_one_line_and_exit_4(args, line, tmp_path, monkeypatch, capsys):
    from dyncheck.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    assert main(["audit", *args]) == 4
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [line.format(cwd=tmp_path)]
    assert captured.out == ""


def test_no_target_and_none_configured_is_a_usage_error(tmp_path):
    result = audit(tmp_path, "--examples", "2")
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        "ERROR: dyncheck audit: no target; name one (dyncheck audit module.path:Name) or list them in "
        'pyproject.toml: [tool.dyncheck] targets = ["module.path:Name"]'
    ]


def test_help_lists_the_options(capsys):
    from dyncheck.__main__ import main

    assert main(["audit", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--examples N", "--time-budget SECONDS", "--dyncheck-profile NAME", "--json PATH", "--html PATH"):
        assert flag in out
    assert "Exit code: 0 clean (known bugs declared with xfail do not count), 1 findings, 4 usage error." in out


# --------------------------------------------------------------------------- terminal


def test_terminal_report(finding):
    out = finding[0].stdout
    assert out.startswith("dyncheck audit  —  seed 3 (--dyncheck-seed=3), budget: 10 examples per check (--examples)\n")
    depth, off = out.split(f"\n{OFF_BY_ONE}  —  ")
    assert f"{DEPTH}  —  clean" in depth
    # the model and the spec used
    assert "  reference_models.random_depth.DynamicNet: 124 parameters (124 trainable), 3 leaf modules" in depth
    assert re.search(r"^    hidden_layer  Linear +42 +\d+$", depth, re.M)
    assert "    x (tensor): tensors(shape=('batch', 8))  — inferred: first consumed by input_layer" in depth
    # the census: the paths by what they run, with their cost
    assert re.search(r"^  \d  input_layer → hidden_layer ×3 → output_layer +\d+ +[\d.]+% +124 +360 FLOP/sample +[\d.]+ [µm]s$", depth, re.M)
    assert re.search(r"^  \d  input_layer → output_layer +\d+ +[\d.]+% +82 +144 FLOP/sample", depth, re.M)
    assert "Dead parameters: none" in depth and "Untaken source branches: none" in depth
    # the finding
    assert off.startswith("1 finding\n")
    # where the failure was found, then how many examples shrank it
    assert re.search(r"^  grad_isolation  failed +on example \d+(, shrunk in \d+ more)? +[\d.]+s  fc2 ran although its branch predicate `control > 0.5` does not hold", off, re.M)
    assert "    control (control): controls(as_tensor=True, thresholds=(0.5,))" in off
    assert "    branch fc2: runs exactly when lambda control: control > 0.5" in off
    assert re.search(r"^  fc2 \(lambda control: control > 0.5\): ran \d+, skipped \d+ — both ways$", off, re.M)
    assert "Findings\n  [1] grad_isolation: fc2 ran although its branch predicate `control > 0.5` does not hold for control=tensor([0.5]).\n" in off
    assert "      example:    x float32[1, 8] all zero, control=tensor([0.5]), seed=0\n" in off
    assert (
        f"      reproduce:  pytest --dyncheck {OFF_BY_ONE} --dyncheck-only --dyncheck-seed=3 "
        "--dyncheck-max-examples=10 -k grad_isolation\n"
    ) in off


def test_known_bug_and_dead_parameters(known_bug):
    out = known_bug[0].stdout
    assert f"{CLASSIFIER}  —  clean, 1 known bug" in out
    assert "  fc3 (Linear(in_features=50, out_features=10, bias=True)): 510 parameters never used — fc3.weight [10, 50], fc3.bias [10]" in out
    # the file as the coverage check shows it: relative to the current directory when inside it
    assert f"  {ROOT}/reference_models/classifier.py:46  if x.shape[1] > 40:  → never went on to line 49: x = torch.relu(self.fc3(x))" in out
    assert "  [1] coverage (known bug, declared with xfail): 510 of 6,070 parameters are dead" in out
    assert "  note: not measured (--no-cost)" in out


def test_progress_lines_when_not_a_terminal(finding):
    err = finding[0].stderr
    assert "\r" not in err and "\x1b[" not in err  # plain lines in a pipe
    lines = err.splitlines()
    assert f"auditing {DEPTH} (3 checks)" in lines
    assert f"auditing {OFF_BY_ONE} (3 checks)" in lines
    assert any(re.fullmatch(r"  determinism     passed  +10 examples +\d paths? +[\d.]+s", line) for line in lines), err
    # a failure: the example it was found on
    assert any(re.fullmatch(r"  grad_isolation  failed  +example \d+ +\d paths? +[\d.]+s  fc2 ran although .*", line) for line in lines), err
    assert lines[-2:] == ["dyncheck audit: JSON report written to out.json", "dyncheck audit: HTML report written to out.html"]


def test_live_progress_redraws_one_line(monkeypatch):
    class Item:
        invariant = type("I", (), {"name": "determinism"})()
        context = type("C", (), {"examples": 7, "paths": {("a",): 1, ("b",): 2}})()

    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.interval = 0.01
    progress.target("pkg:Net", 2)
    progress.start(Item(), 11)
    import time

    time.sleep(0.1)
    progress.finish("determinism", "passed", 9, 2, 1.25)
    text = stream.getvalue()
    assert "\r\x1b[2K  determinism  running     7 examples    2 paths    0." in text
    assert text.endswith("\r\x1b[2K  determinism  passed      9 examples    2 paths    1.2s\n")


def test_progress_is_plain_in_ci_and_off_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    assert interactive(Tty()) is True
    assert interactive(io.StringIO()) is False
    monkeypatch.setenv("CI", "true")
    assert interactive(Tty()) is False


# --------------------------------------------------------------------------- JSON


def validate(instance: Any, schema_part: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """The subset of JSON Schema (2020-12) that schema.json uses: type, const, enum,
    properties, required, additionalProperties, items, minimum, exclusiveMinimum, anyOf,
    $ref to #/$defs. Returns every problem found."""
    if "$ref" in schema_part:
        name = schema_part["$ref"].removeprefix("#/$defs/")
        return validate(instance, root["$defs"][name], root, where)
    if "anyOf" in schema_part:
        options = [validate(instance, option, root, where) for option in schema_part["anyOf"]]
        if any(not o for o in options):
            return []
        # The problems of the option of the instance's own type ("an object, or null").
        typed = [o for o in options if not (len(o) == 1 and o[0].startswith(f"{where}: ") and " is not of type " in o[0])]
        return typed[0] if typed else [f"{where}: matches none of anyOf"]
    problems: list[str] = []
    kinds = {
        "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
        "integer": int, "number": (int, float),
    }
    if "type" in schema_part:
        allowed = schema_part["type"] if isinstance(schema_part["type"], list) else [schema_part["type"]]
        ok = any(
            isinstance(instance, kinds[t]) and not (t in ("integer", "number") and isinstance(instance, bool))
            for t in allowed
        )
        if not ok:
            return [f"{where}: {instance!r} is not of type {allowed}"]
    if "const" in schema_part and instance != schema_part["const"]:
        problems.append(f"{where}: {instance!r} != {schema_part['const']!r}")
    if "enum" in schema_part and instance not in schema_part["enum"]:
        problems.append(f"{where}: {instance!r} not in {schema_part['enum']}")
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema_part and instance < schema_part["minimum"]:
            problems.append(f"{where}: {instance} < {schema_part['minimum']}")
        if "exclusiveMinimum" in schema_part and instance <= schema_part["exclusiveMinimum"]:
            problems.append(f"{where}: {instance} <= {schema_part['exclusiveMinimum']}")
    if isinstance(instance, dict):
        properties = schema_part.get("properties", {})
        for key in schema_part.get("required", []):
            if key not in instance:
                problems.append(f"{where}: missing {key!r}")
        extra = schema_part.get("additionalProperties", True)
        for key, value in instance.items():
            if key in properties:
                problems += validate(value, properties[key], root, f"{where}.{key}")
            elif extra is False:
                problems.append(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                problems += validate(value, extra, root, f"{where}.{key}")
    if isinstance(instance, list) and "items" in schema_part:
        for index, value in enumerate(instance):
            problems += validate(value, schema_part["items"], root, f"{where}[{index}]")
    return problems


def test_json_validates_against_the_schema(document, known_bug):
    root = schema()
    assert validate(document, root, root) == []
    assert validate(json.loads((known_bug[1] / "out.json").read_text()), root, root) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("schema_version"), "$: missing 'schema_version'"),
        (lambda d: d.update(extra=1), "$: unexpected key 'extra'"),
        (lambda d: d["targets"][0].update(verdict="fine"), "$.targets[0].verdict: 'fine' not in ['clean', 'findings']"),
        (lambda d: d["targets"][0]["census"]["paths"][0].update(calls="7"), "$.targets[0].census.paths[0].calls: '7' is not of type ['integer']"),
        (lambda d: d["targets"][0]["checks"][0].update(examples=-1), "$.targets[0].checks[0].examples: -1 < 0"),
    ],
)
def test_the_validator_rejects_what_the_schema_forbids(document, change, problem):
    broken = json.loads(json.dumps(document))
    change(broken)
    root = schema()
    assert problem in validate(broken, root, root)


def test_the_schema_names_every_field_of_the_report_model():
    root = schema()
    definitions = {
        report.AuditReport: root, report.Budget: root["$defs"]["budget"], report.TargetAudit: root["$defs"]["target"],
        report.Model: root["$defs"]["model"], report.Check: root["$defs"]["check"], report.PathCost: root["$defs"]["cost"],
        report.PathEntry: root["$defs"]["path"], report.Node: root["$defs"]["node"], report.Census: root["$defs"]["census"],
        report.Finding: root["$defs"]["finding"],
    }
    for cls, part in definitions.items():
        assert set(part["properties"]) == {f.name for f in dataclasses.fields(cls)}, cls.__name__
        assert set(part["required"]) == set(part["properties"]), cls.__name__
    assert set(root["$defs"]["transition"]["properties"]) == {"from", "to", "count", "paths"}


def test_json_content(document):
    assert document["schema_version"] == report.SCHEMA_VERSION == 1
    assert document["seed"] == 3 and document["exit_code"] == 1
    assert document["budget"] == {"examples": 10, "time_budget_seconds": None, "profile": None, "note": "10 examples per check (--examples)"}
    depth, off = document["targets"]
    assert [depth["target"], off["target"]] == [DEPTH, OFF_BY_ONE]
    assert [c["invariant"] for c in depth["checks"]] == ["determinism", "grad_isolation", "coverage"]
    # a failing check says which example first failed; the examples after it shrank it
    assert [c["failed_at"] for c in depth["checks"]] == [None, None, None]
    failing = next(c for c in off["checks"] if c["verdict"] == "failed")
    assert 1 <= failing["failed_at"] <= failing["examples"]
    census = depth["census"]
    # every call starts at the input and ends at the output; paths add up to the calls
    out_of = {t["from"]: 0 for t in census["transitions"]}
    into = {t["to"]: 0 for t in census["transitions"]}
    for t in census["transitions"]:
        out_of[t["from"]] += t["count"]
        into[t["to"]] += t["count"]
    assert out_of[report.START] == into[report.END] == census["calls"] == sum(p["calls"] for p in census["paths"])
    assert [n["module"] for n in census["nodes"]] == ["input_layer", "hidden_layer", "output_layer"]
    nodes = {n["module"]: n for n in census["nodes"]}
    assert nodes["input_layer"]["status"] == "always" and nodes["hidden_layer"]["status"] == "sometimes"
    assert nodes["hidden_layer"]["max_runs"] == 3
    loop = [t for t in census["transitions"] if t["from"] == t["to"] == "hidden_layer"]
    three = next(p for p in census["paths"] if p["modules"].count("hidden_layer") == 3)
    assert loop and loop[0]["count"] >= 2 * three["calls"]
    assert three["cost"]["flops"] > 0 and three["cost"]["forward_seconds"] > 0 and three["cost"]["measured_on"]
    [finding_] = off["findings"]
    assert finding_["modules"] == ["fc2"] and not finding_["known"]
    assert finding_["example"] == "x float32[1, 8] all zero, control=tensor([0.5]), seed=0"
    assert finding_["message"].startswith(f"grad_isolation violated by {OFF_BY_ONE}\n\nfc2 ran although")
    assert {n["module"]: n["in_finding"] for n in off["census"]["nodes"]} == {"fc1": False, "fc2": True, "fc3": False}
    assert off["census"]["declared_branches"][0]["both_ways"] is True


# --------------------------------------------------------------------------- HTML


def test_html_is_self_contained(finding):
    page = (finding[1] / "out.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    without_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://|<link|src=|@import|url\((?!#)", without_namespace)
    assert page.count('<svg class="paths"') == 2


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        if _in_ci():
            pytest.fail("CI=true but no chromium binary: .ci/run installs Debian's chromium package before make test")
        pytest.skip("no chromium binary (apt-get install chromium); CI runs this test")
    return binary


def render(binary: str, page: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the console lines Chromium logged."""
    result = subprocess.run(
        [binary, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return result.stdout, console


class _Elements(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.status = ""
        self._in_status = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.found.append((tag, values))
        self._in_status = values.get("id") == "dyncheck-status"

    def handle_data(self, data: str) -> None:
        if self._in_status:
            self.status += data
            self._in_status = False


def test_page_renders_in_chromium_with_the_picture(chromium, finding, document):
    dom, console = render(chromium, finding[1] / "out.html")
    assert console == []
    parser = _Elements()
    parser.feed(dom)
    assert parser.status.strip() == "rendered"
    status = next(a for t, a in parser.found if a.get("id") == "dyncheck-status")
    nodes = [a for t, a in parser.found if t == "g" and "node" in a.get("class", "").split()]
    edges = [a for t, a in parser.found if t == "g" and "edge" in a.get("class", "").split()]
    census = [t["census"] for t in document["targets"]]
    assert int(status["data-nodes"]) == len(nodes) == sum(len(c["nodes"]) for c in census)
    assert int(status["data-edges"]) == len(edges) == sum(len(c["transitions"]) for c in census)
    # the picture shows the census: each module with its calls, each transition with its count
    assert [(n["data-module"], int(n["data-calls"]), n["data-status"]) for n in nodes] == [
        (n["module"], n["calls"], n["status"]) for c in census for n in c["nodes"]
    ]
    assert sorted((e["data-from"], e["data-to"], int(e["data-count"])) for e in edges) == sorted(
        (t["from"], t["to"], t["count"]) for c in census for t in c["transitions"]
    )
    kinds = {(e["data-from"], e["data-to"]): e["class"] for e in edges}
    assert kinds[("hidden_layer", "hidden_layer")] == "edge edge-loop"  # the repeated block
    assert kinds[("input_layer", "output_layer")] == "edge edge-skip"  # the skipped block
    assert kinds[("input_layer", "hidden_layer")] == "edge edge-next"
    marked = [n["data-module"] for n in nodes if n["data-finding"] == "true"]
    assert marked == ["fc2"]


def test_dead_module_is_marked_in_the_picture(chromium, known_bug):
    dom, console = render(chromium, known_bug[1] / "out.html")
    assert console == []
    parser = _Elements()
    parser.feed(dom)
    nodes = {a["data-module"]: a for t, a in parser.found if t == "g" and "node" in a.get("class", "").split()}
    assert nodes["fc3"]["data-status"] == "dead" and "status-dead" in nodes["fc3"]["class"]
    assert nodes["fc3"]["data-calls"] == "0"
    assert any("legend" in a.get("class", "") for t, a in parser.found)


def test_the_browser_check_sees_a_broken_script(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><div id="dyncheck-status">loading</div>'
        "<script>window.addEventListener('error', function (e) {"
        " document.getElementById('dyncheck-status').textContent = 'error: ' + e.message; });"
        "notDefined();</script></body></html>"
    )
    dom, console = render(chromium, page)
    assert any("Uncaught ReferenceError: notDefined is not defined" in line for line in console)
    parser = _Elements()
    parser.feed(dom)
    assert parser.status.startswith("error: ")


# --------------------------------------------------------------------------- the picture's graph


def test_call_order_places_skipped_and_unrun_modules():
    paths = [(("a", "c"), 5), (("a", "b", "c"), 2), (("a", "b", "b", "c"), 1)]
    assert graph.call_order(paths, ["a", "b", "c", "d"]) == ["a", "b", "c", "d"]
    # registration order says nothing about call order: c registered first, runs last
    assert graph.call_order([(("a", "b", "c"), 1)], ["c", "b", "a"]) == ["a", "b", "c"]
    # a module no call ran sits after the one registered before it
    assert graph.call_order([(("a", "c"), 1)], ["a", "b", "c"]) == ["a", "b", "c"]
    # a loop (b then a again) does not undo the order of the first runs
    assert graph.call_order([(("a", "b", "a", "b"), 3)], ["b", "a"]) == ["a", "b"]


def test_transitions_count_steps_and_name_their_paths():
    steps = {(t.source, t.target): (t.count, t.paths) for t in graph.transitions([(("a", "c"), 5), (("a", "b", "b", "c"), 2)])}
    assert steps == {
        (report.START, "a"): (7, [0, 1]),
        ("a", "c"): (5, [0]),
        ("c", report.END): (7, [0, 1]),
        ("a", "b"): (2, [1]),
        ("b", "b"): (2, [1]),
        ("b", "c"): (2, [1]),
    }


def test_nodes_say_how_often_and_how_many_times_a_module_ran():
    nodes = graph.nodes(
        [(("a", "b", "b"), 3), (("a",), 1)],
        {"a": ("Linear", 10), "b": ("Linear", 4), "c": ("Linear", 6), "d": ("ReLU", 0)},
        ["a", "b", "c", "d"],
        dead={"c"},
        named={"b"},
    )
    assert [(n.module, n.calls, n.min_runs, n.max_runs, n.status, n.in_finding) for n in nodes] == [
        ("a", 4, 1, 1, "always", False),
        ("b", 3, 2, 2, "sometimes", True),
        ("c", 0, 0, 0, "dead", False),
        ("d", 0, 0, 0, "never", False),
    ]


class _LSTMTagger(__import__("torch").nn.Module):
    def __init__(self):
        import torch

        super().__init__()
        self.lstm = torch.nn.LSTM(5, 8, batch_first=True)
        self.tag = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.tag(self.lstm(x)[0])


def test_an_lstms_flops_are_counted_where_torchs_counter_has_no_formula():
    # torch runs an LSTM on a padded tensor in one fused kernel FlopCounterMode counts nothing for:
    # the path's cost was the Linear's alone
    import torch

    from dyncheck.audit.cost import _forward, measure
    from dyncheck.examples import Example
    from dyncheck.spec import Spec
    from dyncheck.target import resolve_spec

    target = resolve_spec(Spec(_LSTMTagger))
    model = target.build()
    example = Example({"x": torch.randn(2, 3, 5)}, 0, {"batch": 2})
    cost = measure(target, model, _forward(target, model, example), example)
    # the LSTM: 2 × 6 steps × 4 gates × 8 × (5 + 8), as torch counts a GRU's; the Linear: 2 × 6 × 8 × 3
    assert cost.flops == 2 * 6 * 4 * 8 * 13 + 2 * 6 * 8 * 3 and cost.flops_per_sample == cost.flops / 2


def test_an_unbatched_or_keyword_lstm_call_counts_its_steps():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dyncheck.audit.cost import _uncounted_recurrences

    lstm = torch.nn.LSTM(5, 8)
    # one sequence of 3 steps, unbatched; 3 steps of 2 sequences, given by keyword
    calls = [(lambda: lstm(torch.randn(3, 5)), 3), (lambda: lstm(input=torch.randn(3, 2, 5)), 6)]
    for call, steps in calls:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter, _uncounted_recurrences(lstm, counter) as found:
            call()
        assert found == [2 * steps * 4 * 8 * 13]


def test_a_long_strategy_is_shown_on_one_line_not_by_its_type():
    # A dict of seven entries (pytorch-forecasting's batch): Hypothesis wraps its repr over
    # several lines, and the audit's inputs line read "LazyStrategy".
    from hypothesis import strategies as st

    import dyncheck.strategies as dst
    from dyncheck.audit.build import _python

    entries = {f"entry_{i}": dst.tensors(shape=("batch", "time", 3), min_value=-5.0, max_value=5.0) for i in range(7)}
    strategy = st.fixed_dictionaries(entries)
    assert "\n" in repr(strategy)
    shown = _python(strategy)
    assert shown.startswith("fixed_dictionaries({'entry_0': tensors(") and shown.endswith(")})")
    assert "\n" not in shown and eval(shown, {**vars(st), **vars(dst)}) is not None
