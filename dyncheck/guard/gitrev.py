"""A module as it was at a git revision, loaded beside the working tree's.

``git:main`` stands for the target's own module at ``main``. The target's top-level
package (or module) is read from the revision with ``git archive`` into a temporary
directory and imported under its own name while the working tree's modules of that package
are set aside; afterwards they are put back, so the checkout and ``sys.modules`` are as
they were and the old classes keep their own module globals. Other packages the old code
imports come from the working tree.
"""

from __future__ import annotations

import atexit
import importlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Any

from dyncheck.errors import TargetError, exit_hint

__all__ = ["load_at_revision", "split_git"]

#: (repository root, commit) -> the directory its files were extracted to. A cache of
#: immutable content (one commit's files), shared by every check of the run.
_EXTRACTED: dict[tuple[str, str], str] = {}
#: (repository root, commit, module, attribute) -> the object loaded at that commit
_LOADED: dict[tuple[str, str, str, str], Any] = {}


def split_git(text: str) -> tuple[str, str] | None:
    """``git:REV`` -> (REV, ""); ``git:REV:module:Name`` -> (REV, "module:Name"); None if
    ``text`` is not a git form. (Git forbids ``:`` in branch and tag names.)"""
    if not text.startswith("git:"):
        return None
    rest = text[len("git:"):]
    revision, _, target = rest.partition(":")
    return revision, target


def _git(root: str, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", root, *args], capture_output=True, check=False, text=not binary)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _locate(module_name: str) -> tuple[str, str]:
    """(the sys.path entry the module's top-level package is imported from, the top-level
    name's file or directory) in the working tree; falls back to the current directory
    when the working tree no longer has the package."""
    import importlib.util

    top = module_name.split(".")[0]
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    if found is not None and found.submodule_search_locations:
        location = os.path.abspath(list(found.submodule_search_locations)[0])
        return os.path.dirname(location), location
    if found is not None and found.origin and os.path.isfile(found.origin):
        return os.path.dirname(os.path.abspath(found.origin)), os.path.abspath(found.origin)
    return os.getcwd(), os.path.join(os.getcwd(), top)


def load_at_revision(module_name: str, attribute: str, revision: str, label: str) -> Any:
    """``module_name``'s ``attribute`` as it was at ``revision`` of the repository holding
    the module; every problem is a one-line :class:`TargetError` starting with ``label``."""
    if not revision:
        raise TargetError(f"{label}: no revision given; write e.g. git:main or git:HEAD~1")
    if shutil.which("git") is None:
        raise TargetError(f"{label}: git is not installed (or not on PATH), so no revision can be read")
    base, location = _locate(module_name)
    probe = location if os.path.isdir(location) else os.path.dirname(location)
    if not os.path.isdir(probe):
        probe = base
    top_level = _git(probe, "rev-parse", "--show-toplevel")
    if top_level.returncode != 0:
        raise TargetError(
            f"{label}: {os.path.relpath(location)} is not in a git repository, so git:{revision} means nothing"
        )
    root = top_level.stdout.strip()
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit.returncode != 0:
        raise TargetError(
            f"{label}: {root} has no revision {revision!r}; give a branch, tag or commit, e.g. git:main or git:HEAD~1"
        )
    sha = commit.stdout.strip()
    key = (root, sha, module_name, attribute)
    if key in _LOADED:
        return _LOADED[key]
    top = module_name.split(".")[0]
    relative_base = os.path.relpath(os.path.realpath(base), os.path.realpath(root))
    if relative_base.startswith(".."):
        raise TargetError(f"{label}: {top} is imported from {base}, outside the repository {root}")
    candidates = [os.path.normpath(os.path.join(relative_base, name)) for name in (top, f"{top}.py")]
    present = [c for c in candidates if _git(root, "cat-file", "-e", f"{sha}:{c.replace(os.sep, '/')}").returncode == 0]
    if not present:
        missing = candidates[1] if location.endswith(".py") else candidates[0]
        raise TargetError(f"{label}: {missing} does not exist at {revision} ({sha[:9]})")
    directory = _extract(root, sha, present[0].replace(os.sep, "/"), label)
    value = _import_from(os.path.join(directory, relative_base), module_name, attribute, revision, label)
    _LOADED[key] = value
    return value


def _extract(root: str, sha: str, path: str, label: str) -> str:
    cached = _EXTRACTED.get((root, sha))
    if cached is not None and os.path.exists(os.path.join(cached, path)):
        return cached
    directory = cached or tempfile.mkdtemp(prefix=f"dyncheck-git-{sha[:9]}-")
    if cached is None:
        atexit.register(shutil.rmtree, directory, True)
        _EXTRACTED[(root, sha)] = directory
    archive = _git(root, "archive", "--format=tar", sha, "--", path, binary=True)
    if archive.returncode != 0:
        raise TargetError(f"{label}: git archive failed: {_first_line(archive.stderr.decode(errors='replace'))}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def _import_from(base: str, module_name: str, attribute: str, revision: str, label: str) -> Any:
    """Import ``module_name`` from ``base`` with the working tree's modules of its
    top-level package set aside, and put them back afterwards."""
    top = module_name.split(".")[0]

    def ours(name: str) -> bool:
        return name == top or name.startswith(top + ".")

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, base)
    importlib.invalidate_caches()
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and ours(exc.name):
                raise TargetError(f"{label}: there is no module {module_name!r} at {revision}") from None
            raise TargetError(
                f"{label}: importing {module_name!r} at {revision} failed: {type(exc).__name__}: {exc}"
            ) from None
        except (Exception, SystemExit) as exc:  # SystemExit: a module that parses the command line
            raise TargetError(
                f"{label}: importing {module_name!r} at {revision} failed: "
                f"{type(exc).__name__}: {_first_line(str(exc))}{exit_hint(exc)}"
            ) from None
        value: Any = module
        for part in attribute.split("."):
            if not hasattr(value, part):
                import difflib

                names = [n for n in dir(value) if not n.startswith("_")]
                close = difflib.get_close_matches(part, names, n=3, cutoff=0.5)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise TargetError(f"{label}: {module_name!r} at {revision} has no attribute {part!r}{hint}")
            value = getattr(value, part)
        return value
    finally:
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
        if base in sys.path:
            sys.path.remove(base)
        importlib.invalidate_caches()
