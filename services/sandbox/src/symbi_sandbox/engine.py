"""The container engine port and its Docker implementation.

:class:`ContainerEngine` is what the runner needs from a container runtime; unit tests give it
a fake, everything else uses :class:`DockerEngine`. The docker SDK blocks, so every call runs
in one of two bounded thread pools owned by the engine — short control calls in one, calls
that last as long as a container (``wait``, output streaming) in the other — and every call
has a deadline twice over: the HTTP request's own timeout (so the thread ends) and an
``asyncio`` timeout around it (so the caller does). Docker's errors become Symbi errors here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from symbi_common.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SymbiError,
    Unavailable,
)
from symbi_sandbox.docker_stream import ChunkedDecoder, FrameDemux, OutputHandoff
from symbi_sandbox.hardening import ContainerSpec

__all__ = [
    "ContainerEngine",
    "DockerEngine",
    "DockerEngineConfig",
    "EngineInfo",
    "ManagedContainer",
    "RuntimeInfo",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime registered in the engine (``runc``, ``runsc``) and its extra arguments."""

    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineInfo:
    """What the engine says about the node."""

    server_version: str
    memory_bytes: int
    cpus: int
    runtimes: Mapping[str, RuntimeInfo] = field(default_factory=lambda: MappingProxyType({}))
    docker_root_dir: str = ""  # Docker's data root (images, writable layers, logs)


@dataclass(frozen=True)
class ManagedContainer:
    """A container found by label (for reconciliation)."""

    container_id: str
    name: str
    state: str
    labels: Mapping[str, str]


class ContainerEngine(Protocol):
    """What the runner needs from a container runtime. Every method has its own deadline."""

    async def info(self) -> EngineInfo:
        """Version, memory, CPUs and registered runtimes."""
        ...

    async def create(self, spec: ContainerSpec) -> str:
        """Creates (does not start) the container; returns its id.

        Raises :class:`NotFound` for an unknown image, :class:`AlreadyExists` for a name in use.
        """
        ...

    async def start(self, container_id: str) -> None:
        """Starts a created container; a start failure raises and leaves it created."""
        ...

    async def wait(self, container_id: str, timeout_s: float) -> int:
        """Waits for the container to exit and returns its exit code."""
        ...

    async def oom_killed(self, container_id: str) -> bool:
        """True when the kernel's (or gVisor's) OOM killer stopped the container."""
        ...

    async def stop(self, container_id: str, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``. A container already gone is fine."""
        ...

    async def kill(self, container_id: str) -> None:
        """SIGKILL now. A container already stopped or gone is fine."""
        ...

    async def remove(self, container_id: str) -> None:
        """Removes the container, running or not. A container already gone is fine."""
        ...

    def output(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        """The container's stdout/stderr from its start, as ``(stream, data)``, until it exits."""
        ...

    async def list_managed(self, labels: Mapping[str, str]) -> list[ManagedContainer]:
        """All containers (any state) carrying every one of ``labels``."""
        ...

    async def aclose(self) -> None:
        """Releases the engine's connections and threads."""
        ...


@dataclass(frozen=True)
class DockerEngineConfig:
    """How to reach dockerd and how many threads to spend on it."""

    base_url: str | None = None  # None: DOCKER_HOST or the local socket
    call_timeout_s: float = 30.0
    control_threads: int = 8
    stream_threads: int = 128  # two per running task (wait + output)
    stream_buffer_bytes: int = 1024 * 1024  # output read but not yet taken, per container


_READ_BYTES = 256 * 1024


class DockerEngine:
    """:class:`ContainerEngine` over the docker SDK (dockerd, with runc and runsc runtimes)."""

    def __init__(self, client: Any, config: DockerEngineConfig | None = None) -> None:
        """Wraps a ``docker.DockerClient``; prefer :meth:`connect`, which builds one."""
        self._config = config or DockerEngineConfig()
        self._client = client
        self._control = concurrent.futures.ThreadPoolExecutor(
            self._config.control_threads, thread_name_prefix="docker-ctl"
        )
        self._streams = concurrent.futures.ThreadPoolExecutor(
            self._config.stream_threads, thread_name_prefix="docker-stream"
        )
        self._closed = False

    @classmethod
    async def connect(cls, config: DockerEngineConfig | None = None) -> DockerEngine:
        """Connects to dockerd (the client negotiates the API version: a blocking call)."""
        config = config or DockerEngineConfig()

        def build() -> Any:
            import docker

            pool = max(config.control_threads, config.stream_threads) + 4
            kwargs: dict[str, Any] = {
                "timeout": int(config.call_timeout_s),
                "max_pool_size": pool,
            }
            if config.base_url is None:
                return docker.from_env(**kwargs)
            return docker.DockerClient(base_url=config.base_url, **kwargs)

        try:
            client = await asyncio.wait_for(asyncio.to_thread(build), config.call_timeout_s + 1.0)
        except TimeoutError as exc:
            raise Unavailable(
                f"dockerd did not answer within {config.call_timeout_s:.0f} s",
                reason="DOCKER_UNAVAILABLE",
            ) from exc
        except Exception as exc:
            raise Unavailable(
                f"cannot reach dockerd ({exc}); is it running? (scripts/ensure-host.sh starts it)",
                reason="DOCKER_UNAVAILABLE",
            ) from exc
        return cls(client, config)

    @property
    def client(self) -> Any:
        """The underlying ``docker.DockerClient`` (for image building and benchmarks)."""
        return self._client

    async def _call(
        self,
        what: str,
        fn: Callable[[], _T],
        *,
        timeout_s: float | None = None,
        pool: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> _T:
        if self._closed:
            raise Unavailable(f"docker engine is closed ({what})")
        deadline = timeout_s if timeout_s is not None else self._config.call_timeout_s
        loop = asyncio.get_running_loop()
        try:
            # The thread keeps running after a timeout until its own HTTP timeout fires.
            return await asyncio.wait_for(
                loop.run_in_executor(pool or self._control, fn), deadline + 1.0
            )
        except TimeoutError as exc:
            raise DeadlineExceeded(f"docker {what} took longer than {deadline:.0f} s") from exc
        except SymbiError:
            raise
        except Exception as exc:
            raise _translate(what, exc) from exc

    async def info(self) -> EngineInfo:
        raw: dict[str, Any] = await self._call("info", self._client.info)
        runtimes = {
            name: RuntimeInfo(name, tuple(str(a) for a in (body or {}).get("runtimeArgs") or ()))
            for name, body in (raw.get("Runtimes") or {}).items()
        }
        return EngineInfo(
            server_version=str(raw.get("ServerVersion", "")),
            memory_bytes=int(raw.get("MemTotal", 0)),
            cpus=int(raw.get("NCPU", 0)),
            runtimes=MappingProxyType(runtimes),
            docker_root_dir=str(raw.get("DockerRootDir", "")),
        )

    async def create(self, spec: ContainerSpec) -> str:
        kwargs = spec.create_kwargs()
        kwargs.pop("detach", None)
        container = await self._call(
            f"create {spec.name}", lambda: self._client.containers.create(**kwargs)
        )
        if spec.limits.disk_io_mbps > 0:
            # dockerd drops a blkio limit it cannot apply with only a warning: never run
            # a task without the disk limit it was given.
            host = (container.attrs or {}).get("HostConfig") or {}
            if not host.get("BlkioDeviceReadBps") or not host.get("BlkioDeviceWriteBps"):
                await self.remove(str(container.id))
                raise FailedPrecondition(
                    "dockerd did not apply the disk I/O limit (its kernel or cgroup setup "
                    "lacks block I/O throttling)",
                    reason="DISK_IO_LIMIT_UNAVAILABLE",
                )
        return str(container.id)

    async def start(self, container_id: str) -> None:
        await self._call(f"start {container_id[:12]}", lambda: self._client.api.start(container_id))

    async def wait(self, container_id: str, timeout_s: float) -> int:
        def wait() -> int:
            result = self._client.api.wait(container_id, timeout=max(1, int(timeout_s + 0.999)))
            return int(result.get("StatusCode", -1))

        return await self._call(
            f"wait {container_id[:12]}", wait, timeout_s=timeout_s, pool=self._streams
        )

    async def oom_killed(self, container_id: str) -> bool:
        attrs = await self._call(
            f"inspect {container_id[:12]}", lambda: self._client.api.inspect_container(container_id)
        )
        return bool((attrs.get("State") or {}).get("OOMKilled"))

    async def stop(self, container_id: str, grace_s: float) -> None:
        grace = max(0, int(grace_s + 0.999))

        def stop() -> None:
            self._client.api.stop(container_id, timeout=grace)

        with contextlib.suppress(NotFound):
            await self._call(
                f"stop {container_id[:12]}", stop, timeout_s=grace + self._config.call_timeout_s
            )

    async def kill(self, container_id: str) -> None:
        def kill() -> None:
            import docker.errors

            try:
                self._client.api.kill(container_id)
            except docker.errors.APIError as exc:
                # 409: not running any more, which is what we wanted.
                if exc.status_code != 409:
                    raise

        with contextlib.suppress(NotFound):
            await self._call(f"kill {container_id[:12]}", kill)

    async def remove(self, container_id: str) -> None:
        def remove() -> None:
            import docker.errors

            try:
                self._client.api.remove_container(container_id, force=True, v=True)
            except docker.errors.APIError as exc:
                # 409 "removal already in progress": another path is removing it.
                if exc.status_code != 409:
                    raise

        with contextlib.suppress(NotFound):
            await self._call(f"remove {container_id[:12]}", remove)

    async def output(self, container_id: str) -> AsyncIterator[tuple[str, bytes]]:
        loop = asyncio.get_running_loop()
        handoff = OutputHandoff(loop, limit_bytes=self._config.stream_buffer_bytes)

        def pump() -> None:
            api = self._client.api
            error: BaseException | None = None
            try:
                # The logs endpoint with follow=1 replays from the container's start and ends
                # when it exits, on runc and runsc alike (attach can miss a fast exit).
                delivered = 0
                for follow in (1, 0):
                    response = api._get(
                        api._url("/containers/{0}/logs", container_id),
                        params={"stdout": 1, "stderr": 1, "follow": follow},
                        stream=True,
                    )
                    api._raise_for_status(response)
                    try:
                        # A quiet task must not hit the control timeout: the stream lasts as
                        # long as the container, which the runner always ends.
                        api._disable_socket_timeout(api._get_raw_response_socket(response))
                        sent = _pump_frames(response, handoff, container_id, skip=delivered)
                    finally:
                        response.close()
                    if sent is None:
                        return  # nobody reads any more
                    # dockerd's follow stream can end before the last message when it is a
                    # line without a newline (lost: "two" of `echo one; printf two`). Once
                    # it ends the container has exited and its log is complete: read it
                    # again without following and hand over what comes after what was sent.
                    delivered += sent
            except Exception as exc:
                error = exc
            finally:
                handoff.finish(error)

        pumping = loop.run_in_executor(self._streams, pump)
        try:
            while True:
                try:
                    pieces, ended = await handoff.take()
                except Exception as exc:
                    raise _translate(f"logs {container_id[:12]}", exc) from exc
                for piece in pieces:
                    yield piece
                if ended:
                    return
        finally:
            handoff.cancel()
            if pumping.done():
                pumping.result()

    async def list_managed(self, labels: Mapping[str, str]) -> list[ManagedContainer]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        rows: list[dict[str, Any]] = await self._call(
            "list containers", lambda: self._client.api.containers(all=True, filters=filters)
        )
        return [
            ManagedContainer(
                container_id=str(row["Id"]),
                name=str((row.get("Names") or ["?"])[0]).lstrip("/"),
                state=str(row.get("State", "")),
                labels=MappingProxyType(dict(row.get("Labels") or {})),
            )
            for row in rows
        ]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._control.shutdown(wait=False, cancel_futures=True)
        self._streams.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._client.close)


def _pump_frames(
    response: Any, handoff: OutputHandoff, container_id: str, *, skip: int = 0
) -> int | None:
    """Reads the multiplexed stream in large pieces and hands the payloads over.

    The first ``skip`` payload bytes are not handed over. Returns how many were (``None``
    once the hand-off is cancelled).

    dockerd sends the logs as chunked HTTP, one chunk per frame. Reading them through
    urllib3 costs a call per chunk; instead the socket's buffered reader is read directly,
    as much as has arrived per call, and the chunked coding is decoded here.
    """
    demux = FrameDemux()
    sent = 0
    buffered = getattr(getattr(response.raw, "_fp", None), "fp", None)
    chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
    decoder: ChunkedDecoder | None = None
    read: Callable[[int], bytes] = response.raw.read1
    if chunked and buffered is not None and hasattr(buffered, "read1"):
        decoder, read = ChunkedDecoder(), buffered.read1
    while not handoff.cancelled:
        data = read(_READ_BYTES)  # what has arrived, without waiting for more
        if not data:
            break
        body = decoder.feed(data) if decoder is not None else data
        for stream, payload in demux.feed(body):
            if skip:
                cut = min(skip, len(payload))
                skip -= cut
                payload = payload[cut:]
            if payload and not handoff.put(stream, payload):
                return None
            sent += len(payload)
        if decoder is not None and decoder.done:
            break
    if decoder is not None and not decoder.done and not handoff.cancelled:
        _log.warning("output of container %s: the HTTP body ended early", container_id[:12])
    if demux.incomplete:
        _log.warning(
            "output of container %s ended inside a frame (%d bytes missing)",
            container_id[:12],
            demux.incomplete,
        )
    return None if handoff.cancelled else sent


def _translate(what: str, exc: BaseException) -> SymbiError:
    import docker.errors
    import requests.exceptions

    if isinstance(exc, SymbiError):
        return exc
    if isinstance(exc, docker.errors.ImageNotFound):
        return NotFound(
            f"docker {what}: image not present on this node ({_explain(exc)}); "
            "build it (`symbi sandbox build-images`) or pull it first",
            reason="IMAGE_NOT_FOUND",
        )
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(f"docker {what}: {_explain(exc)}", reason="CONTAINER_NOT_FOUND")
    if isinstance(exc, docker.errors.APIError):
        text = _explain(exc)
        if exc.status_code == 409:
            return AlreadyExists(f"docker {what}: {text}", reason="CONTAINER_EXISTS")
        if any(s in text for s in ("executable file not found", "no such file or directory")):
            return InvalidArgument(
                f"docker {what}: the task's command cannot be executed in its image: {text}",
                reason="COMMAND_NOT_FOUND",
            )
        if exc.status_code is not None and 400 <= exc.status_code < 500:
            return InvalidArgument(f"docker {what}: {text}", reason="DOCKER_REJECTED")
        return FailedPrecondition(f"docker {what} failed: {text}", reason="DOCKER_FAILED")
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ConnectTimeout):
        return DeadlineExceeded(f"docker {what} timed out")
    if isinstance(exc, requests.exceptions.ConnectionError):
        # docker-py reports a wait() timeout as a ConnectionError wrapping a ReadTimeoutError.
        if "timed out" in str(exc).lower():
            return DeadlineExceeded(f"docker {what} timed out")
        return Unavailable(
            f"docker {what}: dockerd unreachable ({exc})", reason="DOCKER_UNAVAILABLE"
        )
    if isinstance(exc, docker.errors.DockerException):
        return Unavailable(f"docker {what}: {exc}", reason="DOCKER_UNAVAILABLE")
    return SymbiError(f"docker {what}: unexpected {type(exc).__name__}: {exc}")


def _explain(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
