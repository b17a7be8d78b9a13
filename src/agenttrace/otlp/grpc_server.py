"""OTLP/gRPC server: the TraceService, LogsService and MetricsService over `Receiver`, on its own port.

The same token rules as over HTTP (`Receiver.authorized`); at most WORKERS requests are stored at
once (and WORKERS x 4 queued), and a connection idle for IDLE_TIMEOUT_S is closed. gRPC's own
connections are not counted in the receiver's descriptor budget: it is off unless asked for.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from ..errors import AgentTraceError, ConfigError
from .decode import LOGS, METRICS, PROTOBUF, TRACES, Signal, response_message
from .receiver import Receiver

WORKERS = 8
IDLE_TIMEOUT_S = 30


class _Service:
    """Export of one signal: the same checks, storage and answers as over HTTP."""

    def __init__(self, receiver: Receiver, signal: Signal) -> None:
        self.receiver = receiver
        self.signal = signal

    def Export(self, request: Any, context: Any) -> Any:
        receiver, signal = self.receiver, self.signal
        metadata = {k.lower(): v for k, v in context.invocation_metadata()}
        if not receiver.authorized(metadata.get("authorization")):
            receiver.count_refusal(401)
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        if not receiver.try_enter():
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver busy, retry later")
        try:
            converted = receiver.ingest(request, signal)
        except AgentTraceError as exc:
            receiver.count_refusal(503)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot store {signal.noun}s right now: {exc}")
        finally:
            receiver.leave()
        if receiver.forwarder is not None:
            receiver.forwarder.submit(request.SerializeToString(), PROTOBUF, signal=signal.name)
        return response_message(signal, converted.rejected, converted.message)


class _TraceService(_Service, trace_service_pb2_grpc.TraceServiceServicer):
    pass


class _LogsService(_Service, logs_service_pb2_grpc.LogsServiceServicer):
    pass


class _MetricsService(_Service, metrics_service_pb2_grpc.MetricsServiceServicer):
    pass


class OtlpGrpcServer:
    def __init__(self, receiver: Receiver, host: str, port: int) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="agenttrace-grpc"),
            maximum_concurrent_rpcs=WORKERS * 4,
            options=[
                ("grpc.max_receive_message_length", receiver.max_body),
                ("grpc.so_reuseport", 0),
                ("grpc.max_connection_idle_ms", IDLE_TIMEOUT_S * 1000),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(receiver, TRACES), self.server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsService(receiver, LOGS), self.server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsService(receiver, METRICS), self.server
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise ConfigError(
                f"cannot listen for OTLP/gRPC on {address}: the port is in use or the address is invalid"
            )

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 5.0) -> None:
        self.server.stop(grace).wait()
