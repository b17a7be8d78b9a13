"""`configure()`: attach agenttrace to an OpenTelemetry TracerProvider (creating one if needed)."""

from __future__ import annotations

import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from .. import config
from .exporter import ParquetSpanExporter, PendingSpanProcessor, StoreBatchSpanProcessor

BSP_MAX_QUEUE = 65_536
"""Queue of the batch processor agenttrace creates; the SDK default (2048) drops spans in bursts."""
BSP_MAX_EXPORT_BATCH = 4096
"""Spans per export: fewer, larger spool writes drain a burst faster than the SDK's 512."""

_lock = threading.Lock()
_configured: dict[int, tuple[str, PendingSpanProcessor, ParquetSpanExporter | None]] = {}


def configure(
    store: str | os.PathLike[str] | None = None,
    *,
    flush_interval: float | None = None,
    service_name: str | None = None,
    tracer_provider: TracerProvider | None = None,
    settings: config.Settings | None = None,
) -> TracerProvider:
    """Send this process's spans to an agenttrace store. Optional: `agenttrace.run()` calls it.

    Uses `tracer_provider`, else the global SDK provider if one is set, else creates and sets one.
    The store comes from `store`, else $AGENTTRACE_STORE, else ./.agenttrace; the flush interval
    from `flush_interval`, else $AGENTTRACE_FLUSH_INTERVAL, else 0.5 s. Calling it again with the
    same provider and store does nothing; with another store, it flushes what is queued and sends
    everything after that to the new store. Raises ConfigError for bad values. `settings`: the
    command's settings, resolved once by its caller (`store` and `flush_interval` are then unused).
    """
    settings = settings if settings is not None else config.load(store, flush_interval)
    with _lock:
        provider = tracer_provider or _global_sdk_provider() or _new_global_provider(service_name)
        if getattr(provider, "_agenttrace_supervised", False):
            return provider  # wired by the `agenttrace run` bootstrap: its spans reach the supervisor
        installed = _configured.get(id(provider))
        if installed is not None:
            current, pending, exporter = installed
            if current != str(settings.store):
                provider.force_flush()
                pending.retarget(settings.store, settings.flush_interval)
                if exporter is not None:
                    exporter.retarget(settings.store, settings.flush_interval)
                _configured[id(provider)] = (str(settings.store), pending, exporter)
            return provider
        pending = PendingSpanProcessor(settings.store, flush_interval=settings.flush_interval)
        provider.add_span_processor(pending)
        exporter = None
        if not _has_agenttrace_exporter(provider):
            exporter = ParquetSpanExporter(settings.store, flush_interval=settings.flush_interval)
            provider.add_span_processor(batch_processor(exporter, settings.flush_interval))
        _add_forwarding(provider)
        _configured[id(provider)] = (str(settings.store), pending, exporter)
        return provider


def _add_forwarding(provider: TracerProvider) -> None:
    """With OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT set, also send every span to that OTLP endpoint,
    unless the provider already exports OTLP (e.g. OTEL_TRACES_EXPORTER=otlp,agenttrace)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from ..otlp.forward import forwarding_exporter, target_from

    target = target_from(None)
    if target is None or _exporters_named(provider, "OTLPSpanExporter", "CountingSpanExporter"):
        return
    provider.add_span_processor(BatchSpanProcessor(forwarding_exporter(target)))


def _exporters_named(provider: TracerProvider, *names: str) -> bool:
    multi = getattr(provider, "_active_span_processor", None)
    for processor in getattr(multi, "_span_processors", ()):
        inner = getattr(processor, "_batch_processor", processor)
        exporter = getattr(inner, "_exporter", None)
        if type(exporter).__name__ in names:
            return True
    return False


def batch_processor(
    exporter: ParquetSpanExporter, flush_interval: float, max_queue_size: int = BSP_MAX_QUEUE
) -> StoreBatchSpanProcessor:
    """The batch processor `configure()` puts in front of the exporter: it exports at least every
    flush interval, and counts what it drops."""
    return StoreBatchSpanProcessor(
        exporter,
        schedule_delay_millis=flush_interval * 1000,
        max_queue_size=max_queue_size,
        max_export_batch_size=min(BSP_MAX_EXPORT_BATCH, max_queue_size),
    )


TRACER_NAME = "agenttrace"


def tracer() -> trace.Tracer:
    """agenttrace's own tracer (the API's and the claims'), configuring agenttrace first if
    nothing did."""
    if not is_configured():
        configure()
    from .. import __version__

    return trace.get_tracer(TRACER_NAME, __version__)


def current_store() -> str | None:
    """The store the global provider's agenttrace processors write to, if configured."""
    provider = _global_sdk_provider()
    installed = _configured.get(id(provider)) if provider is not None else None
    return installed[0] if installed else None


def is_configured() -> bool:
    provider = _global_sdk_provider()
    return provider is not None and id(provider) in _configured


def _global_sdk_provider() -> TracerProvider | None:
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


def _new_global_provider(service_name: str | None) -> TracerProvider:
    attributes = {}
    if service_name or not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service_name or "agenttrace-agent"
    provider = TracerProvider(resource=Resource.create(attributes))
    trace.set_tracer_provider(provider)
    return provider


def _has_agenttrace_exporter(provider: TracerProvider) -> bool:
    """Whether the provider already exports to agenttrace (OTEL_TRACES_EXPORTER=agenttrace)."""
    multi = getattr(provider, "_active_span_processor", None)
    for processor in getattr(multi, "_span_processors", ()):
        inner = getattr(processor, "_batch_processor", processor)
        if isinstance(getattr(inner, "_exporter", None), ParquetSpanExporter):
            return True
    return False
