"""Remote wake-ups over Supabase Realtime: postgres_changes on the workspace's documents.

supabase-py has Realtime only in its async client, so it runs on an asyncio loop in a
thread of its own. Like NOTIFY, a change message is only a hint: the feed cursor stays
the truth and the poll interval the safety net, so a lost connection costs latency only;
after every (re)connect the daemon is asked for a pass. While connected it looks at the
connection once a second, and `stop` wakes it at once.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Callable

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

log = logging.getLogger("syncd.remote")
# realtime-py logs every failed connection attempt as an error; this listener reports the
# state itself (once per outage, at info), so a long outage does not flood the log
logging.getLogger("realtime").setLevel(logging.CRITICAL)

MAX_BACKOFF = 30.0
REAUTH_EVERY = 30.0  # seconds between handing the channel a fresh access token


class RealtimeListener(threading.Thread):
    def __init__(self, url: str, apikey: str, token: Callable[[], str], workspace_id: str,
                 wake: Callable[[], None]):
        super().__init__(name="syncd-realtime", daemon=True)
        self.url = url.rstrip("/") + "/realtime/v1"
        self.apikey = apikey
        self.token = token  # the current access token (refreshed by the store when needed)
        self.workspace_id = workspace_id
        self.wake = wake
        self.connected = threading.Event()
        self._halt = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None  # _halt, for the loop's own waits

    def run(self) -> None:
        asyncio.run(self._main())

    async def _rest(self, seconds: float) -> None:
        """Sleep up to `seconds`, less if `stop` is called."""
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except TimeoutError:
            pass

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        self._loop = asyncio.get_running_loop()  # (after _stopped: `stop` reads them in this order)
        if self._halt.is_set():
            return
        backoff = 1.0
        while not self._halt.is_set():
            client = AsyncRealtimeClient(self.url, token=self.apikey, auto_reconnect=False, max_retries=1)
            try:
                await self._listen(client)
                backoff = 1.0
            except Exception as exc:  # whatever broke, polling carries on; try again later
                if self.connected.is_set():
                    backoff = 1.0  # it was up: a fresh outage
                if backoff == 1.0:  # once per outage
                    log.info("Realtime unavailable (%s); remote changes arrive by polling meanwhile",
                             str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            finally:
                self.connected.clear()
                try:
                    await client.close()
                except Exception:
                    pass
            await self._rest(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _listen(self, client: AsyncRealtimeClient) -> None:
        await client.connect()
        await client.set_auth(self.token())
        joined = asyncio.get_running_loop().create_future()

        def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
            if not joined.done():
                joined.set_result((state, error))

        channel = client.channel(f"syncd-{self.workspace_id}")
        channel.on_postgres_changes("*", schema="public", table="documents",
                                    filter=f"workspace_id=eq.{self.workspace_id}", callback=self._changed)
        await channel.subscribe(on_state)
        state, error = await asyncio.wait_for(joined, 15)
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            raise ConnectionError(f"the channel was not joined ({state}: {error})")
        self.connected.set()
        log.info("Realtime connected: remote changes wake the daemon")
        self.wake()  # whatever happened while we were not listening
        refreshed = time.monotonic()
        while client.is_connected and not self._halt.is_set():
            await self._rest(1.0)
            if time.monotonic() - refreshed > REAUTH_EVERY:
                await client.set_auth(self.token())
                refreshed = time.monotonic()
        if not self._halt.is_set():
            raise ConnectionError("the connection closed")

    def _changed(self, payload) -> None:
        log.debug("Realtime: %s on documents", payload["data"]["type"])
        log.info("remote change announced by Realtime")
        self.wake()

    def stop(self) -> None:
        self._halt.set()
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:  # the loop has ended already
                pass
        self.join(timeout=5)
