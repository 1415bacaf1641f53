"""A TCP proxy in front of the real apiserver, for fault tests: it forwards bytes both ways and, when
told, breaks its connections the ways a network does. ``stall`` makes connections (those made after,
and those open unless told otherwise) swallow what they carry without closing anything: a peer gone
without a reset, or one that still acknowledges but sends nothing. ``reset`` closes the open
connections with a reset; ``go_down`` closes each new one at once, as an apiserver that is gone (a
client sees it end before the TLS handshake). The proxy sees only TLS records: it tells connections
apart, not requests."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from pathlib import Path

import yaml


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self._server = socket.create_server((host, 0))
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        # Each connection: (client side, apiserver side, whether it swallows what it carries).
        self._connections: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._stalled = False
        self._down = threading.Event()
        #: Connections accepted so far.
        self.accepted = 0
        threading.Thread(target=self._accept, name="tcpproxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if self._down.is_set():
                with self._lock:
                    self.accepted += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            swallow = threading.Event()
            with self._lock:
                if self._stalled:
                    swallow.set()
                self._connections.append((client, upstream, swallow))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b, swallow), name="tcpproxy-pump", daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, swallow: threading.Event) -> None:
        try:
            while data := source.recv(65536):
                if not swallow.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.close()

    def stall(self, *, open_ones: bool = True) -> None:
        """New connections go silent until ``resume``, and so do (for good) the open ones unless
        ``open_ones`` is False. A new connection that is silent does not even finish its TLS handshake."""
        with self._lock:
            self._stalled = True
            for _, _, swallow in self._connections if open_ones else ():
                swallow.set()

    def resume(self) -> None:
        """New connections carry data again; the ones stalled stay silent (they are dead to their peers)."""
        with self._lock:
            self._stalled = False
        self._down.clear()

    def go_down(self) -> None:
        """Open connections reset, new ones closed at once until ``resume``."""
        self._down.set()
        self.reset()

    def reset(self) -> None:
        """Close every open connection with a reset (RST) on both sides."""
        with self._lock:
            connections, self._connections = self._connections, []
        for client, upstream, _ in connections:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    # No linger: close sends a reset. Shutting the reading side wakes the pump blocked in
                    # recv (a close from this thread would not), which then closes both sockets.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RD)

    def close(self) -> None:
        self._server.close()
        self.reset()

    def kubeconfig(self, kubeconfig: Path, path: Path) -> Path:
        """A copy of ``kubeconfig`` whose server is this proxy (the apiserver's certificate names
        127.0.0.1, so TLS still verifies)."""
        config = yaml.safe_load(kubeconfig.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path
