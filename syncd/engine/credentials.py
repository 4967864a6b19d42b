"""Credentials found by content: private keys and tokens of formats exact enough to name.

Checked before a file goes to the store, so a key pasted into notes.md, or a service-account
JSON under the name the console gave it, never leaves the machine. Only exact formats count
(a PEM block with its body, a token's fixed prefix and length): guesses by entropy or by
keywords would hold ordinary documents, which are full of hashes, ids and base64 images.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int


# The header, its header lines (Proc-Type:, Version: ...) and then the base64 body, on real
# lines or on a JSON string's escaped ones: a document that only names the header (a
# how-to, a redacted example) holds no key.
_NL = rb"(?:\r?\n|\\n)"
_PEM = (rb"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----" + _NL
        + rb"(?:[A-Za-z-]+: [^\r\n\\]*" + _NL + rb")*" + _NL + rb"?[A-Za-z0-9+/]{40}")


@dataclass(frozen=True)
class _Kind:
    name: str
    anchors: tuple[bytes, ...]  # literals a match holds: a file without any is not searched
    pattern: re.Pattern
    standalone: bool = True  # a token of its own (see `_token`), not part of a key block
    block: bool = False  # a key's encoded body, where runs like AAAAAA are real
    valid: Callable[[bytes], bool] = lambda match: True


def _service_role(token: bytes) -> bool:
    """A JWT whose claims give it the service role (a Supabase anon key is public)."""
    payload = token.split(b".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(claims, dict) and claims.get("role") == "service_role"


def _kind(name: str, anchors: str, pattern: bytes, **how) -> _Kind:
    return _Kind(name, tuple(a.encode() for a in anchors.split()), re.compile(pattern), **how)


_KINDS = (
    _kind("a Google Cloud service-account key", '"private_key"', rb'"private_key"\s*:\s*"' + _PEM,
          standalone=False, block=True),
    _kind("a private key", "PRIVATE", _PEM, standalone=False, block=True),
    _kind("a PuTTY private key", "PuTTY-User-Key-File-", rb"PuTTY-User-Key-File-\d: ", standalone=False, block=True),
    _kind("an AWS access key id", "AKIA ASIA ABIA ACCA", rb"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"),
    _kind("an AWS secret access key", "ecret ECRET",
          rb"(?:aws|AWS|Aws)_?(?:secret|SECRET|Secret)_?(?:access|ACCESS|Access)_?(?:key|KEY|Key)"
          rb"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])", standalone=False),
    _kind("an Azure storage account key", "AccountKey=", rb"AccountKey=[A-Za-z0-9+/]{86}==",
          standalone=False),
    _kind("a GitHub token", "ghp_ gho_ ghu_ ghs_ ghr_ github_pat_",
          rb"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"),
    _kind("a GitLab token", "glpat- gldt- glft- glsoat- glrt- glcbt- glptt- gloas-",
          rb"gl(?:pat|dt|ft|soat|rt|cbt|ptt|oas)-[A-Za-z0-9_\-]{20,}"),
    _kind("a Slack token", "xox xapp-",
          rb"(?:xox[abposre]-(?:[0-9]+-)+[0-9A-Za-z]+|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)"),
    _kind("a Slack webhook", "hooks.slack.com",
          rb"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/]{20,}", standalone=False),
    _kind("a Stripe secret key", "k_live_", rb"[rs]k_live_[0-9A-Za-z]{24,}"),
    _kind("a Google API key", "AIza", rb"AIza[0-9A-Za-z_\-]{35}"),
    _kind("an npm token", "npm_", rb"npm_[A-Za-z0-9]{36}"),
    _kind("a PyPI token", "pypi-AgE", rb"pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_\-]{50,}"),
    _kind("an OpenAI API key", "T3BlbkFJ",
          rb"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"),
    _kind("an Anthropic API key", "sk-ant-", rb"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{80,}"),
    _kind("a SendGrid API key", "SG.", rb"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"),
    _kind("a Hugging Face token", "hf_", rb"hf_[A-Za-z0-9]{34}"),
    _kind("a Supabase secret key", "sb_secret_", rb"sb_secret_[A-Za-z0-9_\-]{20,}"),
    _kind("a Supabase service-role key", "eyJ",
          rb"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{20,}", valid=_service_role),
)
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# What templates (.env.example) and docs put where a secret goes: ghp_xxxx..., AWS's own
# AKIAIOSFODNN7EXAMPLE and ...EXAMPLEKEY, T00000000, sb_secret_your_key_here. A random
# token holds none of these (six equal characters, or one of these words between
# separators, which base62 bodies never have and base64url ones about once in 10^8).
_PLACEHOLDER = re.compile(rb"(.)\1{5}|EXAMPLE|(?:^|[_\-])(?i:your|example|replace|changeme|placeholder|dummy|fake"
                          rb"|redacted|insert|here)(?:[_\-]|$)")


def _token(data: bytes, start: int, end: int) -> bool:
    """A token stands alone (not the middle of a hash, an id, base64)."""
    return ((start == 0 or data[start - 1] not in _TOKEN_CHARS)
            and (end == len(data) or data[end] not in _TOKEN_CHARS))


def _placeholder(kind: _Kind, token: bytes) -> bool:
    """A template's stand-in, not a secret (a key block's body is never one: see `block`)."""
    return not kind.block and _PLACEHOLDER.search(token) is not None


def _first(kind: _Kind, data: bytes) -> int | None:
    """Where the first credential of this kind starts, or None."""
    if not any(anchor in data for anchor in kind.anchors):
        return None
    for match in kind.pattern.finditer(data):
        if ((not kind.standalone or _token(data, match.start(), match.end())) and kind.valid(match.group())
                and not _placeholder(kind, match.group())):
            return match.start()
    return None


def find(data: bytes) -> Finding | None:
    """The first credential in the file's bytes (the earliest, of any kind), or None."""
    found = [(start, kind.name) for kind in _KINDS if (start := _first(kind, data)) is not None]
    if not found:
        return None
    start, name = min(found)
    return Finding(name, data.count(b"\n", 0, start) + 1)


def held(path: str, data: bytes, allowed: Callable[[str], bool], commit: str | None = None) -> str | None:
    """Why the file's content stays here: one line naming the file, what is in it and where
    (never the secret) and the way out; None when it may go (nothing found, or allowed)."""
    finding = find(data)
    if finding is None or allowed(path):
        return None
    where = f"line {finding.line}" + (f" in commit {commit[:12]}" if commit else "")
    return (f"{path}: holds {finding.kind} ({where}); not synced. If it is meant to sync: "
            f"syncd allow {path} (or add it to the config's ignore to stop this warning)")
