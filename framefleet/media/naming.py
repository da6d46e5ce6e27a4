"""Names under the output root: path-safe components, image name templates, manifest names.

Two rules make "nothing is ever silently overwritten" hold for names:

* `path_safe` is injective: different record ids (or contents) always give different path
  components. Characters outside a small safe set are percent-encoded (``drive 1`` becomes
  ``drive%201``, ``drive/1`` becomes ``drive%2F1``, ``camera/front`` becomes ``camera%2Ffront``),
  so nothing is merged; a name too long for a file system keeps a readable prefix and gains
  ``~`` plus a hash of the whole name (``~`` never appears otherwise).
* Templates are validated completely before anything runs: only the documented fields, only
  plain numeric format specs, no conversions, no attribute or index access, no nesting, nothing
  absolute and no ``..``. Formatting a valid template cannot fail or evaluate anything.

The layout of an output root (``_manifests``, ``_jobs``, ``_owners``) is named here too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from string import Formatter
from typing import Any

from framefleet.errors import ConfigError

MANIFESTS_DIR = "_manifests"
"""Per-segment manifests: ``{out}/_manifests/{record}/{content}/{start}-{end}.{spec}.jsonl``."""
JOBS_DIR = "_jobs"
"""Per-job manifests: ``{out}/_jobs/{job_id}.jsonl``."""
OWNERS_DIR = "_owners"
"""Which spec owns which image names (see `framefleet.media.ownership`)."""
INDEX_DIR = "_index"
"""Packet indexes of the videos, shared by a job's processes (see `framefleet.media.indexcache`)."""
TIMES_DIR = "_times"
"""Requested times of ``--at-times`` jobs, by digest (see `framefleet.media.attimes`)."""
FRAMESETS_DIR = "_framesets"
"""Synchronised cameras: ``{out}/_framesets/{record}.jsonl``, a line per grid time."""
EXPORTS_DIR = "_exports"
"""WebDataset shards of a job: ``{out}/_exports/{job_id}/shard-000000.tar`` (see
`framefleet.export`)."""
SHARD_PREFIX = "shard"
"""Shard names under ``{out}/_exports/{job_id}``: ``shard-000000.tar``, ``shard-000001.tar``..."""
PARQUET_SUFFIX = ".parquet"
"""A job's Parquet export sits beside its manifest: ``{out}/_jobs/{job_id}.parquet``."""
FRAMESETS_PARQUET_SUFFIX = ".framesets.parquet"
"""A job's frameset manifests as Parquet: ``{out}/_jobs/{job_id}.framesets.parquet``."""

DEFAULT_NAME_TEMPLATE = "{record_id}/{content}/{record_id}-{timestamp:.3f}.{ext}"
TEMPLATE_FIELDS = ("record_id", "content", "timestamp", "grid_time", "frame", "ext")
TIME_FIELDS = ("timestamp", "grid_time", "frame")

MAX_COMPONENT_BYTES = 255
"""The longest file or directory name common file systems allow (ext4, XFS, APFS, NTFS)."""
_MAX_SAFE_CHARS = 96
"""`path_safe` output is at most this long, so a record id plus a time still fits a name."""
_SAFE_CHARS = re.compile(r"[A-Za-z0-9._+@=-]")

_FLOAT_SPEC = re.compile(r"^(0?[1-9][0-9]?)?(\.[0-9]{1,2})?f$")
_INT_SPEC = re.compile(r"^(0?[1-9][0-9]?)?d?$")
_SPEC_RULES: dict[str, tuple[re.Pattern[str] | None, str]] = {
    "timestamp": (_FLOAT_SPEC, "'.3f', '.6f', '017.6f' (width <= 99, up to 99 decimals, 'f')"),
    "grid_time": (_FLOAT_SPEC, "'.3f', '.6f', '017.6f' (width <= 99, up to 99 decimals, 'f')"),
    "frame": (_INT_SPEC, "'06d', '6', 'd' (a width <= 99)"),
    "record_id": (None, "none"),
    "content": (None, "none"),
    "ext": (None, "none"),
}


def path_safe(name: str) -> str:
    """One path component for a record id or content name; different names never collide.

    Safe characters (letters, digits, ``. _ + @ = -``) stay; every other character is
    percent-encoded as its UTF-8 bytes, and so is a leading dot (no hidden files, never ``.``
    or ``..``). A result longer than 96 characters is cut to a prefix plus ``~`` and a hash of
    the whole name. The empty name becomes ``%``.
    """
    encoded = "".join(
        ch
        if _SAFE_CHARS.fullmatch(ch) and not (i == 0 and ch == ".")
        else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for i, ch in enumerate(name)
    )
    if not encoded:
        return "%"
    if len(encoded) <= _MAX_SAFE_CHARS:
        return encoded
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{encoded[: _MAX_SAFE_CHARS - 17]}~{digest}"


def check_template(template: str) -> None:
    """Validate an image name template completely (see the module docstring).

    Raises:
        ConfigError: an unknown field, a conversion, a format spec other than the allowed ones,
            nesting, no time field, or a name that is absolute, empty or climbs with ``..``.
    """
    allowed = ", ".join(TEMPLATE_FIELDS)
    if not isinstance(template, str) or not template:
        raise ConfigError(f"name template must be a non-empty string; fields: {allowed}")
    if "\x00" in template or len(template) > 1024:
        raise ConfigError("name template must be at most 1024 characters, without NUL")
    try:
        parts = list(Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"name template {template!r} is not a valid template: {e}") from e
    names: set[str] = set()
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            raise ConfigError(
                f"name template {template!r} uses {{{field}}}: only plain fields are allowed "
                f"(no attributes, indexes or positions): {allowed}"
            )
        if conversion is not None:
            raise ConfigError(
                f"name template {template!r}: conversions such as {{{field}!{conversion}}} "
                "are not allowed"
            )
        pattern, shown = _SPEC_RULES[field]
        if spec and (pattern is None or not pattern.fullmatch(spec)):
            raise ConfigError(
                f"name template {template!r}: format spec {spec!r} of {{{field}}} is not "
                f"allowed; allowed for {field}: {shown}"
            )
        names.add(field)
    if not names & set(TIME_FIELDS):
        raise ConfigError(
            f"name template {template!r} must contain {{timestamp}}, {{grid_time}} or {{frame}} "
            "so that the images of one recording get distinct names"
        )
    sample = render_name(
        template, record_id="r", content="c", timestamp=1.5, grid_time=1.5, frame=1, ext="jpg"
    )
    parts_of_name = sample.split("/")
    if sample.startswith("/") or any(p in ("", ".", "..") for p in parts_of_name):
        raise ConfigError(
            f"name template {template!r} gives {sample!r}: names must be relative to --out, "
            "without empty, '.' or '..' parts"
        )


def render_name(template: str, **fields: Any) -> str:
    """Format a template validated by `check_template` (fields already path-safe)."""
    return template.format(**fields)


class _PatternFormatter(Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return "\x00" if value is _TIME else super().format_field(value, format_spec)


_TIME = object()


def name_pattern(template: str, *, record_id: str, content: str, ext: str) -> str:
    """The names a template gives one recording's content, with every time field as ``\\0``.

    Two (record, content, template) triples whose patterns are equal write the same image names;
    `framefleet.media.ownership` keys the owner of a set of names by this pattern.
    """
    return _PatternFormatter().format(
        template,
        record_id=path_safe(record_id),
        content=path_safe(content),
        ext=ext,
        **dict.fromkeys(TIME_FIELDS, _TIME),
    )


def check_name_lengths(template: str, fields: Mapping[str, Any]) -> None:
    """Refuse a name with a component longer than the file system allows, before writing.

    Raises:
        ConfigError: which component, how long, and what to do.
    """
    name = render_name(template, **fields)
    for part in name.split("/"):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_COMPONENT_BYTES:
            raise ConfigError(
                f"image name part {part[:40]!r}... is {size} bytes, more than the "
                f"{MAX_COMPONENT_BYTES} a file name may have; shorten --name-template"
            )


def bound_text(seconds: float | None) -> str:
    """A segment bound in a manifest name: exact (shortest round-trip), ``end`` for open."""
    return "end" if seconds is None else repr(float(seconds))


def manifest_name(
    record_id: str, content: str, start_seconds: float, end_seconds: float | None, identity: str
) -> str:
    """Where a segment's manifest lives, relative to the output root."""
    return (
        f"{MANIFESTS_DIR}/{path_safe(record_id)}/{path_safe(content)}/"
        f"{bound_text(start_seconds)}-{bound_text(end_seconds)}.{identity}.jsonl"
    )
