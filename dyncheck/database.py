"""The Hypothesis example database chosen with ``database = ...`` in ``[tool.dyncheck]`` or
``--dyncheck-database``: where a failure found on one machine is kept so that every other
machine sharing it replays the failure first.

Only Hypothesis's own databases are used:

- a directory (``DirectoryBasedExampleDatabase``), e.g. on storage every CI machine mounts;
- ``github:owner/repo[/artifact]``: the examples a CI workflow uploaded as a GitHub Actions
  artifact (``GitHubArtifactDatabase``, read only), replayed beside the local
  ``.hypothesis/examples`` where new failures are saved (Hypothesis's recipe);
- ``redis://host:port/db`` (``RedisExampleDatabase``, needs ``hypothesis[redis]``);
- ``none``: no database at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["open_database"]


class DatabaseError(ValueError):
    """The database cannot be opened; the message is the reason and the fix."""


def open_database(text: str, base: Path) -> Any:
    """The ``ExampleDatabase`` that ``text`` names (None for ``none``); a directory is
    relative to ``base``. Raises :class:`DatabaseError` with the fix."""
    from hypothesis.database import (
        DirectoryBasedExampleDatabase,
        GitHubArtifactDatabase,
        MultiplexedDatabase,
        ReadOnlyDatabase,
    )

    if text.lower() == "none":
        return None
    if text.startswith("github:"):
        owner, repo, *artifact = text[len("github:"):].split("/")
        shared = GitHubArtifactDatabase(owner, repo, *artifact)
        local = DirectoryBasedExampleDatabase(base / ".hypothesis" / "examples")
        return MultiplexedDatabase(local, ReadOnlyDatabase(shared))
    if text.startswith(("redis://", "rediss://", "unix://")):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError:
            raise DatabaseError(
                "a Redis database needs the redis package: pip install 'hypothesis[redis]'"
            ) from None
        try:
            client = redis.Redis.from_url(text)
        except ValueError as exc:
            raise DatabaseError(f"{exc}; write it as redis://host:6379/0") from None
        return RedisExampleDatabase(client)
    path = (base / text).resolve()
    if path.exists() and not path.is_dir():
        raise DatabaseError(f"{path} is a file; give a directory (it is created when missing)")
    return DirectoryBasedExampleDatabase(path)
