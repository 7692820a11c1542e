"""``python -m dyncheck``: targets expanded and read as users type them, everything else
passed to pytest unchanged; user errors one line on stderr with exit code 4, never a
traceback; otherwise pytest's exit code.

Runs are subprocesses in a temporary directory holding small model modules, with the
repository root on PYTHONPATH; only one runs examples (3 per check, one invariant). How
arguments are split and passed on is tested in-process, with expansion stubbed out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import dyncheck.__main__ as cli
from dyncheck.__main__ import _arguments, _as_module_path, _split, _UsageError, usage

ROOT = Path(__file__).resolve().parent.parent
USAGE_ERROR = 4

NET = """
class Net(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.fc = nn.Linear(input_size, 2)

    def forward(self, x):
        return torch.tanh(self.fc(x))
"""

# A helper block: `mask` reaches no layer, so it cannot be checked without a Spec.
BLOCK = """
class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x, mask):
        return self.fc(x).masked_fill(mask, 0.0)
"""

NAN = """
class NaNNet(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.fc = nn.Linear(input_size, 2)

    def forward(self, x):
        return self.fc(x) * float("nan")
"""

HEADER = "import torch\nfrom torch import nn\n"

FILES = {
    "pkg/__init__.py": "",
    "pkg/models.py": HEADER + NET + BLOCK,
    "pkg/nan.py": HEADER + NAN,
    "convnet.py": HEADER + NET.replace("Net", "Model"),
    "blocks.py": HEADER + BLOCK,
    "helpers.py": "SIZE = 3\n",
    "given.py": HEADER + NET + (
        "import dyncheck\nfrom hypothesis import strategies as st\n\n"
        "spec = dyncheck.Spec(Net, init={'input_size': 3}, inputs={'x': dyncheck.strategies.tensors(shape=('batch', 3))})\n"
    ),
    "broken.py": '"""Raises on import."""\n\nSCALE = 1 / 0\n',
    "needs_dep.py": "import nosuchdep_for_dyncheck_tests\n",
    "badpkg/__init__.py": "",
    "badpkg/bad.py": 'raise RuntimeError("cannot load weights\\nsecond line")\n',
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def dyncheck(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "dyncheck", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )


def stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def one_line_usage_error(workdir: Path, *args: str) -> str:
    result = dyncheck(workdir, *args)
    lines = stderr_lines(result)
    assert result.returncode == USAGE_ERROR, result.stdout + result.stderr
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


# --------------------------------------------------------------------------- 1: bad modules


def case(*args: str, line: str, id: str) -> object:
    return pytest.param(list(args), line, id=id)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        case("broken", id="raises-on-import", line=(
            "dyncheck: importing 'broken' failed at broken.py:3: ZeroDivisionError: division by zero"
        )),
        case("nosuch_module", id="not-found", line=(
            "dyncheck: cannot import 'nosuch_module': no module named 'nosuch_module' "
            "(searched the current directory and sys.path)"
        )),
        case("needs_dep", id="missing-dependency", line=(
            "dyncheck: importing 'needs_dep' failed at needs_dep.py:1: ModuleNotFoundError: "
            "No module named 'nosuchdep_for_dyncheck_tests'"
        )),
        case("badpkg", id="package-module-raises", line=(
            "dyncheck: importing 'badpkg.bad' failed at badpkg/bad.py:1: RuntimeError: cannot load weights …"
        )),
        case("helpers", id="no-model", line=(
            "dyncheck: 'helpers' defines no nn.Module subclass or dyncheck.Spec at top level; "
            "name a model (or a factory) with helpers:Name"
        )),
        case("my-models", id="not-a-name", line=(
            "dyncheck: 'my-models' is not a module name; a TARGET is module.path:Name, "
            "module.path or path/to/file.py"
        )),
        # An option dyncheck does not know to take a value: the hint says how to write it.
        case("--some-plugin-option", "out.txt", "pkg", id="unknown-option-value", line=(
            "dyncheck: cannot import 'out.txt': no module named 'out' (searched the current directory "
            "and sys.path); if it is the value of --some-plugin-option, write --some-plugin-option=out.txt"
        )),
        case("../elsewhere.py", id="outside-cwd", line=(
            "dyncheck: ../elsewhere.py is not inside the current directory; run "
            "python -m dyncheck from the directory its modules are imported from"
        )),
    ],
)
def test_a_module_that_cannot_be_used_is_one_line(workdir, args, line):
    assert one_line_usage_error(workdir, *args) == line


def test_resolving_before_pytest_loads_hypothesis_draws_nothing(workdir):
    # python -m dyncheck resolves its targets before pytest loads Hypothesis's plugin: a
    # strategy drawn there (the done flags' layout probe did) makes Hypothesis warn
    result = dyncheck(workdir, "reference_models.episode_lstm", "--co", "-q")  # a module: resolved first
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HypothesisSideeffectWarning" not in result.stdout + result.stderr


def test_every_module_that_cannot_be_used_is_said_at_once(monkeypatch, tmp_path):
    """Several bad arguments, or a package with several bad modules: one line each, in the
    order given, so the first does not hide the others (a fix, a rerun, the next error)."""
    (tmp_path / "first_bad.py").write_text("SCALE = 1 / 0\n")
    (tmp_path / "twobad").mkdir()
    (tmp_path / "twobad" / "__init__.py").write_text("")
    (tmp_path / "twobad" / "a.py").write_text("raise RuntimeError('no weights')\n")
    (tmp_path / "twobad" / "b.py").write_text("import nosuchdep_for_dyncheck_tests\n")
    (tmp_path / "twobad" / "good.py").write_text(HEADER + NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_UsageError) as raised:
        cli._arguments(["first_bad", "-q", "nosuch_module_at_all", "twobad"])
    lines = str(raised.value).splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "importing 'first_bad' failed at first_bad.py",
        "cannot import 'nosuch_module_at_all'",
        "importing 'twobad.a' failed at twobad/a.py",
        "importing 'twobad.b' failed at twobad/b.py",
    ], lines
    assert all(line.startswith("dyncheck: ") for line in lines)


# --------------------------------------------------------------------------- 2: usage


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_our_usage_and_dyncheck_options(workdir, flag):
    # A target before it is not imported: help never fails on the user's code.
    result = dyncheck(workdir, "broken", flag)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == usage()
    assert result.stdout.startswith("usage: python -m dyncheck TARGET [TARGET ...] [options]\n")
    for text in (
        "module.path:Name",
        "python -m dyncheck reference_models\n",
        "python -m dyncheck mypkg.models:Net -n 2 --dyncheck-seed=1\n",
        "--dyncheck-seed SEED",
        "--dyncheck-explain ",
        "python -m pytest --help",
    ):
        assert text in result.stdout


def test_no_arguments_prints_usage_and_is_a_usage_error(workdir):
    result = dyncheck(workdir)
    assert result.returncode == USAGE_ERROR
    assert result.stdout == ""
    assert result.stderr == usage(options=False)
    assert "no tests ran" not in result.stderr


# --------------------------------------------------------------------------- 3-6: targets, options, exit code


def test_paths_read_as_modules_unconfigurable_classes_skipped_and_pytests_exit_code(workdir):
    result = dyncheck(
        workdir, "pkg/models.py", "convnet.py:Model", "pkg.nan", "-n", "0", "--dyncheck-seed", "7",
        "-k", "finite", "--dyncheck-max-examples", "3", "--maxfail", "5", "-rA",
    )
    assert result.returncode == 1, result.stdout + result.stderr  # NaNNet fails: pytest's code
    lines = stderr_lines(result)
    assert lines[:2] == [
        "dyncheck: reading pkg/models.py as pkg.models",
        "dyncheck: reading convnet.py:Model as convnet:Model",
    ]
    assert lines[2].startswith("dyncheck: skipping pkg.models:Block — cannot infer forward argument 'mask'")
    assert "dyncheck.Spec(" in lines[2]
    assert len(lines) == 3, result.stderr
    assert "dyncheck: 3 targets, seed 7 (reproduce with --dyncheck-seed=7)" in result.stdout
    # -k's value is not a target: only the finite checks ran.
    outcomes = sorted(line for line in result.stdout.splitlines() if line.startswith(("PASSED", "FAILED")))
    assert [line.split(" - ")[0] for line in outcomes] == [
        "FAILED dyncheck::pkg.nan:NaNNet::finite",
        "PASSED dyncheck::convnet:Model::finite",
        "PASSED dyncheck::pkg.models:Net::finite",
    ], result.stdout
    assert "Block" not in result.stdout


def test_a_specs_own_strategy_is_checked_without_hypothesis_warning_of_it(workdir):
    # Resolution validates the strategies a Spec gives (a mistake is one line), before
    # Hypothesis's pytest plugin has loaded: Hypothesis warned of "slow code in plugin".
    result = dyncheck(workdir, "given", "-k", "finite", "--dyncheck-max-examples", "2", "-p", "no:xdist")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HypothesisSideeffectWarning" not in result.stdout + result.stderr


def test_an_explicit_target_is_never_skipped(workdir):
    result = dyncheck(workdir, "pkg.models:Block", "--co")
    lines = stderr_lines(result)
    assert result.returncode == USAGE_ERROR
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ERROR: --dyncheck pkg.models:Block: cannot infer forward argument 'mask'")


def test_a_model_named_beside_its_module_is_not_skipped_first(workdir):
    # The module's expansion does not note it as skipped before the error for it.
    for arguments in (("pkg.models", "pkg.models:Block"), ("pkg.models", "--dyncheck", "pkg.models:Block")):
        result = dyncheck(workdir, *arguments, "--co")
        lines = stderr_lines(result)
        assert result.returncode == USAGE_ERROR, result.stdout + result.stderr
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("ERROR: --dyncheck pkg.models:Block: cannot infer forward argument 'mask'")


def test_nothing_left_after_skipping_is_a_usage_error(workdir):
    result = dyncheck(workdir, "blocks")
    lines = stderr_lines(result)
    assert result.returncode == USAGE_ERROR
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("dyncheck: skipping blocks:Block — cannot infer forward argument 'mask'")
    assert lines[1] == (
        "dyncheck: nothing left to check: every model found was skipped (see above); "
        "check one with module:Name and a dyncheck.Spec"
    )


# --------------------------------------------------------------------------- arguments, in-process


@pytest.mark.parametrize(
    ("argv", "targets"),
    [
        (["reference_models", "-n", "2"], ["reference_models"]),
        (["-n", "auto", "m"], ["m"]),
        (["m", "-k", "finite", "-m", "dyncheck", "-p", "xdist", "-W", "error", "-c", "setup.cfg"], ["m"]),
        (["m", "--dyncheck-seed", "1", "--dyncheck-max-examples", "3", "--dyncheck-invariants", "finite"], ["m"]),
        (["m", "--hypothesis-seed", "3", "--hypothesis-profile", "ci", "-o", "x=y"], ["m"]),
        (["m", "--rootdir", "here", "--maxfail", "1", "--tb", "short", "-r", "fE"], ["m"]),
        (["m", "--dyncheck", "a:B", "other"], ["m", "other"]),
        (["m", "--dyncheck-seed=1", "n", "-n2", "o", "-x", "p"], ["m", "n", "o", "p"]),
        (["m", "5", "1.5", "-x"], ["m"]),  # a number is never a target
        (["m", "tests/test_x.py::test_a"], ["m"]),  # a pytest node id
        (["m", "--", "n"], ["m"]),
    ],
)
def test_option_values_are_not_targets(argv, targets):
    found, passed, wants_help = _split(argv)
    assert [argument for _, argument in found] == targets
    assert [argument for argument in argv if argument not in targets] == passed
    assert not wants_help


def test_help_is_an_option_not_an_option_value():
    assert _split(["m", "-h"])[2]
    assert _split(["--help"])[2]
    assert not _split(["-k", "-h"])[2]


@pytest.mark.parametrize(
    ("argument", "module"),
    [
        ("convnet.py:Model", "convnet:Model"),
        ("convnet.py", "convnet"),
        ("pkg/models.py:Net", "pkg.models:Net"),
        ("pkg/models.py", "pkg.models"),
        ("./pkg/models.py", "pkg.models"),
        ("pkg/", "pkg"),
        ("pkg/__init__.py", "pkg"),
        ("pkg/models.py:Spec.inner", "pkg.models:Spec.inner"),
        ("pkg.models:Net", "pkg.models:Net"),
        ("pkg.models", "pkg.models"),
    ],
)
def test_paths_become_module_names(argument, module):
    assert _as_module_path(argument) == module


def test_an_absolute_path_inside_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert _as_module_path(f"{tmp_path}/pkg/models.py:Net") == "pkg.models:Net"
    with pytest.raises(_UsageError, match="is not inside the current directory"):
        _as_module_path(f"{tmp_path.parent}/models.py")


def test_nothing_left_only_when_no_target_is_named(monkeypatch, capsys):
    monkeypatch.setattr(cli, "expand", lambda text, hint="": [text] if ":" in text else [f"{text}:Block"])
    monkeypatch.setattr(cli, "_checkable", lambda targets: [])
    with pytest.raises(_UsageError, match="nothing left to check"):
        _arguments(["blocks", "-x"])
    for named in (["blocks", "convnet:Model"], ["blocks", "--dyncheck", "convnet:Model"]):
        args = _arguments(named)
        assert "--dyncheck=blocks:Block" not in args
        assert "convnet:Model" in args or "--dyncheck=convnet:Model" in args


def test_pytest_gets_every_other_argument_unchanged_and_each_target_once(monkeypatch):
    monkeypatch.setattr(cli, "expand", lambda text, hint="": [text] if ":" in text else [f"{text}:A", f"{text}:B"])
    monkeypatch.setattr(cli, "_checkable", lambda targets: targets)
    args = _arguments(["m", "-n", "2", "m:A", "--tb", "short", "-x", "--dyncheck-seed=1"])
    assert args[:2] == ["--dyncheck-only", "-p"]
    assert args[5:] == [
        "--dyncheck=m:A", "--dyncheck=m:B", "-n", "2", "--tb", "short", "-x", "--dyncheck-seed=1",
    ]


def test_a_checkout_not_installed_loads_the_plugin_by_name(monkeypatch):
    # dyncheck on PYTHONPATH, not pip-installed: pytest finds no entry point for the plugin
    # and refused --dyncheck-only as an unknown argument.
    monkeypatch.setattr(cli, "expand", lambda text, hint="": [text])
    monkeypatch.setattr(cli, "_checkable", lambda targets: targets)
    from importlib import metadata

    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    assert "dyncheck.plugin" not in _arguments(["m:A"])  # this environment installs it
    monkeypatch.setattr(metadata, "entry_points", lambda group: [])
    assert _arguments(["m:A"])[:3] == ["-p", "dyncheck.plugin", "--dyncheck-only"]
    assert _arguments(["m:A", "-p", "dyncheck.plugin"]).count("dyncheck.plugin") == 1
    assert _arguments(["m:A", "-pdyncheck.plugin"]).count("-p") == 1
    # installed, but entry points are off: named too
    monkeypatch.undo()
    monkeypatch.setattr(cli, "expand", lambda text, hint="": [text])
    monkeypatch.setattr(cli, "_checkable", lambda targets: targets)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert _arguments(["m:A"])[:2] == ["-p", "dyncheck.plugin"]


def test_a_model_is_resolved_once_per_process(monkeypatch, tmp_path, capsys):
    """Choosing which models of a module can be checked resolves them (builds each, may
    probe its sizes); the plugin takes those, in the same process, instead of resolving
    again, and nothing is kept once the command ends."""
    import dyncheck.target as target_module

    (tmp_path / "twomodels.py").write_text(HEADER + NET + NET.replace("class Net", "class Other"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    built = []
    resolve_spec = target_module.resolve_spec

    def counting(spec, *, text=None):
        built.append(text)
        return resolve_spec(spec, text=text)

    monkeypatch.setattr(target_module, "resolve_spec", counting)
    code = cli.main(["twomodels", "--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"])
    assert code == 0, capsys.readouterr()
    assert sorted(built) == ["twomodels:Net", "twomodels:Other"]
    assert "twomodels:Net::determinism" in capsys.readouterr().out
    assert target_module._handed == {}


def test_a_bare_module_stands_for_its_public_models(monkeypatch, tmp_path):
    """Names starting with an underscore are not models of the module; with an ``__all__``,
    only what it lists is (a layer the module builds its models from is not)."""
    layer = NET.replace("class Net", "class Layer")
    (tmp_path / "listed.py").write_text(HEADER + NET + layer + "\n__all__ = ['Net']\n")
    (tmp_path / "unlisted.py").write_text(HEADER + NET + layer + NET.replace("class Net", "class _Private"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.expand("listed") == ["listed:Net"]
    assert cli.expand("unlisted") == ["unlisted:Net", "unlisted:Layer"]
    # an __all__ that lists no model says so
    (tmp_path / "factories.py").write_text(HEADER + NET + "\n__all__ = ['build']\n")
    with pytest.raises(_UsageError, match="defines no nn.Module subclass or dyncheck.Spec at top level listed in its __all__"):
        cli.expand("factories")
    # ... and a zero-argument factory it lists, annotated to return a model, is a target (one
    # that needs arguments is not, nor a main() that may train, write files or exit)
    builders = (
        "\ndef small() -> Net:\n    return Net()\n\ndef sized(width) -> Net:\n    return Net()\n"
        "\ndef main():\n    raise SystemExit(0)\n"
    )
    (tmp_path / "builders.py").write_text(HEADER + NET + builders + "\n__all__ = ['small', 'sized', 'main']\n")
    assert cli.expand("builders") == ["builders:small"]


TREE = '''
import torch
from hypothesis import strategies as st
from torch import nn

import dyncheck
from dyncheck.strategies import current_dims, tensors


class TreeLSTM(nn.Module):
    """Child-sum Tree-LSTM over a parent index per node (-1 at the root, node 0)."""

    def __init__(self):
        super().__init__()
        self.iou = nn.Linear(8 + 6, 18)
        self.fx = nn.Linear(8, 6)
        self.fh = nn.Linear(6, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, x, parents):
        hs, cs = [None] * x.size(0), [None] * x.size(0)
        for i in range(x.size(0) - 1, -1, -1):
            kids = (parents == i).nonzero().flatten().tolist()
            hk = torch.stack([hs[k] for k in kids]) if kids else x.new_zeros(1, 6)
            ck = torch.stack([cs[k] for k in kids]) if kids else x.new_zeros(1, 6)
            i_, o, u = self.iou(torch.cat([x[i], hk.sum(0)])).chunk(3)
            f = torch.sigmoid(self.fx(x[i]) + self.fh(hk))
            cs[i] = torch.sigmoid(i_) * torch.tanh(u) + (f * ck).sum(0)
            hs[i] = torch.sigmoid(o) * torch.tanh(cs[i])
        return self.out(hs[0])


@st.composite
def parents(draw):
    n = current_dims()["nodes"]
    return torch.tensor([-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)])


spec = dyncheck.Spec(TreeLSTM, dims={"nodes": (1, 5)}, inputs={"x": tensors(shape=("nodes", 8)), "parents": parents()})
'''


def test_dyncheck_runs_where_numpy_is_not_installed(tmp_path):
    # torch runs without numpy, and so must dyncheck: its keys of integer inputs were
    # numpy's bytes ("Numpy is not available" inside grad_isolation). The interpreter here
    # sees this environment's packages without numpy (links to the others, no site).
    import site

    shadow = tmp_path / "site"
    shadow.mkdir()
    packages = Path(site.getsitepackages()[0])
    for entry in packages.iterdir():
        if not entry.name.startswith("numpy"):
            (shadow / entry.name).symlink_to(entry)
    (tmp_path / "tree.py").write_text(TREE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(shadow), str(tmp_path)])}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import numpy"], env=env, capture_output=True, text=True, cwd=tmp_path,
    )
    assert "No module named 'numpy'" in result.stderr
    result = subprocess.run(
        [sys.executable, "-S", "-m", "dyncheck", "tree:spec", "--dyncheck-invariants=grad_isolation,state_roundtrip",
         "--dyncheck-seed=1", "--dyncheck-max-examples=10", "-p", "no:xdist", "-p", "no:cacheprovider", "-q"],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout


@pytest.mark.parametrize("make", [
    lambda: torch.tensor(5),
    lambda: torch.arange(6).reshape(2, 3).t(),  # transposed
    lambda: torch.tensor([[7]]).as_strided((1, 1), (2, 2)),  # one element, any stride (a mask's [1, 1] slice)
    lambda: torch.tensor([True, False, True]),
    lambda: torch.randn(3, 4, dtype=torch.float64)[:, ::2],
])
def test_tensor_bytes_are_numpys_without_numpy(make):
    from dyncheck.compare import tensor_bytes

    value = make()
    assert tensor_bytes(value) == value.contiguous().numpy().tobytes()
