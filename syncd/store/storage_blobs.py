"""Blobs over the Supabase transport: objects `<workspace id>/<sha256>` in the Storage bucket
`syncd-blobs`, where 0020's policies let readers of a version naming a blob read it, and
writers create it; nobody changes or deletes one.

What the store lacks is asked of the contract (syncd_blob_missing, 0019), which also sees
the objects RLS hides from their uploader until a version names them. The bytes move over
the Storage endpoints storage3 calls (`POST /object/<bucket>/<name>` without upsert, `GET
/object/<bucket>/<name>`) on the transport's own httpx client, a chunk at a time, rather
than through storage3's upload and download: its upload (multipart; httpx reads a file 64
KiB at a time) cannot hold back the last bytes of a file that changed while it was read,
and a name would then hold bytes that are not its hash, forever; its download returns the
whole body at once.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

import httpx

from syncd.store.blobs import TableBlobStore, Verifier, mismatch
from syncd.store.rpc import NotFound, StoreError, StoreUnavailable, TooLarge
from syncd.store.supabase import PermissionDenied, SupabaseStore, describe_url

BUCKET = "syncd-blobs"
CHUNK = 1 << 20


class StorageBlobStore(TableBlobStore):
    """`missing` is the contract's, as for the table; `put` and `get` go to Storage, and `get`
    falls back to the table for a blob a copy on the database URL pushed there."""

    store: SupabaseStore

    def _url(self, digest: str) -> str:
        workspace = self.store.workspace_id or self.store.open().id  # a pass opened it already
        return f"{str(self.store.client.storage_url).rstrip('/')}/object/{BUCKET}/{workspace}/{digest}"

    def _headers(self) -> dict[str, str]:
        return {"apikey": self.store.key, "Authorization": f"Bearer {self.store.access_token()}"}

    def put(self, digest: str, size: int, read: BinaryIO) -> None:
        verifier = Verifier(digest, size)

        def body() -> Iterator[bytes]:
            """The bytes as read, the last chunk held back until they proved to be `digest`:
            a mismatch ends the request short of its Content-Length, and Storage keeps nothing."""
            held = b""
            while chunk := read.read(min(CHUNK, size + 1 - verifier.seen)):
                verifier.update(chunk)
                if held:
                    yield held
                held = chunk
            verifier.check()
            if held:
                yield held

        headers = {**self._headers(), "Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "x-upsert": "false"}
        try:
            reply = self.store.http.post(self._url(digest), content=body(), headers=headers)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot reach Supabase Storage at {describe_url(self.store.url)}: {exc}") from exc
        if reply.status_code == 200:
            return
        status, message = _error(reply)
        if status == "409":  # uploaded by another copy since `missing`
            return
        if status == "413":
            raise TooLarge(f"Supabase Storage refused {size:,} bytes as over its file size limit (the project's, "
                           f"50 MB on the free plan, or the bucket {BUCKET}'s): raise it in the dashboard "
                           "(Storage → Settings), or set files.max_size below it")
        raise _failure(self.store, status, message, "upload")

    def get(self, digest: str, size: int, write: BinaryIO) -> None:
        if self._download(digest, size, write):
            return
        try:  # pushed by a copy that syncs over the database URL: the bytes are in the contract's table
            super().get(digest, size, write)
        except NotFound:
            raise NotFound(f"blob {digest[:12]} is not in Supabase Storage ({BUCKET}), or you may not read it") from None

    def _download(self, digest: str, size: int, write: BinaryIO) -> bool:
        """Stream the object into `write`, verified; False when Storage has none this caller may read."""
        verifier = Verifier(digest, size)
        try:
            with self.store.http.stream("GET", self._url(digest), headers=self._headers()) as reply:
                if reply.status_code != 200:
                    reply.read()
                    status, message = _error(reply)
                    if (status, message) == ("404", "Object not found"):
                        return False
                    raise _failure(self.store, status, message, "download")
                for chunk in reply.iter_bytes(CHUNK):
                    verifier.update(chunk)
                    if verifier.seen > size:
                        raise mismatch(digest, f"more than the {size} bytes expected")
                    write.write(chunk)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot reach Supabase Storage at {describe_url(self.store.url)}: {exc}") from exc
        verifier.check()
        return True


def _error(reply: httpx.Response) -> tuple[str, str]:
    """Storage's error body carries the real status (the status line says 400 for most)."""
    try:
        body = reply.json()
        return str(body.get("statusCode") or reply.status_code), str(body.get("message") or body)
    except ValueError:
        return str(reply.status_code), reply.text[:200]


def _failure(store: SupabaseStore, status: str, message: str, what: str) -> StoreError:
    where = describe_url(store.url)
    if status == "404":  # "Bucket not found", or no Storage at all (a gateway's "no Route matched")
        return StoreError(f"the Supabase project at {where} has no Storage bucket {BUCKET} ({message}): run "
                          "`syncd db migrate --database-url <its database URL>` (where Storage came after "
                          "syncd's schema, run `select syncd.install_storage_policies()` in its SQL editor)")
    if status == "403":
        return PermissionDenied(f"Supabase Storage refused the {what}: {message}")
    if status >= "500" and len(status) == 3:
        return StoreUnavailable(f"Supabase Storage at {where} failed ({status}: {message}); retrying later")
    return StoreError(f"Supabase Storage refused the {what} ({status}): {message}")
