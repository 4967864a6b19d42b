"""The working copy's configuration: one YAML file per working copy.

Several working copies can live side by side on one machine, each with its own config
file; the journal of each is kept under the XDG state directory, keyed by the config path,
so it is never inside the synced tree.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import platformdirs
import yaml

from syncd.content import FilePolicy
from syncd.engine.policy import DeleteLimits, Policy

ENV_CONFIG = "SYNCD_CONFIG"
ENV_DATABASE_URL = "SYNCD_DATABASE_URL"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class ConfigError(ValueError):
    """A config problem, with the file and key named."""


def default_config_path() -> Path:
    return platformdirs.user_config_path("syncd") / "syncd.yaml"


@dataclass(frozen=True)
class DaemonSettings:
    debounce: float = 0.03  # quiet period after the last local change before a pass (an editor's save dance takes less)
    max_delay: float = 5.0  # a pass happens this long after a change even if changes keep coming
    rescan_interval: float = 300.0  # full rescan when the watcher reported nothing
    poll_interval: float = 30.0  # pull the feed even without a notification
    dashboard: bool = False  # serve `syncd dashboard` from inside `syncd run`
    dashboard_port: int = 0  # its port on 127.0.0.1; 0: a free one


@dataclass(frozen=True)
class GitMirror:
    """Where the Git mirror records the versions each pass moves."""
    mode: str = "ref"  # ref: a branch of its own, nothing else touched | branch: the checked-out one | off
    branch: str = "syncd/mirror"
    repository: Path | None = None  # default: the repository the root is in (if any)
    push_remote: str | None = None
    push_interval: float = 300.0


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    workspace: str
    database_url: str | None
    device_name: str
    supabase_url: str | None = None
    supabase_anon_key: str | None = None  # public (every web client ships it); sign-in needs it
    ignore: tuple[str, ...] = ()
    gitignore: bool = True  # the repository's own ignore rules apply, where the root is in one
    layout_roots: tuple[str, ...] | None = None  # further project roots; None: the config names none
    files: FilePolicy = field(default_factory=FilePolicy)
    state_dir: Path | None = None
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    deletes: DeleteLimits = field(default_factory=DeleteLimits)
    merge: tuple[tuple[str, str], ...] = ()  # (glob, policy), first match wins
    git: GitMirror = field(default_factory=lambda: GitMirror())

    @property
    def journal_path(self) -> Path:
        return self.state_directory / "journal.sqlite3"

    @property
    def state_directory(self) -> Path:
        return self.state_dir if self.state_dir is not None else default_state_directory(self.path)


def default_state_directory(config_path: Path) -> Path:
    """Where a config's journal and log live unless it sets `state_dir`: also where an error
    is logged when the config cannot be read."""
    key = hashlib.sha256(str(Path(config_path).resolve()).encode()).hexdigest()[:10]
    return platformdirs.user_state_path("syncd") / f"{Path(config_path).stem}-{key}"


def parse_size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size (e.g. 10485760, 512KiB, 10MiB)")
    return int(float(m[1]) * _UNITS[(m[2] or "")[:1].lower()])


def check_workspace(slug: str, where: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", slug):
        raise ConfigError(f"{where}: key 'workspace': {slug!r} must be lowercase letters, digits, "
                          "'.', '_' or '-' (at most 63)")
    return slug


def _yaml_position(exc: yaml.YAMLError) -> str:
    """Where and what PyYAML found, on one line (its own message spans several)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None)
    return where + (f": {problem}" if problem else "")


def load(path: Path) -> Config:
    path = Path(path).expanduser()
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such config file; create one with `syncd init ROOT --workspace SLUG`") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror}); check that it is a readable file, or "
                          "name another with --config") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text; is it the right file?") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML{_yaml_position(exc)}; fix it, or move it away and run "
                          "`syncd init` again") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings at the top level")

    def need(key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: key '{key}' is required and must be a non-empty string")
        return value

    known = {"root", "workspace", "database_url", "supabase_url", "supabase_anon_key", "device_name", "ignore", "files", "state_dir",
             "daemon", "deletes", "merge", "git", "layout"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")

    root = Path(need("root")).expanduser()
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    workspace = check_workspace(need("workspace"), where)

    database_url = os.environ.get(ENV_DATABASE_URL) or raw.get("database_url")
    if database_url is not None and not isinstance(database_url, str):
        raise ConfigError(f"{where}: key 'database_url' must be a string")
    if database_url:
        check_database_url(database_url, f"{where}: key 'database_url'")
    supabase_url = raw.get("supabase_url")
    if supabase_url is not None and (not isinstance(supabase_url, str) or not re.match(r"https?://", supabase_url)):
        raise ConfigError(f"{where}: key 'supabase_url' must be the project's URL, https://<ref>.supabase.co")
    if supabase_url and database_url:
        raise ConfigError(f"{where}: set database_url or supabase_url, not both")

    ignore, gitignore = _ignore(raw.get("ignore"), where)

    files_raw = raw.get("files") or {}
    if not isinstance(files_raw, dict):
        raise ConfigError(f"{where}: key 'files' must be a mapping (max_size, binary)")
    policy = FilePolicy()
    try:
        max_size = parse_size(files_raw.get("max_size", policy.max_size))
    except ValueError as exc:
        raise ConfigError(f"{where}: key 'files.max_size': {exc}") from None
    binary = files_raw.get("binary", policy.binary)
    if binary == "base64":  # the spelling before blobs: it asked for binaries to sync, as now they do
        binary = "sync"
    if binary not in ("skip", "sync"):
        raise ConfigError(f"{where}: key 'files.binary' must be 'sync' or 'skip', not {binary!r}")

    daemon = DaemonSettings(**_numbers(raw, "daemon", DaemonSettings(), where))
    if daemon.dashboard_port > 65535:
        raise ConfigError(f"{where}: key 'daemon.dashboard_port' is a TCP port, up to 65535 (0: a free one)")
    deletes = DeleteLimits(**_numbers(raw, "deletes", DeleteLimits(), where))
    if deletes.max_share > 1:
        raise ConfigError(f"{where}: key 'deletes.max_share' is a fraction of the tree, from 0 to 1")

    merge = raw.get("merge") or {}
    choices = [p.value for p in Policy]
    if not isinstance(merge, dict) or not all(isinstance(g, str) for g in merge):
        raise ConfigError(f"{where}: key 'merge' must map glob patterns to one of: {', '.join(choices)}")
    for glob, name in merge.items():
        if name not in choices:
            raise ConfigError(f"{where}: key 'merge.{glob}': {name!r} is not one of: {', '.join(choices)}")

    git = _git_mirror(raw.get("git"), path, where)
    layout_roots = _layout_roots(raw.get("layout"), where)

    state_dir = raw.get("state_dir")
    return Config(
        path=path,
        root=root,
        workspace=workspace,
        database_url=database_url or None,
        supabase_url=supabase_url or None,
        supabase_anon_key=str(raw["supabase_anon_key"]) if raw.get("supabase_anon_key") else None,
        device_name=str(raw.get("device_name") or f"{socket.gethostname()}:{path.stem}"),
        ignore=ignore,
        gitignore=gitignore,
        layout_roots=layout_roots,
        files=FilePolicy(max_size=max_size, binary=binary),
        state_dir=Path(state_dir).expanduser() if state_dir else None,
        daemon=daemon,
        deletes=deletes,
        merge=tuple(merge.items()),
        git=git,
    )


def _ignore(raw: object, where: str) -> tuple[tuple[str, ...], bool]:
    """`ignore: [patterns]`, or `ignore: {patterns: [...], gitignore: false}`."""
    given = raw if isinstance(raw, dict) else {"patterns": raw}
    if set(given) - {"patterns", "gitignore"}:
        raise ConfigError(f"{where}: unknown key 'ignore.{sorted(set(given) - {'patterns', 'gitignore'})[0]}' "
                          "(known: gitignore, patterns)")
    patterns = given.get("patterns") or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        key = "ignore.patterns" if isinstance(raw, dict) else "ignore"
        raise ConfigError(f"{where}: key '{key}' must be a list of gitignore-style patterns")
    gitignore = given.get("gitignore", True)
    if not isinstance(gitignore, bool):
        raise ConfigError(f"{where}: key 'ignore.gitignore' must be true or false")
    return tuple(patterns), gitignore


def _layout_roots(raw: object, where: str) -> tuple[str, ...] | None:
    """`layout: {roots: [docs/projects, ...]}`: directories holding projects, besides
    projects/ and .idse/projects/ (the store checks each and keeps them per workspace)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"roots"}:
        raise ConfigError(f"{where}: key 'layout' must be a mapping with roots (a list of directories)")
    roots = raw.get("roots")
    if roots is None:
        return None
    if not isinstance(roots, list) or not all(isinstance(r, str) and r.strip("/") for r in roots):
        raise ConfigError(f"{where}: key 'layout.roots' must be a list of directories, like [docs/projects]")
    return tuple(roots)


def _git_mirror(raw: object, path: Path, where: str) -> GitMirror:
    if raw is None:
        return GitMirror()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: key 'git' must be a mapping (mirror, branch, repository, push)")
    known = {"mirror", "branch", "repository", "push"}
    if set(raw) - known:
        raise ConfigError(f"{where}: unknown key 'git.{sorted(set(raw) - known)[0]}' (known: {', '.join(sorted(known))})")
    mode = raw.get("mirror", "ref")
    if mode is False:  # YAML reads a bare `off` as false
        mode = "off"
    if mode not in ("ref", "branch", "off"):
        raise ConfigError(f"{where}: key 'git.mirror' must be ref, branch or off, not {mode!r}")
    branch = raw.get("branch", GitMirror.branch)
    if not isinstance(branch, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch) or ".." in branch:
        raise ConfigError(f"{where}: key 'git.branch' must be a branch name like syncd/mirror")
    repository = raw.get("repository")
    if repository is not None:
        repository = Path(str(repository)).expanduser()
        if not repository.is_absolute():
            repository = (path.parent / repository).resolve()
    push = raw.get("push") or {}
    if not isinstance(push, dict) or set(push) - {"remote", "interval"} \
            or not isinstance(push.get("remote", ""), str) \
            or isinstance(push.get("interval", 0), bool) or not isinstance(push.get("interval", 0), (int, float)):
        raise ConfigError(f"{where}: key 'git.push' must be a mapping with remote (a name) and interval (seconds)")
    return GitMirror(mode, branch, repository, push.get("remote") or None,
                     float(push.get("interval", GitMirror.push_interval)))


def _numbers(raw: dict, section: str, defaults, where: str) -> dict:
    """A section of non-negative numbers (and true/false switches), checked against the defaults' fields."""
    given = raw.get(section) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: key '{section}' must be a mapping")
    out = {}
    for key, value in given.items():
        if not hasattr(defaults, key):
            raise ConfigError(f"{where}: unknown key '{section}.{key}' (known: {', '.join(vars(defaults))})")
        kind = type(getattr(defaults, key))
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: key '{section}.{key}' must be true or false")
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                or (kind is int and not isinstance(value, int)):
            raise ConfigError(f"{where}: key '{section}.{key}' must be a non-negative {kind.__name__}")
        out[key] = kind(value)
    return out


TEMPLATE = """\
# Every key is documented in config/syncd.example.yaml.
root: {root}
workspace: {workspace}
{database_line}
# gitignore-style patterns, added to the defaults (.git/, swap files, .env, keys, ...)
ignore: []
files:
  max_size: 100MiB    # larger files are skipped with a warning
  binary: sync        # sync (bytes PostgreSQL text cannot hold, as blobs) | skip
"""


def check_database_url(url: str, where: str) -> str:
    """A PostgreSQL connection string, a URL or `key=value` pairs; anything else is said in
    one line here, before it is written anywhere or handed to libpq."""
    from syncd.store.dsn import conninfo
    fix = "give postgresql://USER@HOST:PORT/DBNAME (or host=HOST dbname=DBNAME ...)"
    scheme = url.split("://", 1)[0] if "://" in url else None
    if scheme is not None and scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{where}: {scheme}:// is not PostgreSQL; {fix}")
    try:
        conninfo(url)
    except ValueError as exc:
        raise ConfigError(f"{where}: not a PostgreSQL connection string ({exc}); {fix}") from None
    return url


def write_new(path: Path, root: Path, workspace: str, database_url: str | None,
              supabase_url: str | None = None, anon_key: str | None = None) -> None:
    with new_config(path, root, workspace, database_url, supabase_url, anon_key):
        pass


@contextmanager
def new_config(path: Path, root: Path, workspace: str, database_url: str | None,
               supabase_url: str | None = None, anon_key: str | None = None) -> Iterator[Config]:
    """A new config, in force only once the body has succeeded (`init`: the store answered
    and the workspace is registered): written to a temporary file beside `path`, then linked
    into place, never over a config that appeared meanwhile. A failure leaves no file."""
    if path.exists():
        raise ConfigError(f"{path}: already exists; pick another --config or edit it")
    check_workspace(workspace, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON strings are YAML strings: safe for any path or URL
    database_line = (f"database_url: {json.dumps(database_url)}" if database_url
                     else f"supabase_url: {json.dumps(supabase_url)}"
                     + (f"\nsupabase_anon_key: {json.dumps(anon_key)}" if anon_key else "") if supabase_url
                     else "# database_url: (none: the embedded default)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(TEMPLATE.format(root=json.dumps(str(root)), workspace=json.dumps(workspace),
                                    database_line=database_line))
        yield dataclasses.replace(load(Path(tmp)), path=path)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ConfigError(f"{path}: appeared while init ran; pick another --config or edit it") from None
    finally:
        os.unlink(tmp)
