"""Blobs in Supabase Storage (0020, syncd/store/storage_blobs.py), through the stand-in's
Storage endpoints on a Supabase-shaped database: who may read, create, change and delete an
object of the bucket syncd-blobs, and what a downloader does with bytes that are not their
name's."""
from __future__ import annotations

import hashlib
import io
import os
import time

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from supabase import create_client

from copies import Copy
from supabase_database import gotrue_user
from supabase_standin import StandIn, token
from syncd.store.blobs import BlobMismatch, blobs_for
from syncd.store.credentials import Credentials, credentials_path
from syncd.store.migrate import migrate
from syncd.store.postgres import PostgresStore
from syncd.store.rpc import Change, NotFound, StoreError, TooLarge
from syncd.store.storage_blobs import BUCKET, StorageBlobStore
from syncd.store.supabase import PermissionDenied, SupabaseStore

S1_DOC = "projects/P/sessions/s1/assets/image.png"
S2_DOC = "projects/P/sessions/s2/spec.md"
PEOPLE = {  # login: (role, where)
    "owner": ("owner", {}),
    "collaborator": ("collaborator", {}),
    "reader": ("reader", {}),
    "s1-reader": ("reader", {"project": "P", "session": "s1"}),
    "s2-collaborator": ("collaborator", {"project": "P", "session": "s2"}),
    "stranger": (None, {}),
}


def blob(data: bytes) -> dict:
    return {"encoding": "blob", "format": "binary", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


@pytest.fixture
def project(dsn):
    """A workspace with sessions s1 and s2, one person of each kind, and the stand-in:
    (stand-in, {login: SupabaseStore signed in as them}, admin store, workspace id)."""
    admin = PostgresStore(dsn, "ws")
    admin.open(create=True)
    admin.commit([Change("projects/P/sessions/s1/spec.md", None, {"encoding": "utf-8", "format": "text", "text": "a"}),
                  Change(S2_DOC, None, {"encoding": "utf-8", "format": "text", "text": "b"})])
    users = {login: gotrue_user(dsn, login, github_id=i + 1) for i, login in enumerate(PEOPLE)}
    for login, (role, where) in PEOPLE.items():
        if role:
            admin.members("add", login=login, role=role, **where)
    with psycopg.connect(dsn) as conn:
        ws = str(conn.execute("select id from public.workspaces where slug = 'ws'").fetchone()[0])
    standin = StandIn(dsn)
    with standin as url:
        stores = {login: SupabaseStore(url, token("authenticated", sub=uid), "ws") for login, uid in users.items()}
        yield standin, stores, admin, ws
        for store in stores.values():
            store.close()
    admin.close()


def upload(store: SupabaseStore, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    blobs_for(store).put(digest, len(data), io.BytesIO(data))
    return digest


def download(store: SupabaseStore, data: bytes) -> bytes:
    out = io.BytesIO()
    blobs_for(store).get(hashlib.sha256(data).hexdigest(), len(data), out)
    return out.getvalue()


def objects(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select name, version from storage.objects where bucket_id = %s order by name",
                            (BUCKET,)).fetchall()


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_binary_goes_to_storage_and_comes_back_byte_identical(project, dsn):
    standin, stores, admin, ws = project
    url = standin.url
    data = os.urandom(3 * 1024 * 1024 + 17) + b"\0tail"  # several chunks, not a multiple of one
    digest = hashlib.sha256(data).hexdigest()
    writer = blobs_for(stores["collaborator"])
    assert isinstance(writer, StorageBlobStore)  # the one place that picks: Storage for this transport
    assert writer.missing([digest]) == {digest}
    writer.put(digest, len(data), io.BytesIO(data))
    assert writer.missing([digest]) == set()
    assert [name for name, _ in objects(dsn)] == [f"{ws}/{digest}"]
    assert stores["collaborator"].commit([Change(S1_DOC, None, blob(data))])[0].version == 1
    assert download(stores["reader"], data) == data
    assert download(stores["s1-reader"], data) == data  # a reader of that session only
    # again: the object is there, nothing is uploaded twice
    writer.put(digest, len(data), io.BytesIO(data))
    assert len(objects(dsn)) == 1


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_only_readers_of_a_version_naming_the_blob_can_download_it(project, dsn):
    standin, stores, admin, ws = project
    url = standin.url
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    digest = upload(stores["collaborator"], data)
    # uploaded, but named by no version yet: nobody can read it (not even its uploader)
    for login in ("collaborator", "owner", "reader"):
        with pytest.raises(NotFound, match="not in Supabase Storage"):
            download(stores[login], data)
    stores["collaborator"].commit([Change(S1_DOC, None, blob(data))])
    for login in ("owner", "collaborator", "reader", "s1-reader"):
        assert download(stores[login], data) == data, login
    with pytest.raises(NotFound, match="not in Supabase Storage"):  # a member of another session
        download(stores["s2-collaborator"], data)
    with pytest.raises(NotFound, match="does not exist"):  # a stranger does not even learn the workspace's id
        download(stores["stranger"], data)
    # nor a stranger, nor anon, over the Storage API directly, with or without a JWT
    for bearer in (stores["stranger"].key, token("anon"), None, "not-a-jwt"):
        reply = httpx.get(f"{url}/storage/v1/object/{BUCKET}/{ws}/{digest}",
                          headers={"apikey": token("anon"), **({"Authorization": f"Bearer {bearer}"} if bearer else {})})
        assert reply.status_code == 400 and reply.json()["statusCode"] in ("404", "403"), reply.text
    # a policy of the project's own that lets every signed-in user read every object stops at
    # this bucket
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create policy everyone_reads on storage.objects for select to authenticated using (true)")
        conn.execute("create policy everyone_writes on storage.objects for insert to authenticated with check (true)")
    with pytest.raises(NotFound):
        download(stores["s2-collaborator"], data)
    reply = httpx.get(f"{url}/storage/v1/object/{BUCKET}/{ws}/{digest}",
                      headers={"apikey": token("anon"), "Authorization": f"Bearer {stores['stranger'].key}"})
    assert (reply.status_code, reply.json()["message"]) == (400, "Object not found")
    reply = httpx.post(f"{url}/storage/v1/object/{BUCKET}/{ws}/{'c' * 64}", content=b"\0planted",
                       headers={"apikey": token("anon"), "Authorization": f"Bearer {stores['stranger'].key}"})
    assert (reply.status_code, reply.json()["message"]) == (400, "new row violates row-level security policy")


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_readers_and_strangers_cannot_upload_and_names_have_one_shape(project, dsn):
    standin, stores, admin, ws = project
    url = standin.url
    for login in ("reader", "s1-reader"):
        with pytest.raises(PermissionDenied, match="row-level security"):
            upload(stores[login], b"\0" + login.encode())
    with pytest.raises(NotFound, match="does not exist"):  # a stranger does not even learn the workspace's id
        upload(stores["stranger"], b"\0stranger")
    assert upload(stores["s2-collaborator"], b"\0from a session's collaborator")  # a writer somewhere
    collaborator = token("authenticated", sub=gotrue_user(dsn, "late", github_id=99))
    admin.members("add", login="late", role="collaborator")
    for name in (f"{ws}/not-a-digest", f"{ws}/{'a' * 64}/more", f"{'a' * 64}", f"{ws.upper()}/{'a' * 64}"):
        reply = httpx.post(f"{url}/storage/v1/object/{BUCKET}/{name}", content=b"\0x",
                           headers={"apikey": token("anon"), "Authorization": f"Bearer {collaborator}"})
        assert reply.json()["statusCode"] == "403", (name, reply.text)
    assert len(objects(dsn)) == 1


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_no_member_can_overwrite_or_delete_an_object(project, dsn):
    standin, stores, admin, ws = project
    url = standin.url
    data = b"\0original bytes"
    digest = upload(stores["collaborator"], data)
    stores["collaborator"].commit([Change(S1_DOC, None, blob(data))])
    before = objects(dsn)
    name = f"{ws}/{digest}"
    for login in ("owner", "collaborator"):
        client = create_client(url, stores[login].key)  # storage3, as any client would use it
        bucket = client.storage.from_(BUCKET)
        for upsert in ("false", "true"):
            with pytest.raises(Exception) as refused:
                bucket.upload(name, b"\0replaced", {"x-upsert": upsert, "content-type": "application/octet-stream"})
            assert refused.value.status in ("409", "403"), (login, upsert, refused.value)
        assert bucket.remove([name]) == []  # deletes nothing
        assert bucket.info(name)["size"] == len(data)  # and they may still read it
    assert objects(dsn) == before
    assert download(stores["reader"], data) == data


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_poisoned_object_is_refused_by_the_downloader(project, dsn):
    """Bytes under a name that is not their hash (put there with the service key, or by a
    writer before the real bytes came) never reach a caller as the blob's."""
    standin, stores, admin, ws = project
    url = standin.url
    wanted, planted, good = b"\0the real bytes", b"\0something else", b"\0another blob"
    digest = hashlib.sha256(wanted).hexdigest()
    reply = httpx.post(f"{url}/storage/v1/object/{BUCKET}/{ws}/{digest}", content=planted,
                       headers={"apikey": token("anon"), "Authorization": f"Bearer {token('service_role')}"})
    assert reply.status_code == 200, reply.text
    upload(stores["collaborator"], good)
    stores["collaborator"].commit([Change(S1_DOC, None, blob(wanted)), Change(S1_DOC + ".2", None, blob(good))])
    out = io.BytesIO()
    with pytest.raises(BlobMismatch, match=f"blob {digest[:12]}: the bytes hash to "
                                           f"{hashlib.sha256(planted).hexdigest()[:12]}; not used"):
        blobs_for(stores["reader"]).get(digest, len(wanted), out)
    longer = "b" * 64  # an object longer than its version says is cut off where that size ends
    reply = httpx.post(f"{url}/storage/v1/object/{BUCKET}/{ws}/{longer}", content=planted * 1000,
                       headers={"apikey": token("anon"), "Authorization": f"Bearer {token('service_role')}"})
    stores["collaborator"].commit([Change(S1_DOC + ".3", None, {**blob(planted), "sha256": longer})])
    out = io.BytesIO()
    with pytest.raises(BlobMismatch, match=f"more than the {len(planted)} bytes expected"):
        blobs_for(stores["reader"]).get(longer, len(planted), out)
    assert len(out.getvalue()) <= len(planted) + (1 << 20)
    assert download(stores["reader"], good) == good  # the other blob is fine


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_bytes_that_change_while_read_are_never_stored(project, dsn):
    standin, stores, admin, ws = project
    url = standin.url
    said = b"\0what the scan hashed" * 100_000  # ~2 MiB: more than a chunk
    digest = hashlib.sha256(said).hexdigest()
    writer = blobs_for(stores["collaborator"])
    for now in (said[:-1] + b"!", said[:-1], said + b"more"):  # edited, cut short, grown
        with pytest.raises(BlobMismatch):
            writer.put(digest, len(said), io.BytesIO(now))
    assert objects(dsn) == [] and writer.missing([digest]) == {digest}
    writer.put(digest, len(said), io.BytesIO(said))
    assert writer.missing([digest]) == set()


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_file_over_the_storage_limit_is_refused_with_the_fix(project, dsn):
    standin, stores, admin, ws = project
    url = standin.url
    data = b"\0" * 4096
    standin.file_size_limit = 1000  # the project's (Storage → Settings)
    with pytest.raises(TooLarge, match=r"refused 4,096 bytes as over its file size limit \(the project's, 50 MB on"
                                       r" the free plan, .*\): raise it .*Storage → Settings.*files.max_size"):
        upload(stores["collaborator"], data)
    assert objects(dsn) == []


@pytest.mark.on_both_databases
def test_0020_sets_up_storage_only_where_there_is_storage_and_runs_again(dsn, flavour):
    with psycopg.connect(dsn, autocommit=True) as conn:
        def policies() -> list:
            if conn.execute("select to_regclass('storage.objects')").fetchone()[0] is None:
                return []
            return conn.execute("select policyname, permissive, cmd, roles::text from pg_policies"
                                " where schemaname = 'storage' and policyname like 'syncd%%' order by 1").fetchall()
        first = policies()
        conn.execute("select syncd.install_storage_policies()")  # what a project that got Storage later runs
        assert policies() == first
        if flavour == "plain":
            assert first == []
            return
        assert len(first) == 7
        assert conn.execute("select public from storage.buckets where id = %s", (BUCKET,)).fetchone() == (False,)
        for role in ("anon", "authenticated"):
            assert not conn.execute("select has_function_privilege(%s, 'syncd.install_storage_policies()', 'execute')",
                                    (role,)).fetchone()[0]


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_blob_pushed_over_the_database_url_is_read_over_the_supabase_transport(project, dsn):
    """A server's copy syncs with the database URL (its blobs go to the contract's table, it
    cannot reach Storage); a signed-in copy reads them all the same."""
    standin, stores, admin, ws = project
    data = b"\0from the server's copy" * 1000
    digest = hashlib.sha256(data).hexdigest()
    blobs_for(admin).put(digest, len(data), io.BytesIO(data))
    admin.commit([Change(S1_DOC, None, blob(data))])
    assert objects(dsn) == [] and blobs_for(stores["collaborator"]).missing([digest]) == set()
    assert download(stores["s1-reader"], data) == data
    with pytest.raises(NotFound, match="not in Supabase Storage"):
        download(stores["s2-collaborator"], data)


@pytest.mark.usefixtures("private_xdg")
@pytest.mark.parametrize("transport", ["supabase"], indirect=True)
def test_two_copies_on_the_supabase_transport_sync_binaries_through_storage(copies, transport, dsn):
    """End to end: what is no text goes to the bucket (not the contract's table), the other
    copy gets it byte-identical, and a poisoned object stops its one path only."""
    a, b = copies
    files = {"projects/P/sessions/s1/assets/logo.png": b"\x89PNG\r\n\x1a\n" + os.urandom(20_000),
             "projects/P/sessions/s1/notes.md": b"# notes\n\0 a NUL byte\n",
             "projects/P/data.bin": os.urandom(9 * 1024 * 1024 + 3),  # chunks of both stores, and more
             "projects/P/poisoned.bin": b"\0real bytes\xff"}
    for path, data in files.items():
        (a.root / path).parent.mkdir(parents=True, exist_ok=True)
        (a.root / path).write_bytes(data)
    (a.root / "projects/P/README.md").write_text("text stays text\n")
    with psycopg.connect(dsn) as conn:
        ws = str(conn.execute("select id from public.workspaces where slug = 'team'").fetchone()[0])
    poisoned = hashlib.sha256(files["projects/P/poisoned.bin"]).hexdigest()
    reply = httpx.post(f"{transport}/storage/v1/object/{BUCKET}/{ws}/{poisoned}", content=b"\0fake bytes\xff",
                       headers={"apikey": token("anon"), "Authorization": f"Bearer {token('service_role')}"})
    assert reply.status_code == 200, reply.text
    assert a.sync()["pushed"] == 5
    with psycopg.connect(dsn) as conn:
        assert sorted(n for (n,) in conn.execute("select name from storage.objects")) == sorted(
            f"{ws}/{hashlib.sha256(data).hexdigest()}" for data in files.values())
        assert conn.execute("select count(*) from public.blobs").fetchone() == (0,)
    report = b.sync(expect=5)  # a path failed: said once, in one line
    assert report["pulled"] == 4
    assert list(report["skipped"]) == list(report["failed"]) == ["projects/P/poisoned.bin"]
    assert f"blob {poisoned[:12]}: the bytes hash to" in report["skipped"]["projects/P/poisoned.bin"]
    got = b.files()
    assert {path: got.get(path) for path in files if path != "projects/P/poisoned.bin"} == {
        path: data for path, data in files.items() if path != "projects/P/poisoned.bin"}
    assert "projects/P/poisoned.bin" not in got and not list(b.root.rglob(".syncd-tmp-*"))


@pytest.mark.usefixtures("private_xdg")
@pytest.mark.parametrize("transport", ["supabase"], indirect=True)
def test_a_file_over_the_storage_limit_is_one_line_naming_it_and_the_fix(copies, transport, dsn):
    a, b = copies
    with psycopg.connect(dsn, autocommit=True) as conn:  # the bucket's own limit, set in the dashboard
        conn.execute("update storage.buckets set file_size_limit = 1000000 where id = %s", (BUCKET,))
    (a.root / "big.bin").write_bytes(b"\0" * 1_000_001)
    (a.root / "small.bin").write_bytes(b"\0" * 1_000_000)
    result = a.cli("sync", "--once", expect=None)
    lines = [line for line in result.output.splitlines() if "big.bin" in line]
    assert len(lines) == 1 and "files.max_size" in lines[0] and "Storage → Settings" in lines[0], result.output
    b.sync()
    assert sorted(b.files()) == ["small.bin"]


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_0020_runs_before_storages_own_migrations_added_their_columns(empty_dsn, supabase_cluster):
    """`supabase db reset` may apply a project's migrations while storage.buckets is still as
    Supabase's init script made it (supabase/cli#4085): no `public` column yet."""
    with psycopg.connect(make_conninfo(empty_dsn, user="supabase_admin"), autocommit=True) as conn:
        conn.execute("alter table storage.buckets drop column public")
    migrate(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert conn.execute("select id from storage.buckets").fetchall() == [(BUCKET,)]
        conn.execute("alter table storage.buckets add column public boolean default false")  # Storage's 0008
        assert conn.execute("select public from storage.buckets").fetchall() == [(False,)]


@pytest.mark.usefixtures("private_xdg")
@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_signed_in_people_sync_a_binary_through_storage_with_refreshed_tokens(tmp_path, dsn):
    """As people use it: signed in with GitHub, row level security on the bucket, and a
    token that expired before the download refreshed for Storage as for the RPCs."""
    standin = StandIn(dsn)
    with standin as url:
        a, b = Copy(tmp_path, "a", dsn, supabase_url=url), Copy(tmp_path, "b", dsn, supabase_url=url)
        for copy, login in ((a, "alice"), (b, "bob")):
            copy.cli("init", str(copy.root), "--workspace", "team", "--supabase-url", url, "--anon-key", token("anon"))
            standin.access_ttl = 3600 if login == "alice" else 2
            Credentials(credentials_path(copy.config, url)).save(
                standin.sign_in({"login": login, "name": login.title(), "email": f"{login}@example.com"}))
        data = b"\x89PNG\r\n\x1a\n" + os.urandom(3 << 20)
        (a.root / "projects/P/sessions/s1/assets").mkdir(parents=True)
        (a.root / "projects/P/sessions/s1/assets/logo.png").write_bytes(data)
        a.sync()
        a.cli("members", "add", "bob", "--role", "reader", "--session", "P/s1")
        time.sleep(2.5)  # bob's access token has expired
        refreshes = standin.refreshes
        assert b.sync()["pulled"] == 1
        assert (b.root / "projects/P/sessions/s1/assets/logo.png").read_bytes() == data
        assert standin.refreshes > refreshes
    with psycopg.connect(dsn) as conn:
        owner = conn.execute("select o.owner_id = p.id::text from storage.objects o, public.profiles p"
                             " where p.github_login = 'alice'").fetchone()
    assert owner == (True,)  # uploaded as alice, under her rights


@pytest.mark.parametrize("flavour", ["supabase"], indirect=True)
def test_a_project_without_the_bucket_is_told_what_to_run(project, dsn):
    standin, stores, admin, ws = project
    with psycopg.connect(make_conninfo(dsn, user="supabase_storage_admin"), autocommit=True) as conn:
        conn.execute("delete from storage.buckets")
    with pytest.raises(StoreError, match=r"has no Storage bucket syncd-blobs \(Bucket not found\): run `syncd db"
                                         r" migrate.*select syncd.install_storage_policies\(\)"):
        upload(stores["collaborator"], b"\0bytes")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select syncd.install_storage_policies()")
    assert upload(stores["collaborator"], b"\0bytes")
