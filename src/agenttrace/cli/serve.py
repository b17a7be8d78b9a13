"""`agenttrace serve`: receive OTLP from agents in any language into the store."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Annotated

import typer

from ..config import TOKEN_ENV
from .common import StoreOption, handle_errors, stderr

STATUS_EVERY_S = 0.5
STATUS_EVERY_PIPED_S = 10.0


@handle_errors
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on. Beyond loopback, a token is required.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="OTLP/HTTP port (0: any free port).")
    ] = 4318,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            "--grpc-port",
            min=0,
            max=65535,
            help="Also accept OTLP/gRPC on this port (4317 is the usual one).",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help=f"Bearer token clients must send: printable ASCII, no spaces (default: ${TOKEN_ENV}).",
            show_default=False,
        ),
    ] = None,
    forward: Annotated[
        str | None,
        typer.Option(
            "--forward",
            help="Also send every request (traces, logs, metrics), unchanged, to this OTLP/HTTP "
            "endpoint (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT, "
            "if set).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Receive OTLP traces, logs and metrics (HTTP: protobuf or JSON, gzip or not) into the store,
    in the foreground.

    Point any OpenTelemetry SDK or collector at it: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
    A 200 means the records are stored. Ctrl-C (or SIGTERM) stops it after storing everything.

    Example: AGENTTRACE_TOKEN=s3cret agenttrace serve --host 0.0.0.0 --forward http://tempo:4318
    """
    console = stderr()
    # A daemon is ready before it listens: Arrow's lazy imports (a few tenths of a second) are
    # paid now, not by the first clients, whose requests would otherwise wait for them.
    from ..otlp.convert import warm_up
    from ..otlp.server import OtlpServer

    warm_up()
    server = OtlpServer(store, host=host, port=port, grpc_port=grpc_port, token=token, forward=forward)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    server.start()
    where = f"OTLP/HTTP on {server.endpoint}/v1/traces (and /v1/logs, /v1/metrics)"
    if server.grpc is not None:
        where += f" and OTLP/gRPC on {host}:{server.grpc.port}"
    console.print(f"agenttrace: receiving {where} into {server.store}", markup=False, highlight=False)
    forwarder = server.receiver.forwarder
    if forwarder is not None:
        console.print(f"agenttrace: forwarding to {forwarder.target.url}", markup=False, highlight=False)
    live = sys.stderr.isatty()
    every = STATUS_EVERY_S if live else STATUS_EVERY_PIPED_S
    try:
        last = time.monotonic()
        while not stop.wait(STATUS_EVERY_S):
            if time.monotonic() - last >= every:
                last = time.monotonic()
                line = server.receiver.status_line()
                if live:
                    sys.stderr.write("\r\033[K" + line)
                    sys.stderr.flush()
                else:
                    console.print(line, markup=False, highlight=False)
    finally:
        if live:
            sys.stderr.write("\r\033[K")
        console.print("agenttrace: stopping; storing what is in flight", markup=False, highlight=False)
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print(f"agenttrace: stopped. {server.receiver.status_line()}", markup=False, highlight=False)
