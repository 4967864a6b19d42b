"""How a file's bytes become a store document, and back, byte-exact.

The raw text is the truth and is kept as it is (CRLF, BOM, no final newline). Parsed
structure (a JSON/YAML value, markdown front matter) rides along for queries; it is
derived, best-effort, and never used to rebuild the file.

The encodings of a document's content (the contract shared with the server, 0019):
* utf-8: text PostgreSQL can hold, inline (`text`, with derived fields);
* base64: the legacy inline form of bytes, still read;
* blob: any other bytes (NUL bytes, not UTF-8, binaries, text too big for one commit),
  named by `sha256` and `size`; the bytes are in the workspace's blob store;
* link: a symbolic link's relative `target`, which stays inside the root.
A file's content may say `"executable": true`. What a version is (the `sha256` that
reconcile, the journal and the stat cache compare) is its entry identity: see `identity`.
"""
from __future__ import annotations

import base64
import codecs
import datetime
import hashlib
import json
import math
import re
from dataclasses import dataclass, replace

import yaml

FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}


# Text beyond this size is a blob too: a commit call carries at most 64 MiB and holds the
# workspace lock while it runs, and a blob moves in chunks outside it.
TEXT_MAX = 8 * 1024 * 1024


@dataclass(frozen=True)
class FilePolicy:
    max_size: int = 100 * 1024 * 1024
    binary: str = "sync"  # sync (as blobs) | skip


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


def identity(bytes_sha256: str, *, executable: bool = False, link: bool = False) -> str:
    """What a version is, as Git tells entries apart: a plain file is the sha256 of its
    bytes (so every hash stored before modes existed stays valid); an executable file or a
    link hashes its mode with it, so a mode change alone is a new version."""
    if link:
        return sha256_hex(b"120000 " + bytes_sha256.encode("ascii"))
    if executable:
        return sha256_hex(b"100755 " + bytes_sha256.encode("ascii"))
    return bytes_sha256


class TextCheck:
    """Fed a file's bytes piece by piece: whether they are text PostgreSQL can hold."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.reason: str | None = None  # why not, once known

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self.reason is not None:
            return
        if b"\x00" in chunk:  # valid UTF-8, but PostgreSQL text and jsonb cannot hold U+0000
            self.reason = "contains NUL bytes"
            return
        try:
            self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            self.reason = "not UTF-8"


def not_text(data: bytes) -> str | None:
    """Why the bytes cannot be a utf-8 content ("contains NUL bytes", "not UTF-8"), or None."""
    check = TextCheck()
    check.feed(data, final=True)
    return check.reason


@dataclass(frozen=True)
class Entry:
    """What a version holds at its path: a file's bytes and mode, or a link's target.

    `data` holds the bytes when they are at hand (text-sized files, a link's target, what
    the store sent inline); else they stream: from the file at `source` (a path under the
    root) or from the blob store."""
    digest: str  # sha256 of the bytes (of the target's UTF-8 for a link)
    size: int
    executable: bool = False
    link: bool = False
    data: bytes | None = None
    not_text: str | None = None  # why the bytes are no utf-8 content; None: they are text
    source: str | None = None

    @property
    def identity(self) -> str:
        return identity(self.digest, executable=self.executable, link=self.link)

    @property
    def target(self) -> str:
        return self.data.decode("utf-8")

    @property
    def inline(self) -> bool:
        """Whether a content carries these bytes as text (else: a blob, or a link)."""
        return not self.link and self.not_text is None and self.size <= TEXT_MAX and self.data is not None


def file_entry(data: bytes, executable: bool = False) -> Entry:
    return Entry(sha256_hex(data), len(data), executable, data=data, not_text=not_text(data))


def link_entry(target: str) -> Entry:
    data = target.encode("utf-8")
    return Entry(sha256_hex(data), len(data), link=True, data=data)


def link_problem(path: str, target: str) -> str | None:
    """Why a link at `path` pointing at `target` is not synced, or None: the target must be
    relative and stay inside the root by its own words, without following anything."""
    if not target or "\x00" in target:
        return "a symbolic link with an empty target"
    if target.startswith("/"):
        return f"a symbolic link to an absolute path ({target})"
    parts = [p for p in target.split("/") if p not in ("", ".")]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    if any(p == ".." for p in parts[ups:]) or not parts[ups:]:
        # "a/../b" could leave the root through a link named a; ".." alone names a directory
        return f"a symbolic link whose target {target!r} is not a plain relative path"
    if ups > path.count("/"):
        return f"a symbolic link pointing outside the sync root ({target})"
    return None


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


def check_kind(path: str, entry: Entry, policy: FilePolicy) -> None:
    """Unsupported when the policy leaves such an entry alone (its size, `files.binary: skip`)."""
    if not entry.link:
        check_size(path, entry.size, policy)
    if entry.not_text is not None and policy.binary == "skip":
        raise Unsupported(path, f"{entry.not_text}; skipped because files.binary: skip "
                                "(remove that setting to sync it as bytes)")


def encode_entry(path: str, entry: Entry, policy: FilePolicy) -> dict:
    """The JSONB content of a version; Unsupported when the policy skips it. A blob's bytes
    are not in it: the caller puts them in the blob store before committing."""
    check_kind(path, entry, policy)
    if entry.link:
        return {"encoding": "link", "format": "link", "target": entry.target}
    mode = {"executable": True} if entry.executable else {}
    if not entry.inline:
        return {"encoding": "blob", "format": "binary", "sha256": entry.digest, "size": entry.size, **mode}
    text = entry.data.decode("utf-8")
    fmt = _format(path)
    return {"encoding": "utf-8", "format": fmt, "text": text, **_parsed(fmt, text), **mode}


def encode(path: str, data: bytes, policy: FilePolicy, executable: bool = False) -> dict:
    """The content of a file with these bytes (see `encode_entry`)."""
    return encode_entry(path, file_entry(data, executable), policy)


# canonical base64: what `encode` writes, and all the store accepts (0015)
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


_SHA256 = re.compile(r"[0-9a-f]{64}")


def decode_entry(content: object) -> Entry:
    """The entry a document content describes (a blob's without its bytes: they are in the
    blob store); ValueError for any content that does not match the document schema (a
    version written past the store's checks must not stop a pass)."""
    if not isinstance(content, dict):
        raise ValueError(f"content is a {type(content).__name__}, not an object")
    encoding = content.get("encoding")
    executable = content.get("executable", False) is True
    if encoding == "link":
        target = content.get("target")
        if not isinstance(target, str) or not target:
            raise ValueError("link content without a target")
        return link_entry(target)
    if encoding == "blob":
        digest, size = content.get("sha256"), content.get("size")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError("blob content whose sha256 is not 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("blob content whose size is not a byte count")
        return Entry(digest, size, executable, not_text="binary")
    return replace(file_entry(decode(content)), executable=executable)


def decode(content: object) -> bytes:
    """The bytes of an inline document content (utf-8, base64; a link's target); ValueError
    for a blob (see `decode_entry`) or any content that does not match the document schema."""
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
    if encoding == "link" and isinstance(content.get("target"), str):
        return content["target"].encode("utf-8")
    if encoding == "blob":
        raise ValueError("blob content: its bytes are in the blob store")
    raise ValueError(f"unknown document encoding {encoding!r}")
