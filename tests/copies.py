"""Working copies driven through the real CLI, in-process, against a real PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from syncd import config as configuration
from syncd.cli.main import main
from syncd.engine.journal import Journal

from legacy_tree import read_tree


class Copy:
    """One working copy: its root, its config, and the CLI run against them."""

    def __init__(self, base: Path, name: str, dsn: str, workspace: str = "team", supabase_url: str | None = None):
        self.name = name
        self.root = base / name / "tree"
        self.config = base / name / "syncd.yaml"
        self.dsn = dsn
        self.workspace = workspace
        self.supabase_url = supabase_url  # the store through the Supabase transport instead

    def cli(self, *args: str, expect: int | None = 0):
        result = CliRunner().invoke(main, ["--config", str(self.config), *args])
        if expect is not None:
            assert result.exit_code == expect, (result.output, result.exception)
        return result

    def init(self):
        store = ["--supabase-url", self.supabase_url] if self.supabase_url else ["--database-url", self.dsn]
        result = self.cli("init", str(self.root), "--workspace", self.workspace, *store)
        with self.config.open("a") as f:  # a name of its own, as authors appear in `syncd log`
            f.write(f"device_name: {self.name}\n")
        return result

    def sync(self, expect: int | None = 0) -> dict:
        result = self.cli("sync", "--once", "--json", expect=expect)
        return json.loads(result.stdout)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json", expect=None).stdout)  # exits 3 while a conflict is held

    def files(self) -> dict[str, bytes]:
        return read_tree(self.root)

    def journal(self) -> Journal:
        return Journal(configuration.load(self.config).journal_path)
