"""`OtlpServer`: the receiver with its HTTP (and optional gRPC) listeners, started and stopped as one.

`agenttrace serve` runs one in the foreground; `agenttrace run` embeds one on a free port.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config
from ..config import TOKEN_ENV
from ..errors import ConfigError
from .forward import Forwarder, target_from
from .http import REQUEST_DEADLINE_S, OtlpHttpServer, is_loopback
from .receiver import DEFAULT_MAX_BODY, Receiver, Route, check_token

if TYPE_CHECKING:
    from ..store.writer import PartWritten
    from .grpc_server import OtlpGrpcServer


def _token(given: str | None) -> str | None:
    """The token from the argument (`--token`), else from $AGENTTRACE_TOKEN (empty: unset).
    ConfigError for one nobody could authenticate with (blank, spaces, not ASCII)."""
    if given is not None:
        return check_token(given, "--token")
    from_env = os.environ.get(TOKEN_ENV)
    return check_token(from_env, f"${TOKEN_ENV}") if from_env else None


class OtlpServer:
    """Receives OTLP over HTTP on `port` (0: any free port) and over gRPC on `grpc_port` (None: off)."""

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        grpc_port: int | None = None,
        token: str | None = None,
        forward: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        request_deadline: float = REQUEST_DEADLINE_S,
        run_id: str | None = None,
        on_part: Callable[[PartWritten], None] | None = None,
        routes: Mapping[str, Route] | None = None,
        settings: config.Settings | None = None,
    ) -> None:
        """`run_id`, `on_part` and `routes`: see `Receiver` (`agenttrace run` embeds a receiver for
        its run, with its claim desk). `settings`: as the caller resolved them, else read here."""
        settings = settings if settings is not None else config.load(store)
        token = _token(token)
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"listening on {host} (beyond this machine) needs a bearer token: "
                f"pass --token or set {TOKEN_ENV}"
            )
        target = target_from(forward)
        self.store: Path = settings.store
        self.receiver = Receiver(
            settings.store,
            token=token,
            flush_interval=settings.flush_interval,
            max_body=max_body,
            run_id=run_id,
            on_part=on_part,
            routes=routes,
        )
        self.http: OtlpHttpServer | None = None
        self.grpc: OtlpGrpcServer | None = None
        try:
            self.http = OtlpHttpServer(self.receiver, host, port, request_deadline=request_deadline)
            if grpc_port is not None:  # gRPC is imported only when asked for (`agenttrace run` is not)
                from .grpc_server import OtlpGrpcServer

                self.grpc = OtlpGrpcServer(self.receiver, host, grpc_port)
        except BaseException:
            if self.http is not None:
                self.http.server_close()
            self.receiver.close()
            raise
        if target is not None:
            self.receiver.forwarder = Forwarder(target)
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.http is not None
        return self.http.port

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> OtlpServer:
        assert self.http is not None
        # A short poll interval: stop() waits for the loop to notice (the default is 0.5 s).
        self._thread = threading.Thread(
            target=self.http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="agenttrace-http",
            daemon=True,
        )
        self._thread.start()
        if self.grpc is not None:
            self.grpc.start()
        return self

    def stop(self) -> None:
        """Stop listening, finish what is in flight, forward what is queued, seal the spool."""
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        if self.grpc is not None:
            self.grpc.stop()
        self.receiver.close()

    def __enter__(self) -> OtlpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
