"""A TCP proxy a test controls, put between the code under test and a real service (PostgreSQL, Redis).

The real service is never touched: an outage is simulated here. ``cut()`` closes the listening socket (new
connections are refused) and resets every open connection (RST to both sides, as when a host or network dies);
``restore()`` listens again on the same port. ``blackhole()`` accepts connections but never forwards a byte, the
shape of an unreachable host behind a firewall that drops packets, where only timeouts help.

Plain threads, so it works whatever event loop (or none) the code under test uses.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []  # accepted while blackholed: never answered
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._blackhole = False
        self.accepted = 0

    # --- control ---------------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._listen()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        self._stop_listening()
        self._reset_all()

    def blackhole(self) -> None:
        """Reset open connections; accept new ones but never forward anything (connects and reads hang)."""
        self._blackhole = True
        self._reset_all()
        if self._listener is None:
            self._listen()

    def restore(self) -> None:
        """Forward again, on the same port."""
        self._blackhole = False
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _reset(sock)
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self._stop_listening()
        self._reset_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # --- internals ---------------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(0.1)  # the accept loop looks at its stop flag this often
        self.port = listener.getsockname()[1]
        self._listener = listener
        thread = threading.Thread(target=self._accept_loop, args=(listener,), name=f"tcp-proxy-{self.port}", daemon=True)
        self._accept_thread = thread
        thread.start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2)
            self._accept_thread = None

    def _reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
            held, self._held = self._held, []
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        for sock in held:
            _reset(sock)

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by cut()
            self.accepted += 1
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._blackhole:
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass  # reset by cut() or by either end
        finally:
            # PostgreSQL and Redis never half-close: one direction ending ends the connection
            with self._lock:
                pair = next((p for p in self._pairs if src in p), None)
                if pair is not None:
                    self._pairs.remove(pair)
            if pair is not None:
                for sock in pair:
                    with contextlib.suppress(OSError):
                        sock.close()
