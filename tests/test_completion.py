"""Shell completion (click's), as README's `eval "$(_SYNCD_COMPLETE=bash_source syncd)"`
sets it up: the script, subcommands, and paths of the working copy for log, restore and
resolve (issue 19)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from syncd import config as configuration
from syncd.engine.journal import Journal


def complete(words: str, env: dict | None = None) -> list[str]:
    """What bash would be offered for the last word of `words` (the real command, as the
    completion script runs it)."""
    result = subprocess.run([sys.executable, "-m", "syncd"], capture_output=True, text=True, timeout=60, env={
        **os.environ, **(env or {}), "_SYNCD_COMPLETE": "bash_complete", "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1)})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_the_script_and_the_subcommands(private_xdg):
    script = subprocess.run([sys.executable, "-m", "syncd"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "_SYNCD_COMPLETE": "bash_source"}).stdout
    assert "_syncd_completion()" in script and "complete -o nosort -F _syncd_completion" in script
    assert complete("syncd sta") == ["stats", "status"]
    assert complete("syncd db ") == ["migrate", "supabase"]


def test_paths_of_the_working_copy_and_held_conflicts(tmp_path, private_xdg):
    root = tmp_path / "root"
    (root / "specs").mkdir(parents=True)
    (root / ".git").mkdir()
    for name in ("specs/spec.md", "specs/plan.md", "notes.md", "notes.md.swp"):
        (root / name).write_text("x\n")
    config = tmp_path / "syncd.yaml"
    config.write_text(json.dumps({"root": str(root), "workspace": "team", "database_url": "dbname=unused"}))
    env = {"SYNCD_CONFIG": str(config)}
    assert complete("syncd log ", env) == ["notes.md", "specs/"]  # no .git, no editor's swap file
    assert complete(f"syncd --config {config} restore specs/", {}) == ["specs/plan.md", "specs/spec.md"]
    assert complete("syncd diff specs/s", env) == ["specs/spec.md"]
    assert complete("syncd resolve ", env) == []
    journal = Journal(configuration.load(config).journal_path)
    journal.hold("specs/spec.md", "0" * 64, None, None)
    journal.close()
    assert complete("syncd resolve sp", env) == ["specs/spec.md"]
    assert complete("syncd log ", {"SYNCD_CONFIG": str(tmp_path / "none.yaml")}) == []
