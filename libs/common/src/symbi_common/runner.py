"""The life of a Symbi service process.

:func:`run_main` is what every ``python -m symbi_<name>`` calls. It loads settings (exit 2 on
invalid configuration), then :class:`ProcessRunner` runs the process:

start-up
    metrics endpoint → gRPC server bound, every service NOT_SERVING → the ready line on stdout
    (``SYMBI-READY service=… grpc=host:port metrics=host:port pid=…``) → connect to NATS with
    backoff (however long it takes) → provision streams and buckets → ``service.start()`` →
    (with mTLS) the gRPC method authorizer gets its policy decider (ADR 0013) → SERVING. Losing NATS later flips health to NOT_SERVING until it reconnects.

shutdown (SIGTERM, SIGINT, a crashed task, or :meth:`Runtime.request_stop`) — ordered,
idempotent, under one hard timeout:
    health NOT_SERVING → gRPC stop with grace → ``service.drain()`` when the service has
    one (finish in-flight work) → cancel the process's loops (stops intake) →
    NATS drain (flushes what was published) → ``service.close()`` → NATS close → metrics
    server close → flush traces.

Every long-lived loop of a service runs under the process's single TaskGroup through
:meth:`Runtime.spawn`; a loop that crashes stops the process (exit code 1) in the same orderly
way, instead of leaving a half-working service behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from nats.js import JetStreamContext

from symbi_common import telemetry
from symbi_common.bus import BusEndpoint, Credentials, SecureBus, load_credentials
from symbi_common.bus.permissions import inbox_prefix
from symbi_common.config import ServiceSettings, exit_on_config_error, load_settings
from symbi_common.errors import ConfigError, SymbiError, Unavailable
from symbi_common.grpc.server import GrpcServer, ServiceBinding
from symbi_common.jetstream import (
    BucketSpec,
    ConnectionOptions,
    NatsClient,
    Provisioner,
    StreamSpec,
    connect,
)
from symbi_common.jetstream.spec import PLATFORM_BUCKETS, PLATFORM_STREAMS
from symbi_common.policy_client import PolicyClient

__all__ = ["READY_PREFIX", "ProcessRunner", "Runtime", "Service", "run_main"]

log = logging.getLogger(__name__)

READY_PREFIX = "SYMBI-READY"


class Runtime(Protocol):
    """What a running service gets from its process."""

    @property
    def settings(self) -> ServiceSettings: ...

    @property
    def nats(self) -> NatsClient: ...

    @property
    def js(self) -> JetStreamContext: ...

    @property
    def provisioner(self) -> Provisioner: ...

    @property
    def bus(self) -> SecureBus:
        """This process's endpoint on the secure bus (its own principal)."""
        ...

    @property
    def stopping(self) -> bool: ...

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run a long-lived loop under the process's TaskGroup (cancelled at shutdown)."""
        ...

    async def set_component_health(self, component: str, healthy: bool) -> None:
        """Mark one of the service's own dependencies up or down (affects gRPC health)."""
        ...

    def request_stop(self, reason: str, exit_code: int = 0) -> None: ...


class Service(Protocol):
    """What a service plugs into the runner. Its domain objects are built in ``start``."""

    def grpc_bindings(self) -> Sequence[ServiceBinding]:
        """The gRPC services this process serves (registered before the server starts)."""
        ...

    def streams(self) -> Sequence[StreamSpec]:
        """Streams this service needs beyond the platform's (may be empty)."""
        ...

    def buckets(self) -> Sequence[BucketSpec]:
        """KV buckets this service needs beyond the platform's (may be empty)."""
        ...

    async def start(self, runtime: Runtime) -> None:
        """NATS is connected and provisioned: build state, spawn loops. Return when ready."""
        ...

    async def close(self) -> None:
        """Release what ``start`` acquired. Called once, after the loops are cancelled."""
        ...


class ProcessRunner:
    """Runs one service process from start-up to an orderly exit; returns the exit code."""

    def __init__(
        self,
        settings: ServiceSettings,
        service: Service,
        *,
        credentials: Credentials | None = None,
        shutdown_timeout_s: float | None = None,
    ) -> None:
        self._settings = settings
        self._credentials: Credentials | None = credentials
        self._endpoint: BusEndpoint | None = None
        self.service = service
        self.shutdown_timeout_s = shutdown_timeout_s or settings.grpc.grace_s + 10.0
        self._grpc: GrpcServer | None = None  # built in run(): grpc.aio binds to the running loop
        self.metrics: telemetry.MetricsServer | None = None
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._provisioner: Provisioner | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._stopping = False
        self._started = False
        self._nats_up = False
        self._components: dict[str, bool] = {}
        self.exit_code = 0
        self.stop_reason = ""
        #: Steps of the last shutdown, in order (tests assert on it).
        self.shutdown_steps: list[str] = []

    @property
    def grpc(self) -> GrpcServer:
        if self._grpc is None:
            raise RuntimeError("the gRPC server exists only while run() runs")
        return self._grpc

    # ---- Runtime protocol
    @property
    def settings(self) -> ServiceSettings:
        return self._settings

    @property
    def nats(self) -> NatsClient:
        if self._nc is None:
            raise Unavailable("not connected to NATS yet")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise Unavailable("not connected to NATS yet")
        return self._js

    @property
    def provisioner(self) -> Provisioner:
        if self._provisioner is None:
            raise Unavailable("not connected to NATS yet")
        return self._provisioner

    @property
    def bus(self) -> SecureBus:
        if self._endpoint is None:
            raise Unavailable("not connected to the bus yet")
        return self._endpoint.bus

    @property
    def stopping(self) -> bool:
        return self._stopping

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        if self._tg is None:
            coro.close()
            raise RuntimeError("spawn() is only available while the process runs")
        task = self._tg.create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def set_component_health(self, component: str, healthy: bool) -> None:
        self._components[component] = healthy
        await self._update_health()

    def request_stop(self, reason: str, exit_code: int = 0) -> None:
        if not self._stop.is_set():
            log.info("stopping: %s", reason)
            self.stop_reason = reason
            self.exit_code = self.exit_code or exit_code
            self._stop.set()

    # ---- internals
    async def _guard(self, coro: Awaitable[None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._stopping:
                log.debug("task %s ended with an error during shutdown", name, exc_info=True)
            else:
                log.critical("task %s crashed; stopping the process", name, exc_info=True)
                self.request_stop(f"task {name} crashed", exit_code=1)

    async def _update_health(self) -> None:
        serving = (
            self._started
            and self._nats_up
            and all(self._components.values())
            and not self._stopping
        )
        if self._grpc is not None:
            await self._grpc.set_serving(serving)

    async def _on_nats_state(self, up: bool) -> None:
        if self._started and not self._stopping and up != self._nats_up:
            if up:
                log.info("NATS connection re-established")
            else:
                log.warning("NATS connection lost; reconnecting (NOT_SERVING meanwhile)")
        self._nats_up = up
        await self._update_health()

    async def _connect_and_start(self) -> None:
        settings = self._settings
        assert self._credentials is not None
        self._nc = await connect(
            settings.nats,
            ConnectionOptions(
                name=settings.principal_id,
                on_state=self._on_nats_state,
                nkey_seed=self._credentials.nkey_seed,
                inbox_prefix=inbox_prefix(settings.principal_id),
            ),
        )
        self._js = self._nc.jetstream()
        self._provisioner = Provisioner(self._js, settings.nats)
        attempt = 0
        while True:
            # Services provision the platform's streams and buckets (idempotently); worker
            # nodes may not, and wait for them. JetStream may also still be electing leaders.
            attempt += 1
            try:
                if settings.principal_role == "service":
                    await self._provisioner.provision(
                        (*PLATFORM_STREAMS, *self.service.streams()),
                        (*PLATFORM_BUCKETS, *self.service.buckets()),
                    )
                self._endpoint = await BusEndpoint.open(
                    self._nc,
                    self._js,
                    self._credentials,
                    config=settings.bus,
                    name_prefix=settings.nats.name_prefix,
                )
                break
            except Exception as exc:
                if attempt >= 60 or (isinstance(exc, SymbiError) and not exc.retryable):
                    raise
                log.warning("joining the platform failed (attempt %d): %s; retrying", attempt, exc)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        self.spawn(self._endpoint.run(), name="key-directory")
        await self.service.start(self)
        if self.grpc.authorizer.enforcing:
            # gRPC methods are decided by policy (ADR 0013): over this process's bus, or by
            # the service itself when it is the policy service (``grpc_decider``).
            own = getattr(self.service, "grpc_decider", None)
            self.grpc.authorizer.use(own() if callable(own) else PolicyClient(self.bus))
        self._started = True
        await self._update_health()
        log.info("started")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

    def _announce(self) -> None:
        grpc_address = f"{self._settings.grpc.host}:{self.grpc.port}"
        metrics = f"{self.metrics.host}:{self.metrics.port}" if self.metrics else "off"
        line = (
            f"{READY_PREFIX} service={self._settings.service_name} grpc={grpc_address} "
            f"metrics={metrics} pid={os.getpid()}"
        )
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        log.info("listening: gRPC %s, metrics %s", grpc_address, metrics)

    async def _step(self, name: str, action: Callable[[], Awaitable[object]]) -> None:
        self.shutdown_steps.append(name)
        try:
            await action()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("shutdown step %s failed", name, exc_info=True)

    async def _drain_nats(self) -> None:
        """Flush and close, bounded: a drain that hangs (nats-py can wait on a subscription
        queue that fetch() emptied without marking) must not eat the whole shutdown budget."""
        assert self._nc is not None
        try:
            async with asyncio.timeout(3.0):
                await self._nc.drain()
        except TimeoutError:
            log.warning("NATS drain did not finish in 3 s; closing the connection")
            await self._nc.close()

    async def _close_nats(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def _shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        await self._step("health", lambda: self.grpc.set_serving(False))
        await self._step("grpc", self.grpc.stop)
        # Optional: a service may finish in-flight work (e.g. flush buffered audit events)
        # while its loops and NATS are still up.
        drain = getattr(self.service, "drain", None)
        if self._started and callable(drain):
            await self._step("service-drain", drain)
        # Intake stops before the drain: the loops' pull subscriptions are unsubscribed when
        # they are cancelled. nats-py's drain() otherwise waits its whole timeout (30 s) once a
        # pull fetch has timed out. A message a cancelled handler did not finish is not acked,
        # so JetStream delivers it again (at-least-once). See ADR 0001.
        for task in list(self._tasks):
            task.cancel()
        self.shutdown_steps.append("cancel")
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._nc is not None and self._nc.is_connected:
            await self._step("nats-drain", self._drain_nats)
        if self._started:
            await self._step("service-close", self.service.close)
        await self._step("nats-close", self._close_nats)  # a drain already closed it; a no-op then

    async def run(self) -> int:
        """Run until asked to stop; returns the process exit code."""
        if self._credentials is None:
            try:
                self._credentials = load_credentials(
                    self._settings.keys_dir,
                    self._settings.principal_id,
                    self._settings.security.root_certificate,
                )
            except SymbiError as error:
                log.error("cannot start: %s", error.message)
                sys.stderr.write(f"symbi-{self._settings.service_name}: {error.message}\n")
                return 2
        self._install_signals()
        try:
            if self._settings.telemetry.metrics_enabled:
                self.metrics = telemetry.MetricsServer(
                    self._settings.telemetry.metrics_host, self._settings.telemetry.metrics_port
                )
                self.metrics.start()
            self._grpc = GrpcServer(self._settings.grpc, self.service.grpc_bindings())
            await self._grpc.start()
            self._announce()
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.spawn(self._connect_and_start(), name="start-up")
                await self._stop.wait()
                try:
                    async with asyncio.timeout(self.shutdown_timeout_s):
                        await self._shutdown()
                except TimeoutError:
                    log.error("shutdown took longer than %.1f s; forcing", self.shutdown_timeout_s)
                    self.exit_code = self.exit_code or 1
                    for task in list(self._tasks):
                        task.cancel()
        except OSError as exc:
            log.error("cannot start: %s", exc)
            self.exit_code = 1
        finally:
            self._tg = None
            if self.metrics is not None:
                self.metrics.close()
                self.shutdown_steps.append("metrics-close")
            telemetry.shutdown_tracing()
            self._remove_signals()
        log.info("stopped (%s)", self.stop_reason or "done")
        return self.exit_code


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_main(settings_cls: type[SettingsT], build: Callable[[SettingsT], Service]) -> None:
    """Entry point of ``python -m symbi_<name>``: never returns; exits 2 on bad configuration."""
    program = f"symbi-{settings_cls.service_name}"
    try:
        settings = load_settings(settings_cls)
    except ConfigError as error:
        exit_on_config_error(error, program)
    telemetry.configure(settings)
    try:
        service = build(settings)
    except ConfigError as error:
        exit_on_config_error(error, program)
    code = asyncio.run(ProcessRunner(settings, service).run())
    sys.exit(code)
