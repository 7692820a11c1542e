"""pytest hooks only: options, configure, header, collection, xdist glue, summary.

Loading this module imports neither torch nor hypothesis; both are imported only when a
``--dyncheck`` target (or the ``dyncheck_targets`` ini value) makes dyncheck active.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dyncheck.settings import Settings

#: The run's ``dyncheck.settings.Settings``, kept by :func:`pytest_configure`; absent when
#: nothing in the run asks for dyncheck (then ``dyncheck.settings`` is never imported).
SETTINGS_KEY: pytest.StashKey[Any] = pytest.StashKey()
#: How many modules were imported when this run last froze the heap for its checks (see
#: ``pytest_collection_finish``); absent when it did not.
_FROZE_KEY: pytest.StashKey[int] = pytest.StashKey()
#: Modules a check may import after the heap was frozen before it is frozen again: the
#: first optimizer imports torch._dynamo (about 800 modules, 150,000 objects).
_REFREEZE_AFTER = 100

#: dest -> default of each ``--dyncheck*`` option, to tell whether any was given.
_DEFAULTS: dict[str, Any] = {}

_INI_NAMES = (
    "dyncheck_targets", "dyncheck_max_examples", "dyncheck_time_budget", "dyncheck_invariants",
    "dyncheck_devices", "dyncheck_against", "dyncheck_baseline",
)


class _Group:
    """The option group, remembering each option's default for :func:`_asked_for`."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def addoption(self, *names: str, **attrs: Any) -> None:
        _DEFAULTS[attrs["dest"]] = attrs.get("default")
        self.group.addoption(*names, **attrs)


#: The names pytest loads this module under: the pytest11 entry point's (installed), and the
#: module's own (``-p dyncheck.plugin``, a conftest's ``pytest_plugins``).
_NAMES = ("dyncheck", "dyncheck.plugin")


def pytest_plugin_registered(plugin: object, plugin_name: str, manager: pytest.PytestPluginManager) -> None:
    """Loaded under one of its names, the plugin is taken as loaded under the other too: an
    installed dyncheck also named with ``-p dyncheck.plugin`` (as a checkout needs) or in a
    conftest's ``pytest_plugins`` stopped pytest with "Plugin already registered under a
    different name" and a dump of every plugin. The other name is blocked, so pytest skips
    it (``-p no:dyncheck``, given before, still disables the plugin)."""
    if plugin is not sys.modules[__name__] or plugin_name not in _NAMES:
        return
    for other in _NAMES:
        if other != plugin_name and manager.get_plugin(other) is None and not manager.is_blocked(other):
            manager.set_blocked(other)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = _Group(parser.getgroup("dyncheck", "dyncheck: property-based checks of dynamic PyTorch models"))
    group.addoption(
        "--dyncheck",
        action="append",
        dest="dyncheck_targets",
        default=[],
        metavar="TARGET",
        help="check a model: module.path:Name (nn.Module class, dyncheck.Spec or factory); repeatable",
    )
    group.addoption(
        "--dyncheck-seed",
        dest="dyncheck_seed",
        default=None,
        metavar="SEED",
        help="seed every check (default: a new seed per run, printed in the header)",
    )
    group.addoption(
        "--dyncheck-max-examples",
        dest="dyncheck_max_examples",
        default=None,
        metavar="N",
        help="examples per check (default: the Hypothesis profile's max_examples)",
    )
    group.addoption(
        "--dyncheck-time-budget",
        dest="dyncheck_time_budget",
        default=None,
        metavar="SECONDS",
        help="time each check may spend generating examples, e.g. 120, 90s or 2m (default: all the "
        "examples, or an adaptive budget when the first examples show a slow model)",
    )
    group.addoption(
        "--dyncheck-invariants",
        dest="dyncheck_invariants",
        default=None,
        metavar="NAMES",
        help="comma-separated invariants to check (default: all)",
    )
    group.addoption(
        "--dyncheck-explain",
        dest="dyncheck_explain",
        action="store_true",
        default=False,
        help="print the spec used for each target, as Python to paste and edit",
    )
    group.addoption(
        "--dyncheck-devices",
        dest="dyncheck_devices",
        default=None,
        metavar="DEVICES",
        help="devices device_agreement compares, e.g. cpu,cuda or cuda:0,cuda:1 (default: cpu and cuda when available)",
    )
    group.addoption(
        "--dyncheck-profile",
        dest="dyncheck_profile",
        default=None,
        metavar="NAME",
        help="use the values of [tool.dyncheck.profiles.NAME] in pyproject.toml (e.g. fast, ci, nightly)",
    )
    group.addoption(
        "--dyncheck-shard",
        dest="dyncheck_shard",
        default=None,
        metavar="K/N",
        help="run only shard K of N of dyncheck's items (a deterministic split: the N shards together run each item once)",
    )
    group.addoption(
        "--dyncheck-database",
        dest="dyncheck_database",
        default=None,
        metavar="DB",
        help="Hypothesis example database shared by machines, whose failures replay first: a directory, "
        "github:owner/repo[/artifact], redis://host:port/db or none (default: [tool.dyncheck] database, else none)",
    )
    group.addoption(
        "--dyncheck-against",
        dest="dyncheck_against",
        default=None,
        metavar="OLD",
        help="check that each target still computes what OLD computed (refactor_agreement): "
        "module.path:Name, or git:REV for the target as it was at a git revision (git:main, git:HEAD~1)",
    )
    group.addoption(
        "--dyncheck-baseline",
        dest="dyncheck_baseline",
        default=None,
        metavar="PATH",
        help="compare each target with its recorded golden baseline (a .json file, or a directory "
        "holding one file per target)",
    )
    group.addoption(
        "--dyncheck-update-baseline",
        dest="dyncheck_update_baseline",
        action="store_true",
        default=False,
        help="record the baselines of --dyncheck-baseline again instead of comparing, and say what changed",
    )
    group.addoption(
        "--dyncheck-only",
        dest="dyncheck_only",
        action="store_true",
        default=False,
        help="run only dyncheck's checks: collect no test files",
    )
    parser.addini("dyncheck_targets", "models to check, one module.path:Name per line", type="linelist", default=[])
    parser.addini("dyncheck_max_examples", "examples per check", default="")
    parser.addini("dyncheck_time_budget", "time each check may spend generating examples, e.g. 120 or 2m", default="")
    parser.addini("dyncheck_invariants", "comma-separated invariants to check", default="")
    parser.addini("dyncheck_devices", "devices device_agreement compares, e.g. cpu,cuda", default="")
    parser.addini("dyncheck_against", "the old model every target must agree with, e.g. git:main", default="")
    parser.addini("dyncheck_baseline", "where the golden baselines live (a .json file or a directory)", default="")


def _did_you_mean(name: str, known: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _registry_names() -> list[str]:
    from dyncheck.invariants import registry

    return list(registry())


def _asked_for(config: pytest.Config) -> bool:
    """Whether anything in this run concerns dyncheck: one of its options, one of its ini
    values, or a pyproject.toml that names it (where ``[tool.dyncheck]`` would be). A run
    with none of them never imports dyncheck's settings, so it pays nothing more."""
    if any(config.getoption(dest, default) != default for dest, default in _DEFAULTS.items()):
        return True
    if any(config.getini(name) for name in _INI_NAMES):
        return True
    if getattr(config, "workerinput", {}).get("dyncheck_seed") is not None:
        return True
    try:
        return b"dyncheck" in (config.rootpath / "pyproject.toml").read_bytes()
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dyncheck: a dyncheck invariant check of one model")
    if not _asked_for(config):
        return
    from dyncheck.settings import parse

    settings = parse(config, _registry_names)
    config.stash[SETTINGS_KEY] = settings
    if not settings.active:
        return
    # Source text parsed whole (Python finds a class's source by parsing its module; coverage's
    # analysis compiles it) warns of the source's own invalid escapes, under "<unknown>": the
    # model's or its library's to fix, not the run's to show (torchdyn's galerkin.py).
    for category in ("DeprecationWarning", "SyntaxWarning"):
        config.addinivalue_line("filterwarnings", f"ignore:invalid escape sequence:{category}:<unknown>")
    from dyncheck._items import TARGETS_KEY
    from dyncheck.errors import DyncheckError
    from dyncheck.target import import_path_for_targets, resolve

    import_path_for_targets()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("dyncheck_probes"):
        # The controller resolved every target before this worker started: its model calls
        # are reused where this resolution makes the same ones (dyncheck.probing).
        from dyncheck import probing

        probing.replay(workerinput["dyncheck_probes"])
    if settings.devices:
        _check_devices(settings.devices, settings.devices_origin or f"--dyncheck-devices={settings.devices}")
    targets = {}
    refused = []  # every target's refusal, said at once: the first no longer hides the others
    for text in settings.targets:
        try:
            targets[text] = resolve(text)
        except DyncheckError as exc:
            refused.append(str(exc))
            continue
        own = settings.target_config.get(text)
        if own is not None and own.skip:
            # [tool.dyncheck] targets' skips join the Spec's own (which win: they sit with the model).
            targets[text].spec = dataclasses.replace(targets[text].spec, skip={**own.skip, **targets[text].spec.skip})
    if refused:
        raise pytest.UsageError("\n".join(refused))
    known = set(_registry_names())
    for text, target in targets.items():
        for field in ("skip", "xfail"):
            for name in sorted(set(getattr(target.spec, field)) - known):
                raise pytest.UsageError(
                    f"--dyncheck {text}: Spec({field}=...) names unknown invariant {name!r}; "
                    f"{_did_you_mean(name, known)}known: {', '.join(sorted(known))}"
                )
    if settings.against or settings.against_ini or settings.baseline or any(
        t.spec.against is not None for t in targets.values()
    ):
        from dyncheck.guard import validate

        try:
            validate(settings, targets)
        except DyncheckError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[TARGETS_KEY] = targets
    if settings.database:
        from dyncheck._items import DATABASE_KEY
        from dyncheck.database import DatabaseError, open_database

        try:
            config.stash[DATABASE_KEY] = open_database(settings.database, Path(settings.database_base or "."))
        except DatabaseError as exc:
            raise pytest.UsageError(f"{settings.database_origin}: {exc}") from None
    if workerinput is not None:
        from dyncheck.parallel import share_cores

        share_cores(int(workerinput.get("workercount", 1)))
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistGlue(settings, config), "dyncheck-xdist")


def _check_devices(text: str, origin: str) -> None:
    """A --dyncheck-devices value that names no device or Config is a usage error: as a
    skip it would pass a CI run quietly."""
    from dyncheck.agreement import parse_devices
    from dyncheck.errors import InvalidArgument

    try:
        parse_devices(text)
    except (InvalidArgument, ImportError, AttributeError) as exc:
        raise pytest.UsageError(
            f"{origin}: {exc}; give devices such as cpu,cuda or cuda:0,cuda:1, or "
            "module:Name of a dyncheck.agreement.Config"
        ) from None


class _XdistGlue:
    """Hands the controller's seed to every worker, so none draws its own, and the model
    calls its resolution made, so none makes them again (dyncheck.probing); prints
    ``--dyncheck-explain`` on the controller, which collects nothing itself."""

    def __init__(self, settings: Settings, config: pytest.Config) -> None:
        self.settings = settings
        self.config = config
        self.explained = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        from dyncheck import probing

        node.workerinput["dyncheck_seed"] = self.settings.seed
        node.workerinput["dyncheck_seed_given"] = self.settings.seed_given
        node.workerinput["dyncheck_probes"] = probing.recorded()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Any) -> None:
        if self.explained or not self.settings.explain:
            return
        self.explained = True
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in _explanation(self.config) or []:
                reporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active:
        return None
    from dyncheck.parallel import header

    count = len(settings.targets)
    lines = [
        f"dyncheck: {count} target{'s' if count != 1 else ''}, seed {settings.seed} "
        f"(reproduce with --dyncheck-seed={settings.seed})"
    ]
    if settings.profile:
        lines.append(f"dyncheck: profile {settings.profile} (--dyncheck-profile={settings.profile})")
    if settings.max_examples_origin:
        # Not Hypothesis's own default: say where the count was chosen.
        count = settings.max_examples
        own = any(entry.max_examples is not None for entry in settings.target_config.values())
        lines.append(
            f"dyncheck: {count} example{'s' if count != 1 else ''} per check, from {settings.max_examples_origin}"
            + ("; a target with its own max_examples in [tool.dyncheck] targets uses that" if own else "")
        )
    if settings.shard:
        lines.append(f"dyncheck: shard {settings.shard[0]} of {settings.shard[1]} (--dyncheck-shard={settings.shard[0]}/{settings.shard[1]})")
    if settings.database:
        lines.append(f"dyncheck: example database {settings.database}")
    cores = header(getattr(config.option, "numprocesses", None))
    return lines + [cores] if cores else lines


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is not None and settings.only:
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active:
        return
    from dyncheck._items import DyncheckRoot

    # genitems reports each collector like pytest's own collection, so the
    # "collected N items" line, --co and -k/-m treat dyncheck items as any other.
    collected = list(session.genitems(DyncheckRoot.from_parent(session, name="dyncheck", nodeid="dyncheck")))
    if settings.shard:
        from dyncheck.shard import split

        collected, others = split(collected, *settings.shard)
        if others:
            config.hook.pytest_deselected(items=others)
    items.extend(collected)


def pytest_collection_finish(session: pytest.Session) -> None:
    """In a run of dyncheck's checks alone (``python -m dyncheck``), what is alive once
    collection ends (torch, the plugins, the resolved targets: about 200,000 objects) is
    moved out of the cyclic collector's sight until the session ends. Every full
    collection during the checks walked all of it again, and the copies and autograd
    graphs each example makes start one every second or so: about a tenth of a check's
    time. What the checks make is collected as before; the session's end gives the
    collector everything back, so an object of that time left in a reference cycle is
    still finalised (later, not never). A run with the user's own tests is left alone, as
    is a process whose heap someone else froze."""
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active or not settings.only:
        return
    if _heap_frozen():
        return
    _freeze(session.config)


def _heap_frozen() -> bool:
    """Whether someone froze the heap (``gc.freeze()``). ``gc.get_freeze_count()`` walks
    every frozen object (27 ms in a test process that runs dyncheck in-process, once per
    run), so a heap found frozen is taken as frozen for the rest of the process: were it
    given back later, a run would only go unfrozen (slower), never free what is not its own."""
    global _FROZEN_ELSEWHERE
    _FROZEN_ELSEWHERE = _FROZEN_ELSEWHERE or gc.get_freeze_count() > 0
    return _FROZEN_ELSEWHERE


#: A heap :func:`_heap_frozen` found frozen once.
_FROZEN_ELSEWHERE = False


def _freeze(config: pytest.Config) -> None:
    gc.collect()  # garbage in reference cycles now (a probe's model copies) is freed, not kept
    gc.freeze()
    config.stash[_FROZE_KEY] = len(sys.modules)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A check that imported a library (an optimizer's first step imports torch._dynamo)
    # left its modules to be walked by every later collection: frozen with the rest,
    # before the next check builds anything.
    frozen = item.config.stash.get(_FROZE_KEY, None)
    if frozen is not None and len(sys.modules) - frozen >= _REFREEZE_AFTER:
        _freeze(item.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.stash.get(_FROZE_KEY, None) is not None:
        gc.unfreeze()
        del session.config.stash[_FROZE_KEY]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """JUnit XML writes the teardown report's ``user_properties`` as ``<property>``s: give
    it the check's record as readable key/value pairs rather than a dict's repr."""
    if report.when == "teardown" and report.nodeid.startswith("dyncheck::"):
        from dyncheck.junit import flatten

        report.user_properties = flatten(report.nodeid, report.user_properties)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str] | None:
    return _explanation(config)


def _explanation(config: pytest.Config) -> list[str] | None:
    """``--dyncheck-explain``: each target's spec as inferred, as Python to paste."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active or not settings.explain:
        return None
    from dyncheck import _report
    from dyncheck._items import TARGETS_KEY

    lines: list[str] = []
    for target in config.stash[TARGETS_KEY].values():
        lines.extend(["", *_report.explain(target).splitlines()])
    return lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active:
        return
    from dyncheck import _summary

    _summary.write(terminalreporter, settings)
