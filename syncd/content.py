"""How a file's bytes become a store document, and back, byte-exact.

The raw text is the truth and is kept as it is (CRLF, BOM, no final newline). Parsed
structure (a JSON/YAML value, markdown front matter) rides along for queries; it is
derived, best-effort, and never used to rebuild the file.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import re
from dataclasses import dataclass

import yaml

FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}


@dataclass(frozen=True)
class FilePolicy:
    max_size: int = 10 * 1024 * 1024
    binary: str = "skip"  # skip | base64


class Unsupported(Exception):
    """A file the policy leaves alone; the message names it and the setting to change.

    `cause`, when given, says it is not a setting but a problem to fix (a file that cannot be
    read, a change the store refused): `sync --once` then exits non-zero, the daemon is
    degraded."""

    def __init__(self, path: str, message: str, cause: str | None = None):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.cause = cause


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


def check_size(path: str, size: int, policy: FilePolicy) -> None:
    if size > policy.max_size:
        raise Unsupported(path, f"{_mib(size)} is over files.max_size ({_mib(policy.max_size)}); "
                                "skipped (raise files.max_size to sync it)")


def _format(path: str) -> str:
    dot = path.rfind(".")
    return FORMATS.get(path[dot:].lower(), "text") if dot > path.rfind("/") else "text"


_SURROGATE = re.compile("[\ud800-\udfff]")

# YAML aliases make shared references: a small file can stand for an exponentially large
# value ("billion laughs"). Past this many nodes the value is not carried.
MAX_NODES = 100_000


def _json_safe(value, budget: list[int]):
    """The value as plain JSON, or ValueError: YAML has dates, sets, odd keys and NaN."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"more than {MAX_NODES} values")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL in a string")
        if _SURROGATE.search(value):  # a "\ud800" escape: PostgreSQL refuses it, UTF-8 cannot hold it
            raise ValueError("a lone surrogate in a string")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, list):
        return [_json_safe(v, budget) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str):
                key = _json_safe(key, budget)
            elif key is None or isinstance(key, (bool, int, float)):
                key = json.dumps(key)  # YAML's 1: and null: keys, as JSON spells them
            else:
                raise ValueError("a key that is not a scalar")
            out[key] = _json_safe(item, budget)
        return out
    raise ValueError(f"a {type(value).__name__} value")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# "---" on the first line (after an optional BOM), the YAML, then a line of "---"
_FRONT_MATTER = re.compile(r"\A\ufeff?---\r?\n(.*?)^---[ \t]*\r?$", re.DOTALL | re.MULTILINE)


def _parsed(fmt: str, text: str) -> dict:
    """The derived fields for a format: nothing when there is nothing (or it does not parse)."""
    try:
        if fmt == "json":
            return {"value": _json_safe(json.loads(text.removeprefix("\ufeff"), parse_constant=_reject_constant),
                                        [MAX_NODES])}
        if fmt == "yaml":
            return {"value": _json_safe(yaml.safe_load(text), [MAX_NODES])}
        if fmt == "markdown":
            block = _FRONT_MATTER.match(text)
            if block:
                meta = yaml.safe_load(block[1])
                if isinstance(meta, dict):
                    return {"front_matter": _json_safe(meta, [MAX_NODES])}
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        return {"parse_error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}
    return {}


def as_text(path: str, data: bytes, policy: FilePolicy) -> str | None:
    """The text of a file, None for a binary one the policy stores encoded; else Unsupported."""
    check_size(path, len(data), policy)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # PostgreSQL text and jsonb cannot hold U+0000
        if policy.binary != "base64":
            raise Unsupported(path, "not UTF-8 text; skipped (set files.binary: base64 to sync it)")
        return None
    return text


def encode(path: str, data: bytes, policy: FilePolicy) -> dict:
    """The JSONB content of a document; raises Unsupported when the policy skips the file."""
    text = as_text(path, data, policy)
    if text is None:
        return {"encoding": "base64", "format": "binary", "data": base64.b64encode(data).decode("ascii")}
    fmt = _format(path)
    return {"encoding": "utf-8", "format": fmt, "text": text, **_parsed(fmt, text)}


# canonical base64: what `encode` writes, and all the store accepts (0015)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def decode(content: object) -> bytes:
    """The bytes of a document content; ValueError for any content that does not match
    the document schema (a version written past the store's checks must not stop a pass)."""
    if not isinstance(content, dict):
        raise ValueError(f"content is a {type(content).__name__}, not an object")
    encoding = content.get("encoding")
    if encoding == "utf-8":
        if not isinstance(content.get("text"), str):
            raise ValueError(f"utf-8 content whose text is a {type(content.get('text')).__name__}")
        return content["text"].encode("utf-8")
    if encoding == "base64":
        data = content.get("data")
        if not isinstance(data, str) or not _BASE64.fullmatch(data):
            raise ValueError("base64 content whose data is not canonical base64")
        return base64.b64decode(data, validate=True)
    raise ValueError(f"unknown document encoding {encoding!r}")
