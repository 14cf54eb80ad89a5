"""Who is calling: the caller's principal from its client certificate, and which roles may
call the control plane at all.

With mTLS on (``[grpc] tls_*`` all set) every connection presents a certificate from the
cluster CA; this interceptor reads the principal it names (``symbi://<role>/<id>``) and lets
only :data:`CONTROL_PLANE_ROLES` through. Health and reflection stay open to any authenticated
caller (probes, tooling). Servicers read the caller with :func:`caller`. Which *methods* each
principal may call (``modify_policy`` …) is decided by policy through the services' rule
tables (:mod:`symbi_common.grpc.authz`, ADR 0013), in this interceptor too.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection

from symbi_common.errors import PermissionDenied
from symbi_common.grpc.authz import ByPolicy, MethodAuthorizer, peek
from symbi_common.grpc.tls import Caller, caller_from_auth_context

__all__ = ["CONTROL_PLANE_ROLES", "OPEN_SERVICES", "CallerInterceptor", "caller"]

log = logging.getLogger(__name__)

#: Roles that may call any Symbi gRPC API: services, worker nodes and operators (``user``).
CONTROL_PLANE_ROLES = frozenset({"service", "node", "user"})
#: Services any TLS-authenticated caller may use.
OPEN_SERVICES = frozenset({"grpc.health.v1.Health", reflection.SERVICE_NAME})

_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("symbi_grpc_caller")


def caller() -> Caller | None:
    """The principal of the RPC being handled; None without mTLS (the local dev mode)."""
    return _caller.get(None)


def _authorize(full_method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Caller | None:
    """The caller, or PermissionDenied naming the role and the method."""
    who = caller_from_auth_context(context.auth_context())
    service = full_method.lstrip("/").partition("/")[0]
    if service in OPEN_SERVICES:
        return who
    if who is None:
        raise PermissionDenied(
            f"{full_method}: the client certificate names no symbi:// principal",
            reason="CALLER_UNKNOWN",
            details={"method": full_method},
        )
    if who.role not in CONTROL_PLANE_ROLES:
        log.warning("refused %s to %s (role %s)", full_method, who.principal_id, who.role)
        raise PermissionDenied(
            f"{full_method}: role {who.role!r} ({who.principal_id}) may not call the control "
            f"plane; allowed roles: {', '.join(sorted(CONTROL_PLANE_ROLES))}",
            reason="ROLE_NOT_ALLOWED",
            details={"method": full_method, "role": who.role, "principal": who.principal_id},
        )
    return who


class CallerInterceptor(grpc.aio.ServerInterceptor):
    """Authorizes the caller by role, then (with an ``authorizer``) the method by policy, and
    exposes the caller to the servicer (see :func:`caller`).

    It runs inside the error interceptor, so a refusal becomes PERMISSION_DENIED with the
    structured details every Symbi error carries."""

    def __init__(self, authorizer: MethodAuthorizer | None = None) -> None:
        self.authorizer = authorizer

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
        return _wrap(handler, handler_call_details.method, self.authorizer)


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any],
    full_method: str,
    authorizer: MethodAuthorizer | None,
) -> grpc.RpcMethodHandler[Any, Any]:
    rule = authorizer.rule(full_method) if authorizer is not None else None
    # A client stream is peeked at only when the rule reads the request.
    peeks = isinstance(rule, ByPolicy) and rule.needs_request

    async def admit(
        request: Any, context: grpc.aio.ServicerContext[Any, Any], streaming: bool
    ) -> tuple[Caller | None, Any]:
        who = _authorize(full_method, context)
        if authorizer is None or rule is None or who is None:
            return who, request
        if streaming and peeks:
            first, request = await peek(request)
            await authorizer.authorize(full_method, who, first)
        else:
            await authorizer.authorize(full_method, who, None if streaming else request)
        return who, request

    def unary_response(
        behavior: Callable[..., Any], streaming: bool
    ) -> Callable[..., Awaitable[Any]]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            who, request = await admit(request, context, streaming)
            token = _caller.set(who)
            try:
                return await behavior(request, context)
            finally:
                _caller.reset(token)

        return call

    def stream_response(
        behavior: Callable[..., Any], streaming: bool
    ) -> Callable[..., AsyncIterator[Any]]:
        async def call(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            who, request = await admit(request, context, streaming)
            # Each RPC runs in its own task, so the value cannot leak to another call.
            _caller.set(who)
            result = behavior(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:  # a handler that writes with context.write() and returns
                await result

        return call

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary_response(handler.unary_unary, False), **kwargs
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary_response(handler.stream_unary, True), **kwargs
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream_response(handler.unary_stream, False), **kwargs
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            stream_response(handler.stream_stream, True), **kwargs
        )
    return handler
