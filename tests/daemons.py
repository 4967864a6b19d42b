"""Real `syncd run` processes for tests: start, wait for a condition, stop."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from click.testing import CliRunner

from syncd.cli.errors import EXIT_CONFLICTS, EXIT_NOT_SYNCED
from syncd.cli.main import main


def wait_for(condition: Callable[[], object], timeout: float = 15.0, interval: float = 0.02):
    """Poll until `condition()` is truthy; returns its value, or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {getattr(condition, '__name__', condition)}")
        time.sleep(interval)


class WorkingCopy:
    def __init__(self, base: Path, name: str, env: dict[str, str], command: tuple[str, ...] = (sys.executable,)):
        """command runs Python: a wrapper (a mount namespace, say) may come before it."""
        self.command = [*command, "-m", "syncd"]
        self.root = base / name / "tree"
        self.config = base / name / "syncd.yaml"
        self.log = base / name / "daemon.log"
        self.env = env
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.command, "--config", str(self.config), *args],
                                env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"syncd {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def init(self, workspace: str, database_url: str | None, *settings: str) -> None:
        args = ["init", str(self.root), "--workspace", workspace]
        if database_url:
            args += ["--database-url", database_url]
        self.cli(*args)
        if settings:
            with self.config.open("a") as f:
                f.write("\n".join(settings) + "\n")

    def start(self, wait: bool = True) -> None:
        """Start `syncd run`; unless told not to, wait until its first pass is over."""
        self.process = subprocess.Popen(
            [*self.command, "-v", "--config", str(self.config), "run"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"))
        if wait:
            wait_for(lambda: self.status()["daemon"]["state"] in ("running", "degraded", "held", "paused"), timeout=45,
                     interval=0.1)

    def status(self) -> dict:
        """`syncd status --json`, run in this process: tests poll it, and a new interpreter
        per poll would cost a loaded machine a second of CPU each time."""
        return json.loads(self.status_said().stdout)

    def status_said(self):
        result = CliRunner().invoke(main, ["--config", str(self.config), "status", "--json"], env=self.env)
        if result.exit_code not in (0, EXIT_CONFLICTS, EXIT_NOT_SYNCED):  # those are states, said in the JSON
            raise AssertionError(f"syncd status exited {result.exit_code}: {result.output}")
        return result

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "XDG_"))}
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        env[var] = str(tmp_path / "xdg" / var.lower())
    return env
