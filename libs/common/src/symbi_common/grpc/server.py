"""The gRPC server every Symbi service runs.

It comes with: the standard health service (every service NOT_SERVING until the process says
otherwise), server reflection, OpenTelemetry spans, Prometheus metrics, a default deadline for
unary calls that arrive without one, and the error interceptor: a raised
:class:`~symbi_common.errors.SymbiError` becomes its status code plus structured details; any
other exception becomes INTERNAL with an opaque incident id, and its traceback is logged here,
never sent.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import Counter, Histogram

from symbi_common.config import GrpcSection
from symbi_common.errors import DeadlineExceeded, SymbiError, Unimplemented
from symbi_common.grpc.auth import CallerInterceptor
from symbi_common.grpc.authz import MethodAuthorizer, MethodRules
from symbi_common.grpc.status import ERROR_METADATA_KEY, error_info, status_code

__all__ = ["GrpcServer", "ServiceBinding"]

log = logging.getLogger(__name__)

HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=(
        0.0001,
        0.00025,
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
    ),
)

HEALTH_SERVICE = "grpc.health.v1.Health"


@dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service: its full name, the generated ``add_*_to_server`` call, and who may
    call each method (``rules``; None: any admitted caller, see ADR 0013)."""

    name: str
    add: Callable[[grpc.aio.Server], None]
    rules: MethodRules | None = None


def _split_method(full: str) -> tuple[str, str]:
    _, _, rest = full.partition("/")
    service, _, method = rest.partition("/")
    return service, method


class _ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps exceptions to statuses, records metrics, applies the default deadline."""

    def __init__(self, default_deadline_s: float) -> None:
        self.default_deadline_s = default_deadline_s

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        service, method = _split_method(handler_call_details.method)
        return _wrap_handler(handler, service, method, self.default_deadline_s)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: SymbiError) -> None:
    # Keep trailing metadata the servicer set (e.g. a retry pushback), and add ours.
    existing = tuple(context.trailing_metadata() or ())
    await context.abort(
        status_code(error),
        error.message,
        trailing_metadata=(*existing, (ERROR_METADATA_KEY, error_info(error).SerializeToString())),
    )


def _context_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code: grpc.StatusCode | None = context.code()  # None until a handler sets one
    return code if code is not None else grpc.StatusCode.UNKNOWN


class _Outcome:
    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = grpc.StatusCode.OK


async def _handle_exception(
    exc: BaseException,
    context: grpc.aio.ServicerContext[Any, Any],
    outcome: _Outcome,
    full_method: str,
) -> None:
    """Turn an exception from a handler into the RPC's status (always raises)."""
    if isinstance(exc, SymbiError):
        outcome.code = status_code(exc)
        if outcome.code == grpc.StatusCode.INTERNAL:
            log.error("%s failed: %s", full_method, exc, exc_info=exc)
        await _abort(context, exc)
    if isinstance(exc, NotImplementedError):  # generated servicer bases raise it
        outcome.code = grpc.StatusCode.UNIMPLEMENTED
        await _abort(context, Unimplemented(f"{full_method} is not implemented yet"))
    if isinstance(exc, TimeoutError):
        outcome.code = grpc.StatusCode.DEADLINE_EXCEEDED
        await _abort(context, DeadlineExceeded(f"{full_method} did not finish before its deadline"))
    incident = uuid.uuid4().hex[:12]
    outcome.code = grpc.StatusCode.INTERNAL
    log.error(
        "%s failed with an unexpected error (incident %s)", full_method, incident, exc_info=exc
    )
    await _abort(
        context,
        SymbiError(
            f"internal error (incident {incident}); the server log has the details",
            reason="INTERNAL",
        ),
    )


def _wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], service: str, method: str, default_deadline_s: float
) -> grpc.RpcMethodHandler[Any, Any]:
    full_method = f"/{service}/{method}"

    def finish(outcome: _Outcome, started: float) -> None:
        HANDLED.labels(service, method, outcome.code.name).inc()
        LATENCY.labels(service, method).observe(time.perf_counter() - started)

    def unary_response(behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            outcome, started = _Outcome(), time.perf_counter()
            try:
                if context.time_remaining() is None:
                    async with asyncio.timeout(default_deadline_s):
                        return await behavior(request, context)
                return await behavior(request, context)
            except asyncio.CancelledError:
                outcome.code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                outcome.code = _context_code(context)
                raise
            except Exception as exc:
                await _handle_exception(exc, context, outcome, full_method)
                raise  # unreachable: _handle_exception aborts
            finally:
                finish(outcome, started)

        return call

    def stream_response(behavior: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
        async def call(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            outcome, started = _Outcome(), time.perf_counter()
            try:
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a handler that writes with context.write() and returns
                    await result
            except asyncio.CancelledError:
                outcome.code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                outcome.code = _context_code(context)
                raise
            except Exception as exc:
                await _handle_exception(exc, context, outcome, full_method)
                raise
            finally:
                finish(outcome, started)

        return call

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kwargs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            stream_response(handler.stream_stream), **kwargs
        )
    return handler


def _read_tls_file(key: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        # The process runner reports an OSError at start-up as "cannot start: …" (exit 1).
        raise OSError(exc.errno, f"grpc.{key} = {path}: cannot read: {exc.strerror}") from None


class GrpcServer:
    """An aio gRPC server with Symbi's health, reflection, errors, metrics and tracing.

    Every bound service (and the overall "" entry) reports NOT_SERVING until
    :meth:`set_serving` says otherwise — a service is SERVING only once its dependencies
    (NATS, stores) are up.
    """

    def __init__(self, section: GrpcSection, bindings: Sequence[ServiceBinding]) -> None:
        self.section = section
        self.bindings = tuple(bindings)
        self.port: int | None = None
        options = [
            ("grpc.max_receive_message_length", section.max_message_bytes),
            ("grpc.max_send_message_length", section.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        interceptors: list[grpc.aio.ServerInterceptor] = [
            aio_server_interceptor(),  # type: ignore[no-untyped-call]
            _ErrorInterceptor(section.default_deadline_s),
        ]
        #: Per-method authorization by policy (enforced with mTLS only; the runner gives it
        #: its decider once the process is on the bus).
        self.authorizer = MethodAuthorizer(
            {
                f"/{b.name}/{method}": rule
                for b in bindings
                for method, rule in (b.rules or {}).items()
            }
            if section.mtls
            else {}
        )
        if section.mtls:
            # Inside the error interceptor: a refusal gets Symbi's structured error details.
            interceptors.append(CallerInterceptor(self.authorizer))
        self._server = grpc.aio.server(
            interceptors=interceptors,
            options=options,
            maximum_concurrent_rpcs=section.max_concurrent_rpcs,
        )
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        for binding in self.bindings:
            binding.add(self._server)
        names = [b.name for b in self.bindings] + [HEALTH_SERVICE, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self._server)
        self._serving: bool | None = None
        self._stopped = False

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bindings)

    def _credentials(self) -> grpc.ServerCredentials | None:
        s = self.section
        if not (s.tls_cert_file and s.tls_key_file):
            return None
        ca = _read_tls_file("tls_ca_file", s.tls_ca_file) if s.tls_ca_file else None
        return grpc.ssl_server_credentials(
            [
                (
                    _read_tls_file("tls_key_file", s.tls_key_file),
                    _read_tls_file("tls_cert_file", s.tls_cert_file),
                )
            ],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )

    async def start(self) -> int:
        """Bind and start serving (health NOT_SERVING); returns the bound port."""
        address = f"{self.section.host}:{self.section.port}"
        credentials = self._credentials()
        if credentials is None:
            port = self._server.add_insecure_port(address)
        else:
            port = self._server.add_secure_port(address, credentials)
        if port == 0:
            raise OSError(f"cannot bind gRPC to {address}")
        await self.set_serving(False)
        await self._server.start()
        self.port = port
        return port

    async def set_serving(self, serving: bool) -> None:
        """Report every service (and the server as a whole) SERVING or NOT_SERVING."""
        if self._serving == serving or self._stopped:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            await self.health.set(name, status)
        log.info("health: %s", "SERVING" if serving else "NOT_SERVING")

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING, then stop accepting RPCs and let running ones finish within the grace."""
        if self._stopped:
            return
        await self.set_serving(False)
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self.section.grace_s if grace_s is None else grace_s)
