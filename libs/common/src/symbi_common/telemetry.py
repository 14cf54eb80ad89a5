"""Logs, traces and metrics for every Symbi process.

- Logs: one line per record, JSON (``log_format = "json"``) or readable console text, with the
  current trace and span ids when there is a span.
- Traces: OpenTelemetry; spans are exported over OTLP/gRPC only when
  ``telemetry.otlp_endpoint`` is set. Trace context crosses gRPC in metadata (the gRPC
  interceptors) and NATS in message headers (:func:`inject_trace` / :func:`extract_trace`).
- Metrics: Prometheus, served at ``/metrics`` by :class:`MetricsServer`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from symbi_common.config import ServiceSettings, TelemetrySection

__all__ = [
    "MetricsServer",
    "configure_logging",
    "configure_tracing",
    "current_trace",
    "extract_trace",
    "inject_trace",
    "shutdown_tracing",
]

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


def _trace_ids() -> tuple[str, str] | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra record attributes become fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = _trace_ids()
        if ids:
            payload["trace_id"], payload["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
                )
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s " + service + " %(name)s: %(message)s", "%H:%M:%S"
        )


def configure_logging(service: str, level: str = "info", fmt: str = "console") -> None:
    """Route every logger to stderr in the chosen format. Idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else ConsoleFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries stay at warning unless we debug.
    for name in ("nats", "grpc", "docker", "urllib3", "httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


_provider_lock = threading.Lock()
_provider: TracerProvider | None = None


def configure_tracing(service: str, section: TelemetrySection, instance_id: str = "") -> None:
    """Install the global tracer provider (once per process)."""
    global _provider
    with _provider_lock:
        if _provider is not None:
            return
        resource = Resource.create(
            {
                "service.name": f"symbi-{service}",
                "service.namespace": "symbi",
                "service.instance.id": instance_id,
            }
        )
        provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(section.trace_sample_ratio))
        )
        if section.otlp_endpoint:
            # Imported here: the exporter pulls in a gRPC client we do not need otherwise.
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=section.otlp_endpoint))
            )
        trace.set_tracer_provider(provider)
        _provider = provider


def shutdown_tracing(timeout_s: float = 2.0) -> None:
    """Flush spans still buffered. Safe when tracing was never configured."""
    with _provider_lock:
        if _provider is not None:
            _provider.force_flush(int(timeout_s * 1000))


def inject_trace(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Write the current trace context into message headers (W3C traceparent)."""
    propagate.inject(headers)
    return headers


def current_trace() -> dict[str, str]:
    """The current trace context as headers, or ``{}`` quickly when there is no span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    return dict(inject_trace({}))


def extract_trace(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context carried by message headers, to start a consumer span under."""
    return propagate.extract(dict(headers or {}))


@dataclass
class MetricsServer:
    """Serves ``/metrics`` over HTTP in a daemon thread (prometheus_client's WSGI server)."""

    host: str
    port: int
    registry: CollectorRegistry = REGISTRY

    def __post_init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        self._server, self._thread = start_http_server(
            self.port, addr=self.host, registry=self.registry
        )
        self.port = int(self._server.server_port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


def configure(settings: ServiceSettings) -> None:
    """Logging and tracing for a service process, from its settings."""
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    configure_tracing(settings.service_name, settings.telemetry, settings.instance_id)
