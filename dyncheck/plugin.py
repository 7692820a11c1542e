"""pytest hooks only: options, configure, header, collection, xdist glue, summary.

Loading this module imports neither torch nor hypothesis; both are imported only when a
``--dyncheck`` target (or the ``dyncheck_targets`` ini value) makes dyncheck active.
"""

from __future__ import annotations

from typing import Any

import pytest

from dyncheck.settings import SETTINGS_KEY, Settings, parse

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dyncheck", "dyncheck: property-based checks of dynamic PyTorch models")
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dyncheck: a dyncheck invariant check of one model")
    settings = parse(config, _registry_names)
    config.stash[SETTINGS_KEY] = settings
    if not settings.active:
        return
    from dyncheck._items import TARGETS_KEY
    from dyncheck.errors import DyncheckError
    from dyncheck.target import import_path_for_targets, resolve

    import_path_for_targets()
    if settings.devices:
        _check_devices(settings.devices)
    targets = {}
    for text in settings.targets:
        try:
            targets[text] = resolve(text)
        except DyncheckError as exc:
            raise pytest.UsageError(str(exc)) from None
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
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistGlue(settings), "dyncheck-xdist")


def _check_devices(text: str) -> None:
    """A --dyncheck-devices value that names no device or Config is a usage error: as a
    skip it would pass a CI run quietly."""
    from dyncheck.agreement import parse_devices
    from dyncheck.errors import InvalidArgument

    try:
        parse_devices(text)
    except (InvalidArgument, ImportError, AttributeError) as exc:
        raise pytest.UsageError(
            f"--dyncheck-devices={text}: {exc}; give devices such as cpu,cuda or cuda:0,cuda:1, or "
            "module:Name of a dyncheck.agreement.Config"
        ) from None


class _XdistGlue:
    """Hands the controller's seed to every worker, so none draws its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["dyncheck_seed"] = self.settings.seed
        node.workerinput["dyncheck_seed_given"] = self.settings.seed_given


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active:
        return None
    count = len(settings.targets)
    return [
        f"dyncheck: {count} target{'s' if count != 1 else ''}, seed {settings.seed} "
        f"(reproduce with --dyncheck-seed={settings.seed})"
    ]


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
    items.extend(session.genitems(DyncheckRoot.from_parent(session, name="dyncheck", nodeid="dyncheck")))


def pytest_report_collectionfinish(config: pytest.Config) -> list[str] | None:
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
