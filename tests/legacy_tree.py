"""A legacy IDSE workspace, as the existing tools leave it, with the awkward cases in it."""
from __future__ import annotations

import json
from pathlib import Path

STAGES = {
    "intents": "intent.md", "contexts": "context.md", "specs": "spec.md", "plans": "plan.md",
    "tasks": "tasks.md", "implementation": "README.md", "feedback": "feedback.md",
}

# (relative path, bytes): every one must arrive byte-exact
ODD_FILES = {
    "projects/Alpha/sessions/s-000/specs/crlf.md": b"line one\r\nline two\r\n",
    "projects/Alpha/sessions/s-000/specs/no-final-newline.md": b"no newline at the end",
    "projects/Alpha/sessions/s-000/specs/bom.md": "\ufeff# Title with BOM\n".encode(),
    "projects/Alpha/sessions/s-000/specs/empty.md": b"",
    "projects/Alpha/sessions/s-000/specs/Spéc ünïcode – naïve.md": "Ünïcödé ✓ 日本語\n".encode(),
    "projects/Alpha/sessions/s-000/specs/with spaces in name.md": b"spaces\n",
    "projects/Alpha/sessions/s-000/metadata/session.json": b'{"id": "s-000",\n  "stage": "spec"}\n',
    "projects/Alpha/sessions/s-000/plans/front-matter.md": b"---\ntitle: Plan\ntags: [a, b]\n---\n# Plan\n",
    "projects/Alpha/settings.yaml": b"when: 2024-01-02\nitems:\n  - 1\n  - two\n",
    "projects/Alpha/Legacy Session/intents/intent.md": b"session without sessions/\n",
    "notes/unknown layout/random.txt": b"unknown layouts still sync\n",
    ".idse_active_session.json": b'{"project": "Alpha", "session": "s-000"}\n',
}

# never leave the machine
SECRET_AND_JUNK = {
    ".env": b"SECRET=hunter2\n",
    "projects/Alpha/.env.local": b"TOKEN=abc\n",
    "projects/Alpha/sessions/s-000/specs/.spec.md.swp": b"vim swap",
    "projects/Alpha/sessions/s-000/specs/spec.md~": b"backup",
    "keys/server.pem": b"-----BEGIN PRIVATE KEY-----\n",
    ".git/config": b"[core]\n",
}

BINARY = {"projects/Alpha/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"}


def make_legacy_tree(root: Path, projects: int = 3, sessions: int = 10) -> dict[str, bytes]:
    """Write the tree; returns what must be synced (path → bytes)."""
    synced: dict[str, bytes] = {}

    def put(rel: str, data: bytes, record: bool = True) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if record:
            synced[rel] = data

    put(".owner", b"github|alice\n")
    for p in range(projects):
        project = f"projects/{['Alpha', 'Beta', 'Gamma', 'Delta'][p % 4]}"
        put(f"{project}/CURRENT_SESSION", b"session_id: s-001\ncanonical_root: ./sessions\n")
        put(f"{project}/README.md", f"# {project}\n".encode())
        put(f"{project}/session_state.json", json.dumps(
            {"stages": {s: "completed" for s in STAGES}}, indent=2).encode())
        for s in range(sessions):
            base = f"{project}/sessions/s-{s:03d}"
            put(f"{base}/.owner", b"alice\n")
            put(f"{base}/.collaborators", b"# collaborators\nbob\n")
            for stage_dir, name in STAGES.items():
                put(f"{base}/{stage_dir}/{name}", f"# {stage_dir} of {base}\n\nbody {p}-{s}\n".encode())
            put(f"{base}/metadata/changelog.md", b"- created\n")
    for rel, data in ODD_FILES.items():
        put(rel, data)
    for rel, data in SECRET_AND_JUNK.items():
        put(rel, data, record=False)
    for rel, data in BINARY.items():
        put(rel, data, record=False)
    return synced


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under root, except .git/ (which a working copy may have of its own)."""
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not rel.startswith(".git/"):
            out[rel] = path.read_bytes()
    return out
