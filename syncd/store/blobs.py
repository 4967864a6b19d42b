"""Where a blob content's bytes live: content-addressed by sha256, per workspace.

A document whose bytes are no text PostgreSQL can hold names them by hash (see
`syncd.content`); the bytes go to the workspace's blob store before the commit that names
them (the contract refuses a commit naming a blob it does not have). On plain PostgreSQL
and the embedded default that is a table of the contract (0019), in chunks; over the
Supabase transport, the Storage bucket `syncd-blobs` (`syncd.store.storage_blobs`).
Bytes stream both ways, a chunk at a time: no file is held whole in memory.
"""
from __future__ import annotations

import base64
import hashlib
import io
import sys
from pathlib import Path
from typing import BinaryIO, Protocol

from syncd.content import Entry
from syncd.engine.entries import open_source
from syncd.store.rpc import RpcStore, StoreError

CHUNK = 4 * 1024 * 1024  # what one call moves (0019: syncd.blob_chunk_size())


def parts(size: int) -> int:
    """How many chunks a blob of `size` bytes takes (an empty one: one empty chunk)."""
    return max(1, -(-size // CHUNK))


class BlobMismatch(StoreError):
    """Bytes that are not what their hash says (a poisoned or truncated object, a file
    changed while it was read): never written to a user's file, never stored."""


class BlobStore(Protocol):
    def missing(self, digests: list[str]) -> set[str]:
        """Which of these the store lacks."""

    def put(self, digest: str, size: int, read: BinaryIO) -> None:
        """Stream `size` bytes from `read` in; BlobMismatch when they do not hash to `digest`."""

    def get(self, digest: str, size: int, write: BinaryIO) -> None:
        """Stream the bytes into `write`; BlobMismatch (after writing) when they do not
        hash to `digest` or are not `size` long: the caller drops what was written."""


def mismatch(digest: str, what: str) -> BlobMismatch:
    return BlobMismatch(f"blob {digest[:12]}: {what}; not used")


class Verifier:
    """Hashes bytes as they pass, and says whether they were what was asked for."""

    def __init__(self, digest: str, size: int):
        self.digest, self.size = digest, size
        self._hash = hashlib.sha256()
        self.seen = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.seen += len(chunk)

    def check(self) -> None:
        if self.seen != self.size:
            raise mismatch(self.digest, f"{self.seen} bytes where {self.size} were expected")
        if self._hash.hexdigest() != self.digest:
            raise mismatch(self.digest, f"the bytes hash to {self._hash.hexdigest()[:12]}")


class TableBlobStore:
    """The contract's blob table, through its functions (syncd_blob_*, 0019)."""

    def __init__(self, store: RpcStore):
        self.store = store

    def missing(self, digests: list[str]) -> set[str]:
        if not digests:
            return set()
        out = self.store._call("syncd_blob_missing", {"workspace": self.store.workspace, "blobs": digests})
        return set(out["missing"])

    def put(self, digest: str, size: int, read: BinaryIO) -> None:
        verifier = Verifier(digest, size)
        for part in range(parts(size)):
            want = min(CHUNK, size - part * CHUNK)
            chunk = read.read(want)
            verifier.update(chunk)
            if len(chunk) < want:
                break  # shorter than said: check() says so
            self.store._call("syncd_blob_put", {"workspace": self.store.workspace, "sha256": digest, "size": size,
                                                "part": part, "data": base64.b64encode(chunk).decode("ascii")})
        verifier.update(read.read(1))  # longer than said
        verifier.check()  # before the server's own check: a file changed while it was read
        self.store._call("syncd_blob_finish", {"workspace": self.store.workspace, "sha256": digest, "size": size})

    def get(self, digest: str, size: int, write: BinaryIO) -> None:
        verifier = Verifier(digest, size)
        for part in range(parts(size)):
            out = self.store._call("syncd_blob_get", {"workspace": self.store.workspace, "sha256": digest,
                                                      "part": part})
            chunk = base64.b64decode(out["data"])
            verifier.update(chunk)
            write.write(chunk)
        verifier.check()


def ensure_stored(blobs: BlobStore, entry: Entry, root: Path) -> None:
    """The bytes of a blob entry in the store before a commit names them: from memory, or
    streamed from its file again (an entry read from the store is there already)."""
    if not blobs.missing([entry.digest]):
        return
    if entry.data is not None:
        blobs.put(entry.digest, entry.size, io.BytesIO(entry.data))
    elif entry.source is not None:
        with open_source(root, entry.source) as source:
            blobs.put(entry.digest, entry.size, source)


def blobs_for(store: RpcStore) -> BlobStore:
    """The blob store of a transport, chosen here and nowhere else: Storage's bucket over
    the Supabase transport, the contract's table everywhere else."""
    supabase = sys.modules.get("syncd.store.supabase")  # not loaded: not that transport
    if supabase is not None and isinstance(store, supabase.SupabaseStore):
        from syncd.store.storage_blobs import StorageBlobStore  # it builds on this module
        return StorageBlobStore(store)
    return TableBlobStore(store)
