"""Database URLs read without importing psycopg when they are plain (its import is a
seventh of `syncd status`'s instructions at 10k files, and status checks the config's URL
but connects to nothing)."""
from __future__ import annotations

import re

# A URL, or `key=value` pairs of the usual keys, of only characters libpq takes as they
# are: no percent-escapes or quotes, no query, one host. Anything else is libpq's own
# parser's to read, through psycopg.
_PLAIN = re.compile(r"postgres(?:ql)?://(?:(?P<user>[A-Za-z0-9._-]+)(?::(?P<password>[A-Za-z0-9._~-]*))?@)?"
                    r"(?:(?P<host>[A-Za-z0-9.-]+)|\[(?P<ipv6>[0-9A-Fa-f:]+)\])?(?::(?P<port>[0-9]{1,5}))?"
                    r"(?:/(?P<dbname>[A-Za-z0-9._-]*))?")
_PLAIN_PAIRS = re.compile(r"(?:\s*(?:host|port|dbname|user|password)=[A-Za-z0-9._/-]+)+\s*")
_PAIR = re.compile(r"(\w+)=(\S+)")


def conninfo(dsn: str) -> dict[str, str]:
    """What libpq reads in a connection string; ValueError (libpq's reason) when it is none."""
    plain = _PLAIN.fullmatch(dsn)
    if plain:
        parts = {**plain.groupdict(), "host": plain["host"] or plain["ipv6"]}
        return {k: v for k, v in parts.items() if v and k != "ipv6"}
    if _PLAIN_PAIRS.fullmatch(dsn):
        return dict(_PAIR.findall(dsn))
    import psycopg.conninfo
    try:
        return psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ValueError(str(exc).strip()) from None


def describe_dsn(dsn: str) -> str:
    """`dbname@host:port`, for messages: never the password."""
    try:
        info = conninfo(dsn)
    except ValueError:
        return "the configured database"
    return f"{info.get('dbname') or info.get('user') or ''}@{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
