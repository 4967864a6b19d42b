"""`syncd service install|uninstall|status`: this working copy as a systemd user service.

The template unit (systemd/syncd@.service, shipped in the package) is the same for every
working copy; what differs goes in a drop-in per instance: syncd's own executable (a
virtualenv is not on the user manager's PATH) and the root, the one place outside syncd's
state the hardened unit may write.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click
import platformdirs

from syncd.cli.common import Failure, load_config
from syncd.git.recorder import mirror_repository

TEMPLATE = "syncd@.service"


def unit_dir() -> Path:
    return platformdirs.user_config_path("systemd") / "user"


def instance_of(config_path: Path) -> str:
    """The instance name: the unit reads $XDG_CONFIG_HOME/syncd/<instance>.yaml."""
    expected_dir = platformdirs.user_config_path("syncd")
    if config_path.parent != expected_dir or config_path.suffix != ".yaml" or "@" in config_path.stem:
        raise Failure(f"the service reads its config from {expected_dir}/<name>.yaml, but this one is "
                      f"{config_path}: move it there (e.g. {expected_dir}/{config_path.stem.replace('@', '-')}.yaml) "
                      "and pass that path with --config")
    return config_path.stem


def _quoted(path: Path) -> str:
    """A path as a unit file value: quoted, with systemd's specifier character escaped."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def drop_in(cfg) -> str:
    paths = [Path(cfg.root)]
    repo = mirror_repository(cfg)
    if repo is not None:  # the Git mirror writes there, maybe outside the root
        git_dir = Path(repo.git_dir).resolve()
        repo.close()
        if not git_dir.is_relative_to(Path(cfg.root).resolve()):
            paths.append(git_dir)
    return ("# written by `syncd service install`; run it again after moving syncd or the root\n"
            "[Service]\nExecStart=\n"
            f"ExecStart={_quoted(Path(sys.executable))} -m syncd --config %E/syncd/%i.yaml run\n"
            f"ReadWritePaths={' '.join(_quoted(p) for p in paths)}\n")


def systemctl(*args: str) -> subprocess.CompletedProcess | None:
    """`systemctl --user ...`; None when there is no systemctl at all."""
    if shutil.which("systemctl") is None:
        return None
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=60)


def _manager_error(result: subprocess.CompletedProcess | None) -> str | None:
    if result is None:
        return "systemctl is not installed"
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip()
        return said.splitlines()[-1] if said else f"systemctl exited {result.returncode}"
    return None


@click.group()
def service() -> None:
    """Run this working copy as a systemd user service."""


@service.command()
@click.pass_context
def install(ctx: click.Context) -> None:
    """Write the unit and its drop-in, then enable and start syncd@NAME."""
    cfg = load_config(ctx)
    name = instance_of(cfg.path)
    units = unit_dir()
    units.mkdir(parents=True, exist_ok=True)
    (units / TEMPLATE).write_text(resources.files("syncd.daemon").joinpath("units", TEMPLATE).read_text())
    conf = units / f"syncd@{name}.service.d" / "syncd.conf"
    conf.parent.mkdir(exist_ok=True)
    conf.write_text(drop_in(cfg))
    click.echo(f"wrote {units / TEMPLATE} and {conf}")
    error = _manager_error(systemctl("daemon-reload")) or \
        _manager_error(systemctl("enable", "--now", "--no-block", f"syncd@{name}.service"))
    if error:
        raise Failure(f"the unit is written, but the user service manager did not take it ({error}). In a "
                      f"login session run: systemctl --user daemon-reload && systemctl --user enable --now "
                      f"syncd@{name}; on a server without a login session, first: loginctl enable-linger $USER")
    click.echo(f"enabled and started syncd@{name}; see it with: syncd service status, "
               f"journalctl --user -u syncd@{name}")


@service.command()
@click.pass_context
def uninstall(ctx: click.Context) -> None:
    """Stop and disable syncd@NAME and remove its drop-in (the template stays while others use it)."""
    name = instance_of(load_config(ctx).path)
    error = _manager_error(systemctl("disable", "--now", f"syncd@{name}.service"))
    units = unit_dir()
    shutil.rmtree(units / f"syncd@{name}.service.d", ignore_errors=True)
    if not any(units.glob("syncd@*.service.d")):
        (units / TEMPLATE).unlink(missing_ok=True)
    systemctl("daemon-reload")
    click.echo(f"removed syncd@{name}" + (f" (the service manager said: {error})" if error else ""))


@service.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def service_status(ctx: click.Context, as_json: bool) -> None:
    """The service as systemd sees it: active or not, its pid and its STATUS= line."""
    name = instance_of(load_config(ctx).path)
    result = systemctl("show", "--property=LoadState,ActiveState,SubState,MainPID,StatusText,NRestarts",
                       f"syncd@{name}.service")
    error = _manager_error(result)
    if error:
        raise Failure(f"cannot ask the user service manager: {error}")
    props = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    installed = props.get("LoadState") != "not-found"
    pid, restarts = int(props.get("MainPID") or 0), int(props.get("NRestarts") or 0)
    if as_json:
        click.echo(json.dumps({"unit": f"syncd@{name}.service", "installed": installed,
                               "active": props.get("ActiveState") if installed else None,
                               "sub": props.get("SubState") if installed else None, "pid": pid or None,
                               "status": props.get("StatusText") or None, "restarts": restarts}, indent=2))
        return
    if not installed:
        click.echo(f"syncd@{name} is not installed: syncd service install")
        return
    click.echo(f"syncd@{name}: {props.get('ActiveState')} ({props.get('SubState')})"
               + (f", pid {pid}" if pid else "")
               + (f": {props['StatusText']}" if props.get("StatusText") else "")
               + (f"; restarted {restarts} times" if restarts else ""))
