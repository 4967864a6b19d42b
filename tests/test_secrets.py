"""Credentials never reach the store: credential files by name, private keys and tokens by
content, held with one line that names the file and `syncd allow PATH`.

Every token below is put together from pieces, so that this file holds none itself."""
from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from pathlib import Path

import pytest

from syncd.engine.credentials import Finding, find
from syncd.engine.ignore import DEFAULT_IGNORES, IgnoreRules
from syncd.store.postgres import PostgresStore

from copies import Copy
from daemons import WorkingCopy, isolated_env, wait_for
from legacy_repo import git, make_legacy_repo
from legacy_tree import make_legacy_tree, read_tree

pytestmark = pytest.mark.usefixtures("private_xdg")

KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PRIVATE_KEY = f"-----BEGIN {'RSA PRIVATE'} KEY-----\n{KEY_BODY}\n{KEY_BODY}\n-----END {'RSA PRIVATE'} KEY-----\n"
AWS_KEY_ID = "AKIA" + "Q3ZB7XK2MWP4RN6T"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6" * 3
SERVICE_ACCOUNT = json.dumps({
    "type": "service_account", "project_id": "acme-prod", "private_key_id": "4f2a9c1b7e3d",
    "private_key": PRIVATE_KEY.replace("RSA ", ""), "client_email": "sync@acme-prod.iam.gserviceaccount.com",
}, indent=2)


def jwt(claims: dict) -> str:
    part = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.{'Sg4Kz9Qw2Lr7Tx1Vb5Nm8Hp3Jd6Fc0Ya'}"


# what each credential file of issue 16 looks like, as its tool writes it
CREDENTIAL_FILES = {
    ".pgpass": b"db.example.com:5432:app:alice:s3cret-pw\n",
    ".netrc": b"machine api.example.com login alice password s3cret-pw\n",
    ".git-credentials": b"https://alice:s3cret-pw@git.example.com\n",
    ".npmrc": b"//registry.example.com/:_authToken=s3cret-token\n",
    ".pypirc": b"[pypi]\nusername = __token__\npassword = s3cret-token\n",
    ".aws/credentials": b"[default]\naws_access_key_id = alice\naws_secret_access_key = s3cret\n",
    ".kube/config": b"apiVersion: v1\nkind: Config\nusers:\n- name: alice\n  user:\n    token: s3cret\n",
    ".envrc": b"export API_TOKEN=s3cret-token\n",
    ".ssh/config": b"Host build\n  HostName build.example.com\n  IdentityFile ~/.ssh/build\n",
    "certs/client.p12": b"0\x82\x05\x9a\x02\x01\x030\x82\x05\x60\x06\t*\x86H\x86\xf7\r\x01\x07\x01",
    "certs/keystore.jks": b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x01",
    "deploy/secrets.yaml": b"database_password: s3cret-pw\n",
    # a service-account key under the name the console gives it: found by its content
    "deploy/acme-prod-4f2a9c1b7e3d.json": SERVICE_ACCOUNT.encode(),
}
ORDINARY = "projects/P/sessions/s1/requirements.md"


def stored_paths(dsn: str) -> set[str]:
    return {d["path"] for d in PostgresStore(dsn, "team").documents()}


@pytest.fixture
def copy(tmp_path, dsn) -> Copy:
    """One working copy over PostgreSQL that stores binary files too (`files.binary: base64`),
    so that only the credential checks stand between a key store and the store."""
    a = Copy(tmp_path, "a", dsn)
    a.init()
    with a.config.open("a") as f:
        f.write("files:\n  binary: base64\n")
    return a


@pytest.mark.parametrize("where", ["", "team/", "projects/P/sessions/s1/"])
def test_credential_files_never_reach_the_store(copy, dsn, where):
    for rel, data in {**CREDENTIAL_FILES, ORDINARY: b"# Requirements\n"}.items():
        target = copy.root / where / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    copy.sync(expect=5)  # the service-account key under an ordinary name is held by its content
    stored = stored_paths(dsn)
    assert where + ORDINARY in stored  # the pass ran and pushed
    assert sorted(stored & {where + rel for rel in CREDENTIAL_FILES}) == []


# (path, content, what the message names, line)
HELD = [
    ("notes.md", f"# Notes\n\n{PRIVATE_KEY}", "a private key", 3),
    ("projects/P/config.json", f'{{\n  "region": "eu-west-1",\n  "key": "{AWS_KEY_ID}"\n}}\n',
     "an AWS access key id", 3),
    ("projects/P/sessions/s1/plans/plan.md", f"# Plan\nCI token: {GITHUB_TOKEN}\n", "a GitHub token", 2),
    ("projects/P/sessions/s1/metadata/deploy.json", SERVICE_ACCOUNT, "a Google Cloud service-account key", 5),
]


@pytest.mark.parametrize("path, content, kind, line", HELD)
def test_a_file_holding_a_credential_is_held_with_one_line_until_allowed(copy, dsn, path, content, kind, line):
    target = copy.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    (copy.root / "ordinary.md").write_text("# Ordinary\n")
    report = copy.sync(expect=5)
    assert stored_paths(dsn) == {"ordinary.md"}
    message = report["skipped"][path]
    assert message == (f"{path}: holds {kind} (line {line}); not synced. If it is meant to sync: "
                       f"syncd allow {path} (or add it to the config's ignore to stop this warning)")
    assert KEY_BODY not in message and AWS_KEY_ID not in message and GITHUB_TOKEN not in message
    assert copy.sync(expect=5)["skipped"] == {path: message}  # held on every pass, never pushed
    out = copy.cli("allow", path).output
    assert f"{path}: allowed" in out and "next pass" in out
    assert copy.cli("allow").output.splitlines() == [path]
    assert json.loads(copy.cli("allow", "--json").output) == [path]
    assert copy.sync()["pushed"] == 1
    assert PostgresStore(dsn, "team").version(path)["content"]["text"] == content


def test_an_allowance_outlives_edits_until_revoked(copy, dsn):
    (copy.root / "howto.md").write_text(f"# Keys\n{PRIVATE_KEY}")
    assert "howto.md" in copy.sync(expect=5)["skipped"]
    copy.cli("allow", str(copy.root / "howto.md"))  # a path as the shell gives it
    copy.sync()
    (copy.root / "howto.md").write_text(f"# Keys, and a token\n{PRIVATE_KEY}{GITHUB_TOKEN}\n")
    assert copy.sync()["pushed"] == 1  # the path is allowed, whatever it holds now
    assert "checked again" in copy.cli("allow", "--revoke", "howto.md").output
    assert copy.cli("allow").output == ""
    assert json.loads(copy.cli("allow", "--json").output) == []
    (copy.root / "howto.md").write_text(f"# Keys, edited\n{PRIVATE_KEY}")
    report = copy.sync(expect=5)
    assert "a private key (line 2)" in report["skipped"]["howto.md"]
    assert "edited" not in PostgresStore(dsn, "team").version("howto.md")["content"]["text"]


def test_allowing_a_path_ignored_by_name_says_it_stays_unsynced(copy):
    out = copy.cli("allow", ".aws/credentials").output
    assert "ignored by name" in out and "'!' pattern" in out


def test_a_merge_does_not_push_a_credential_either(tmp_path, dsn):
    a, b = Copy(tmp_path, "a", dsn), Copy(tmp_path, "b", dsn)
    a.init()
    b.init()
    (a.root / "notes.md").write_text("first line\n\nlast line\n")
    a.sync()
    b.sync()
    (b.root / "notes.md").write_text("first line, by b\n\nlast line\n")
    b.sync()
    (a.root / "notes.md").write_text(f"first line\n\nlast line\n{PRIVATE_KEY}")
    report = a.sync(expect=5)
    assert "a private key (line 4)" in report["skipped"]["notes.md"]
    assert PostgresStore(dsn, "team").version("notes.md")["content"]["text"] == "first line, by b\n\nlast line\n"
    assert KEY_BODY in (a.root / "notes.md").read_text()  # left as it is


def ordinary_documents() -> dict[str, str]:
    """What sessions hold, with things that look a little like keys: none is held."""
    rng = random.Random(16)
    image = base64.b64encode(rng.randbytes(200_000)).decode()
    return {
        "projects/P/sessions/s1/metadata/session.yaml":
            f"id: {uuid.UUID(int=rng.getrandbits(128))}\nartifact: sha256:{hashlib.sha256(b'x').hexdigest()}\n",
        "projects/P/sessions/s1/requirements.md": f"# Requirements\n\n![diagram](data:image/png;base64,{image})\n",
        "projects/P/sessions/s1/specs/auth.md": (
            "A key file starts with `-----BEGIN OPENSSH PRIVATE KEY-----`; never paste one here.\n"
            "Tokens look like `ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` or AKIAIOSFODNN7EXAMPLE.\n"
            f"The public anon key: {jwt({'role': 'anon', 'iss': 'supabase'})}\n"
            f"Commit {hashlib.sha1(b'y').hexdigest()}, build {hashlib.sha256(b'z').hexdigest().upper()}\n"),
        "projects/P/session_state.json": json.dumps({"hashes": [hashlib.sha256(bytes([i])).hexdigest()
                                                                for i in range(50)]}),
    }


def test_ordinary_documents_that_look_a_little_like_keys_are_not_held(copy, dsn):
    for path, text in ordinary_documents().items():
        (copy.root / path).parent.mkdir(parents=True, exist_ok=True)
        (copy.root / path).write_text(text)
    report = copy.sync()
    assert report["skipped"] == {} and report["pushed"] == len(ordinary_documents())


def test_the_readme_lists_every_built_in_ignore():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    missing = [p for p in DEFAULT_IGNORES if f"`{p.removeprefix('**/').replace(chr(92), '')}`" not in readme]
    assert missing == []


def test_the_repositorys_own_fixture_trees_are_neither_ignored_nor_held(tmp_path):
    synced = make_legacy_tree(tmp_path / "tree")
    make_legacy_repo(tmp_path / "repo")
    repo = {p: d for p, d in read_tree(tmp_path / "repo").items() if not p.startswith(".git/")}
    for path, data in {**synced, **repo}.items():
        assert not IgnoreRules().ignores(path), path
        assert find(data) is None, path


@pytest.mark.parametrize("text, kind", [
    ("xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx", "a Slack token"),
    ("https://hooks.slack.com/services/" + "T0ABCDEFG/B0ABCDEFG/" + "AbCdEfGhIjKlMnOpQrStUvWx", "a Slack webhook"),
    ("sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc", "a Stripe secret key"),
    ("AIza" + "SyA1b2C3d4E5f6G7h8" + "I9j0K1l2M3n4O5p6Q", "a Google API key"),
    ("//registry.npmjs.org/:_authToken=npm_" + "A1b2C3d4E5f6" * 3, "an npm token"),
    ("password = pypi-" + "AgEIcHlwaS5vcmc" + "CJDk3ZTRhNmMtOGQxYi00" * 4, "a PyPI token"),
    ("glpat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm", "a GitLab token"),
    ("aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYz7Q2LKEY4m", "an AWS secret access key"),
    ("service_key: " + jwt({"role": "service_role", "iss": "supabase"}), "a Supabase service-role key"),
])
def test_well_known_token_formats_are_found(text, kind):
    assert find(f"config:\n  {text}\n".encode()) == Finding(kind, 2)


def test_a_token_inside_a_longer_word_is_not_one():
    assert find(("x" + AWS_KEY_ID).encode()) is None and find(("sha" + GITHUB_TOKEN).encode()) is None
    assert find(f"key: {AWS_KEY_ID}.".encode()).kind == "an AWS access key id"


def test_syncd_import_holds_credentials_in_history_and_working_tree(tmp_path, dsn):
    a = Copy(tmp_path, "a", dsn)
    make_legacy_repo(a.root)
    keys = "projects/P/sessions/s1/feedback/keys.md"
    (a.root / keys).write_text(f"# Keys\n{PRIVATE_KEY}")
    git(a.root, "add", keys)
    git(a.root, "commit", "-q", "-m", "oops")
    (a.root / "projects/P/sessions/s1/feedback/token.md").write_text(f"token {GITHUB_TOKEN}\n")  # untracked
    a.init()
    out = a.cli("import").output
    commit = git(a.root, "rev-parse", "HEAD")[:12]
    assert f"skipped: {keys}: holds a private key (line 2 in commit {commit}); not synced" in out
    assert "skipped: projects/P/sessions/s1/feedback/token.md: holds a GitHub token (line 1)" in out
    stored = stored_paths(dsn)
    assert "projects/P/sessions/s1/specs/spec.md" in stored and keys not in stored
    a.cli("allow", keys)
    a.cli("import")
    assert keys in stored_paths(dsn)


def test_a_running_daemon_sees_an_allowance_at_once(tmp_path, dsn):
    a = WorkingCopy(tmp_path, "a", isolated_env(tmp_path))
    a.init("team", dsn, "daemon: {debounce: 0.1, poll_interval: 600, rescan_interval: 600}")
    a.root.mkdir(parents=True, exist_ok=True)
    try:
        a.start()
        (a.root / "notes.md").write_text(f"# Notes\n{PRIVATE_KEY}")
        wait_for(lambda: "notes.md: holds a private key (line 2)" in a.log.read_text())
        assert "notes.md" not in stored_paths(dsn)
        assert "the running syncd" in a.cli("allow", "notes.md").stdout
        wait_for(lambda: "notes.md" in stored_paths(dsn))
    finally:
        a.kill()


# What projects commit as .env.example and the like: every value a stand-in.
ENV_TEMPLATE = "\n".join([
    "DATABASE_URL=postgresql://user:password@localhost:5432/app",
    "OPENAI_API_KEY=sk-your-key-here", "SUPABASE_URL=https://your-project.supabase.co",
    "SUPABASE_SERVICE_ROLE_KEY=your-service-role-key", "SUPABASE_SECRET_KEY=" + "sb_secret_" + "your_secret_key_here",
    "GITHUB_TOKEN=" + "ghp_" + "x" * 36, "AWS_ACCESS_KEY_ID=" + "AKIA" + "IOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/" + "T00000000/B00000000/" + "X" * 24,
    "STRIPE_SECRET_KEY=" + "sk_live_" + "YOUR_STRIPE_SECRET_KEY", "HF_TOKEN=" + "hf_" + "your_token_here_0123456789abc",
]) + "\n"


@pytest.mark.parametrize("path, ignored", [
    (".env", True), (".env.local", True), ("app/.env.development.local", True), (".env.production", True),
    (".env.test", True), (".envrc", True),
    (".env.example", False), ("app/.env.template", False), (".env.sample", False), (".env.local.example", False),
    ("config/secrets.yaml.example", False),
    (".ssh/config.example", True), (".aws/credentials.sample", True),  # a whole directory stays out
])
def test_secret_files_stay_out_and_their_committed_templates_go_through(path, ignored):
    assert IgnoreRules().ignores(path) is ignored


def test_a_template_of_stand_ins_syncs_and_a_real_key_in_one_is_held(copy, dsn):
    assert find(ENV_TEMPLATE.encode()) is None
    (copy.root / ".env.example").write_text(ENV_TEMPLATE)
    (copy.root / "deploy.env.template").write_text(f"GITHUB_TOKEN={GITHUB_TOKEN}\n")
    (copy.root / ".env").write_text(f"GITHUB_TOKEN={GITHUB_TOKEN}\n")
    report = copy.sync(expect=5)
    assert stored_paths(dsn) == {".env.example"}
    assert list(report["skipped"]) == ["deploy.env.template"]
    assert "a GitHub token (line 1)" in report["skipped"]["deploy.env.template"]


@pytest.mark.parametrize("token", [
    "sb_secret_" + "Qm9vbGVhbk5vdEFQbGFjZWhvbGRlcjEy", "hf_" + "Qm9vbGVhbk5vdEFQbGFjZWhvbGRlcjEyMz",
    "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx",
])
def test_a_real_token_next_to_stand_ins_is_still_found(token):
    assert find((ENV_TEMPLATE + f"REAL={token}\n").encode()) is not None
