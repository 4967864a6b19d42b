"""A TCP relay to the test's PostgreSQL that can be opened late: a store that is unreachable
at first and then comes up, on a port a working copy's config names from the start."""
from __future__ import annotations

import socket
import threading

from psycopg.conninfo import conninfo_to_dict, make_conninfo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    def __init__(self, dsn: str):
        info = conninfo_to_dict(dsn)
        host, port = info.get("host") or "127.0.0.1", int(info.get("port") or 5432)
        self.target = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else \
            (socket.AF_INET, (host, port))
        self.port = free_port()
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=str(self.port))  # nobody listens yet
        self._server: socket.socket | None = None

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        if self._server:
            try:
                self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close alone would not
            except OSError:
                pass
            self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(self.target[0], socket.SOCK_STREAM)
            upstream.connect(self.target[1])
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
