"""Typed settings, read once at the entry point and passed down.

Precedence, lowest first: built-in defaults < a TOML file (``--config`` or ``FRAMEFLEET_CONFIG``)
< ``FRAMEFLEET_*`` environment variables < CLI flags. Nothing here runs at import time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from framefleet.errors import ConfigError

ENV_PREFIX = "FRAMEFLEET_"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a framefleet process needs to know about its surroundings."""

    database_url: str = "sqlite:///framefleet.db"
    """Catalog database (SQLAlchemy URL): SQLite by default, ``postgresql+psycopg://...``."""
    broker_url: str = "redis://localhost:6379/0"
    """Celery broker (Redis)."""
    results_url: str = ""
    """Redis holding job state and results; empty means the broker's Redis."""
    result_ttl_seconds: int = 7 * 24 * 3600
    """How long job state stays in Redis after the last update."""
    max_attempts: int = 3
    """Deliveries of one segment before it is marked failed (a segment that kills its worker)."""
    segment_seconds: float = 10.0
    """Default segment length for distributed extraction."""
    worker_concurrency: int = 0
    """Worker processes per worker (0 = one per core)."""
    decode_threads: int = 0
    """Decoder threads per process (0: FFmpeg chooses; 1: best with one process per core)."""
    max_tasks_per_child: int = 200
    """Recycle a worker child after this many segments (bounds leaks in native code)."""
    time_limit_factor: float = 6.0
    """A segment's soft time limit is 2 s + this × its length (hard limit: a quarter more)."""
    lease_seconds: float = 15.0
    """A running segment's lease: its worker renews it every ``heartbeat_seconds``; once it has
    not for this long (worker killed, host lost), the segment goes to another worker."""
    heartbeat_seconds: float = 3.0
    """How often workers renew their leases and report that they are alive."""
    heartbeat_file: str = ""
    """A file the worker touches at every heartbeat (container healthchecks); empty: none."""
    no_worker_notice_seconds: float = 30.0
    """``--wait`` says so when no worker consuming the job's queue was seen for this long."""
    state_dir: str = ""
    """Where this user's local jobs are remembered (empty: $XDG_STATE_HOME/framefleet, else
    ~/.local/state/framefleet)."""
    max_frame_pixels: int = 40_000_000
    """Videos with larger frames are refused (8K UHD is 33 MP; each full frame the decoder holds
    costs ~6 bytes a pixel)."""
    visibility_timeout_seconds: int = 0
    """Seconds before Redis hands a dead worker's unacknowledged segment to another worker.

    0: derived, the hard time limit of a ``segment_seconds`` segment + 60 s. It must exceed the hard
    time limit of every segment, or a slow segment would be handed out twice.
    """

    @property
    def effective_results_url(self) -> str:
        return self.results_url or self.broker_url


def read_toml(path: str | os.PathLike[str], *, what: str) -> dict[str, Any]:
    """A TOML file's tables, every way of failing a one-line `ConfigError` naming ``what``."""
    shown = repr(str(path))
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{what} {shown} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} {shown}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{what} {shown} is not valid TOML: {e}") from e


def _coerce(name: str, raw: Any, kind: type) -> Any:
    try:
        if kind is bool:
            return str(raw).lower() in {"1", "true", "yes", "on"}
        if kind is not str and isinstance(raw, str) and len(raw) > 64:
            raise ValueError("too long")
        value = kind(raw)
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(
            f"setting {name!r} = {str(raw)[:64]!r} is not a valid {kind.__name__}"
        ) from e
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"setting {name!r} = {raw!r} is not a finite number")
    return value


def _field_types() -> dict[str, type]:
    kinds = {"str": str, "int": int, "float": float, "bool": bool}
    return {f.name: kinds[str(f.type)] for f in fields(Settings)}


def load_settings(
    *,
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults, a TOML file, the environment and explicit overrides.

    Args:
        config_path: a TOML file with a ``[framefleet]`` table or top-level keys; when None,
            ``FRAMEFLEET_CONFIG`` names one if set.
        env: the environment to read (``os.environ`` when None).
        overrides: values from CLI flags; ``None`` values are ignored.
    """
    env = os.environ if env is None else env
    types = _field_types()
    values: dict[str, Any] = {}

    path = config_path or env.get(ENV_PREFIX + "CONFIG")
    if path:
        data = read_toml(path, what="config file")
        table = data.get("framefleet", data)
        for key, raw in table.items():
            if isinstance(raw, dict):
                continue  # other tables (e.g. [[rules]]) belong to other readers
            if key not in types:
                raise ConfigError(
                    f"unknown setting {key!r} in {str(path)!r}; known: {', '.join(sorted(types))}"
                )
            values[key] = _coerce(key, raw, types[key])

    for key, kind in types.items():
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is not None and raw != "":
            values[key] = _coerce(ENV_PREFIX + key.upper(), raw, kind)

    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(key, raw, types[key])

    settings = Settings(**values)
    if settings.max_attempts < 1:
        raise ConfigError(f"max_attempts must be >= 1, got {settings.max_attempts}")
    if settings.segment_seconds <= 0:
        raise ConfigError(f"segment_seconds must be > 0, got {settings.segment_seconds}")
    if settings.time_limit_factor <= 0:
        raise ConfigError(f"time_limit_factor must be > 0, got {settings.time_limit_factor}")
    if not 0 < settings.heartbeat_seconds <= settings.lease_seconds / 2:
        raise ConfigError(
            f"heartbeat_seconds must be > 0 and at most half of lease_seconds "
            f"({settings.lease_seconds:g}), got {settings.heartbeat_seconds:g}"
        )
    if settings.max_frame_pixels < 1:
        raise ConfigError(f"max_frame_pixels must be >= 1, got {settings.max_frame_pixels}")
    if settings.visibility_timeout_seconds < 0:
        raise ConfigError(
            f"visibility_timeout_seconds must be >= 0 (0: derived), "
            f"got {settings.visibility_timeout_seconds}"
        )
    return settings


def redact_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``: for every log, message and status.

    ``postgresql+psycopg://framefleet:secret@db/x`` -> ``postgresql+psycopg://framefleet:***@db/x``;
    ``redis://:secret@redis:6379/0`` -> ``redis://:***@redis:6379/0``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def replace(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with some fields changed (None values are ignored)."""
    return dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
