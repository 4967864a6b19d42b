"""Three-way merge of one document's bytes.

When both sides changed a path since the last synced base, most edits do not overlap:
merging them settles the path without holding a conflict for a person to resolve. Text
goes through `git merge-file`, the merge people already trust. JSON and YAML are merged
as values too, because a line merge can be clean and still wrong there (a key added twice,
a missing comma) or conflict where the values do not (two keys added at the end).
"""
from __future__ import annotations

import codecs
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import yaml

from syncd.content import FORMATS, MAX_NODES, Entry, file_entry


@dataclass(frozen=True)
class MergeResult:
    content: bytes | None  # the merged bytes when the merge is clean, else None
    marked: bytes  # what to give a user to edit: the clean result, or text with conflict markers
    how: str  # "text" (git merge-file), "structure" (JSON/YAML value merge), or "none"

    @property
    def clean(self) -> bool:
        return self.content is not None


def merge3(path: str, base: bytes | None, local: bytes, remote: bytes,
           labels: tuple[str, str, str] = ("local", "base", "remote"), diff3: bool = False) -> MergeResult:
    """Merge both sides' changes; `base` None means both sides created the path."""
    if any(_is_binary(data) for data in (base or b"", local, remote)):
        return MergeResult(None, local, "none")
    text, conflicts = _merge_file(base or b"", local, remote, labels, diff3)
    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt in ("json", "yaml"):
        try:
            result = _merge_structure(fmt, base, local, remote, text, conflicts == 0)
        except RecursionError:  # nested deeper than we can walk: judge it as text
            result = None
        if result is not None:
            return result
    if conflicts:
        return MergeResult(None, text, "none")
    return MergeResult(text, text, "text")


def merge_entries(path: str, ancestor: Entry | None, ours: Entry, theirs: Entry) -> tuple[Entry, str] | None:
    """Both sides' changes in one entry and how they were merged, or None when they do not
    merge cleanly. Only text files merge (a blob or a link never does, as in Git); the
    executable bit merges three-way, as one more line would."""
    if not all(e.inline for e in (ancestor, ours, theirs) if e is not None):
        return None
    result = merge3(path, ancestor.data if ancestor else None, ours.data, theirs.data)
    if not result.clean:
        return None
    base_mode = ancestor.executable if ancestor else ours.executable
    executable = theirs.executable if ours.executable == base_mode else ours.executable
    return file_entry(result.content, executable), result.how


def has_markers(data: bytes) -> bool:
    """Whether the bytes hold a git conflict block; a lone "=======" is a markdown heading."""
    stage = 0
    for line in data.split(b"\n"):
        line = line.removesuffix(b"\r")
        if stage == 0 and (line == b"<<<<<<<" or line.startswith(b"<<<<<<< ")):
            stage = 1
        elif stage == 1 and line == b"=======":
            stage = 2
        elif stage == 2 and line.startswith(b">>>>>>> "):
            return True
    return False


def _is_binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _merge_file(base: bytes, local: bytes, remote: bytes, labels: tuple[str, str, str],
                diff3: bool) -> tuple[bytes, int]:
    """git merge-file's output and its number of conflicts."""
    with tempfile.TemporaryDirectory(prefix="syncd-merge-") as tmp:
        files = []
        for name, data in (("local", local), ("base", base), ("remote", remote)):
            file = os.path.join(tmp, name)
            with open(file, "wb") as out:
                out.write(data)
            files.append(file)
        # newer git reads merge.conflictStyle in merge-file: a user's zdiff3 must not leak in
        command = ["git", "-c", "merge.conflictStyle=merge", "merge-file", "-p",
                   "-L", labels[0], "-L", labels[1], "-L", labels[2]]
        if diff3:
            command.append("--diff3")
        import git  # GitPython is slow to import: only a merge pays for it
        status, stdout, stderr = git.Git(tmp).execute(
            [*command, *files], with_extended_output=True, with_exceptions=False,
            stdout_as_string=False, strip_newline_in_stdout=False)
    if status < 0 or status >= 128:
        raise RuntimeError(f"git merge-file failed ({status}): {stderr}")
    return stdout, status


class _Conflict(Exception):
    """Both sides changed one value differently."""


_ABSENT = object()  # a key missing from one side's mapping
_INVALID = object()  # a side that does not parse


def _merge_structure(fmt: str, base: bytes | None, local: bytes, remote: bytes,
                     text: bytes, text_clean: bool) -> MergeResult | None:
    """The value merge of a JSON/YAML document; None when a side does not parse.

    `text` is git's result; a clean one that means the merged value is kept as it is, for
    it keeps the user's formatting. Otherwise it is what a user edits to settle a conflict.
    """
    parse = _parse_json if fmt == "json" else _parse_yaml
    ours, theirs = _parsed(parse, local), _parsed(parse, remote)
    if base is None:
        ancestor = {} if isinstance(ours, dict) and isinstance(theirs, dict) else _ABSENT
    else:
        ancestor = _parsed(parse, base)
    if _INVALID in (ancestor, ours, theirs):
        return None
    try:
        value = _merge_value(ancestor, ours, theirs)
    except _Conflict:
        return MergeResult(None, text, "none")
    if text_clean and _same(_parsed(parse, text), value):
        return MergeResult(text, text, "text")
    if fmt == "yaml":
        if any(data is not None and _COMMENT.search(data) for data in (base, local, remote)):
            return MergeResult(None, text, "none")  # serializing would drop the comments
        serialized = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)
    else:
        serialized = json.dumps(value, indent=_indent(local), ensure_ascii=False)
    try:
        content = _like(local, serialized)
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape
        return MergeResult(None, text, "none")
    if not _same(_parsed(parse, content), value):
        return MergeResult(None, text, "none")
    return MergeResult(content, content, "structure")


def _merge_value(base: Any, local: Any, remote: Any) -> Any:
    """Mappings merge key by key; anything else is one value either side replaces."""
    if _same(local, remote):
        return local
    if _same(local, base):
        return remote
    if _same(remote, base):
        return local
    if isinstance(local, dict) and isinstance(remote, dict):
        return _merge_mapping(base if isinstance(base, dict) else {}, local, remote)
    raise _Conflict


def _merge_mapping(base: dict, local: dict, remote: dict) -> dict:
    """Keys in local's order, then the keys new from remote in remote's."""
    merged = {}
    for key in [*local, *(key for key in remote if key not in local)]:
        value = _merge_value(base.get(key, _ABSENT), local.get(key, _ABSENT), remote.get(key, _ABSENT))
        if value is not _ABSENT:
            merged[key] = value
    return merged


def _same(a: Any, b: Any) -> bool:
    """Equal as document values: 1, 1.0 and true are different edits, though Python's == says not."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(item, b[key]) for key, item in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)  # YAML's .nan equals itself, -0.0 is an edit of 0.0
    return a == b


def _parsed(parse: Callable[[str], Any], data: bytes) -> Any:
    try:
        value = parse(data.decode("utf-8"))
    except (ValueError, yaml.YAMLError, RecursionError):
        return _INVALID
    return _INVALID if _too_big(value) else value


def _parse_json(text: str) -> Any:
    return json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_unique_keys,
                      parse_constant=_reject_constant)


def _parse_yaml(text: str) -> Any:
    return yaml.safe_load(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A key given twice means one value is silently dropped: not a value we can merge."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate key")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_big(value: Any) -> bool:
    """YAML aliases let a small file stand for a huge (or endless) value: "billion laughs"."""
    stack, left = [value], MAX_NODES
    while stack:
        left -= 1
        if left < 0:
            return True
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


# a line that starts with "#", or " #" inside a line: conservative, "a #b" strings count too
_COMMENT = re.compile(rb"(?:^|[ \t])#", re.MULTILINE)
_INDENT = re.compile(r"^([ \t]+)\S", re.MULTILINE)


def _indent(local: bytes) -> int | str:
    """The local file's indentation, for a serialized JSON value to look like it."""
    found = _INDENT.search(local.decode("utf-8"))
    if found is None:
        return 2
    return "\t" if found[1].startswith("\t") else len(found[1])


def _like(local: bytes, serialized: str) -> bytes:
    """Serialized text in the local file's conventions: final newline, CRLF, BOM."""
    text = serialized.removesuffix("\n")
    if local.endswith(b"\n"):
        text += "\n"
    if b"\r\n" in local:
        text = text.replace("\n", "\r\n")
    if local.startswith(codecs.BOM_UTF8):
        text = "\ufeff" + text
    return text.encode("utf-8")
