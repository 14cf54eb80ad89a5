"""Secure bus versus raw nats-py JetStream: throughput and end-to-end latency.

    uv run python bench/bus.py [--count 50000] [--size 1024] [--inflight 512] [--sync both|os|always]
    uv run python bench/bus.py --quick     # 10,000 messages, os fsync only: for iterating

For each server configuration (``os``: the server's default periodic fsync; ``always``:
``sync_interval: always``, the platform's default), and for each path (``raw``: nats-py
JetStream; ``secure``: the Symbi bus — Ed25519-signed, AES-256-GCM-encrypted direct
messages), a publisher process and a consumer process run against a fresh nats-server with
file storage (the consumer's per-sender rate limit is off: the publisher floods on purpose).
Both paths use the same stream settings and the same ack pattern: the publisher
keeps ``--inflight`` acknowledged publishes (with ``Nats-Msg-Id``) in flight; the consumer
pulls in batches and acks each message explicitly.

Throughput is measured at the consumer, first to last message of a saturating run; each
child also reports its CPU time per message (all threads), which is steadier than wall-clock
throughput on a shared machine. Latency (publish → handled) is measured in a separate paced
run (``--rate`` messages/s), where queueing does not dominate.

Both configurations run the full ``--count``. The last line, ``bus secure/raw ratio: <x>``, is
for the server's default fsync whenever it ran: with ``sync_interval: always`` (the platform's
configuration) both paths wait on one fsync per write, so that ratio measures the disk rather
than the bus (and flatters the bus); it is printed, labelled, just above the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------------- child processes
async def child_publish(args: argparse.Namespace) -> None:
    import nats

    from symbi_common.bus import BusEndpoint, load_credentials
    from symbi_common.bus.permissions import inbox_prefix

    payload_pad = b"x" * max(0, args.size - 8)
    run = f"r{os.getpid()}"  # message ids unique per run: JetStream de-duplicates within 2 minutes
    if args.path == "secure":
        credentials = load_credentials(Path(args.keys), "svc-bench-pub")
        nc = await nats.connect(args.url, inbox_prefix=inbox_prefix("svc-bench-pub"))
        endpoint = await BusEndpoint.open(nc, nc.jetstream(), credentials, manage_topics=())
        keys_task = asyncio.create_task(endpoint.run())
        while endpoint.bus.keyring.current("svc-bench-sub") is None:  # noqa: ASYNC110 (polls the KV watch)
            await asyncio.sleep(0.05)
        bus = endpoint.bus

        async def send(i: int) -> None:
            await bus.send(
                "svc-bench-sub",
                time.time_ns().to_bytes(8, "big") + payload_pad,
                msg_id=f"{run}-{i}",
            )

    else:
        nc = await nats.connect(args.url)
        js = nc.jetstream()

        async def send(i: int) -> None:
            data = time.time_ns().to_bytes(8, "big") + payload_pad
            await js.publish("bench.raw.sub", data, headers={"Nats-Msg-Id": f"{run}-{i}"})

    print("READY", flush=True)
    sys.stdin.readline()  # the parent says go once the consumer is ready
    started = time.perf_counter()
    cpu_started = time.process_time()
    if args.rate:  # paced: one message every 1/rate seconds
        interval = 1.0 / args.rate
        pending: set[asyncio.Task[None]] = set()
        for i in range(args.count):
            target = started + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(send(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    else:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.count):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                await send(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(args.inflight)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(json.dumps({"published": args.count, "seconds": elapsed, "cpu_s": cpu}), flush=True)
    if args.path == "secure":
        keys_task.cancel()
    await nc.close()


async def child_consume(args: argparse.Namespace) -> None:
    import nats
    from nats.js import api

    from symbi_common.bus import BusEndpoint, ConsumerSpec, Received, load_credentials
    from symbi_common.bus.permissions import inbox_prefix
    from symbi_common.config import BusSection

    latencies: list[int] = []
    first = last = 0.0
    cpu_first = cpu_last = 0.0
    done = asyncio.Event()

    def record(data: bytes) -> None:
        nonlocal first, last, cpu_first, cpu_last
        now = time.perf_counter()
        if not latencies:
            first, cpu_first = now, time.process_time()
        last = now
        latencies.append(time.time_ns() - int.from_bytes(data[:8], "big"))
        if len(latencies) >= args.count:
            cpu_last = time.process_time()
            done.set()

    if args.path == "secure":
        credentials = load_credentials(Path(args.keys), "svc-bench-sub")
        nc = await nats.connect(args.url, inbox_prefix=inbox_prefix("svc-bench-sub"))
        # The publisher sends faster than the default per-sender limit (5000/s) on purpose.
        config = BusSection(rate_per_sender=0)
        endpoint = await BusEndpoint.open(
            nc, nc.jetstream(), credentials, config=config, manage_topics=()
        )
        keys_task = asyncio.create_task(endpoint.run())
        spec = ConsumerSpec.direct("svc-bench-sub")
        await endpoint.bus.ensure_consumer(spec)

        async def handle(message: Received) -> None:
            record(message.payload)

        loop = asyncio.create_task(endpoint.bus.consume(spec, handle, batch=args.batch))
    else:
        nc = await nats.connect(args.url)
        js = nc.jetstream()
        await js.add_consumer(
            "BENCH_RAW",
            api.ConsumerConfig(
                name="raw-sub",
                durable_name="raw-sub",
                ack_policy=api.AckPolicy.EXPLICIT,
                filter_subject="bench.raw.sub",
                max_ack_pending=4096,
            ),
        )
        sub = await js.pull_subscribe_bind("raw-sub", "BENCH_RAW")

        async def pull() -> None:
            while True:
                try:
                    messages = await sub.fetch(args.batch, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                for message in messages:
                    record(message.data)
                    await message.ack()

        loop = asyncio.create_task(pull())
    print("READY", flush=True)
    await done.wait()
    loop.cancel()
    with contextlib.suppress(BaseException):  # stopped before the connection closes
        await loop
    if args.path == "secure":
        keys_task.cancel()
    latencies.sort()
    print(
        json.dumps(
            {
                "received": len(latencies),
                "seconds": last - first,
                "cpu_s": cpu_last - cpu_first,
                "p50_ms": latencies[len(latencies) // 2] / 1e6,
                "p99_ms": latencies[int(len(latencies) * 0.99) - 1] / 1e6,
                "mean_ms": statistics.fmean(latencies) / 1e6,
            }
        ),
        flush=True,
    )
    await nc.close()


# ---------------------------------------------------------------------------- the parent
def spawn(
    role: str, path: str, url: str, keys: Path, args: argparse.Namespace, count: int, rate: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE),
            "--child",
            role,
            "--path",
            path,
            "--url",
            url,
            "--keys",
            str(keys),
            "--count",
            str(count),
            "--size",
            str(args.size),
            "--inflight",
            str(args.inflight),
            "--batch",
            str(args.batch),
            "--rate",
            str(rate),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def expect_line(process: subprocess.Popen[str], prefix: str) -> str:
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited (code {process.wait()}) before printing {prefix!r}")
        if line.startswith(prefix):
            return line.strip()


def run_pair(
    path: str, url: str, keys: Path, args: argparse.Namespace, count: int, rate: float
) -> dict[str, float]:
    consumer = spawn("consume", path, url, keys, args, count, rate)
    expect_line(consumer, "READY")
    publisher = spawn("publish", path, url, keys, args, count, rate)
    expect_line(publisher, "READY")
    assert publisher.stdin is not None
    publisher.stdin.write("go\n")
    publisher.stdin.flush()
    pub = json.loads(expect_line(publisher, "{"))
    con = json.loads(expect_line(consumer, "{"))
    publisher.wait(30)
    consumer.wait(30)
    return {
        "msgs_per_s": con["received"] / con["seconds"],
        "publish_s": pub["seconds"],
        "pub_cpu_us": pub["cpu_s"] / count * 1e6,
        "con_cpu_us": con["cpu_s"] / count * 1e6,
        **con,
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_configuration(sync: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from nats.js import api

    from symbi_common.bus import ClusterAuthority
    from symbi_common.config import NatsSection
    from symbi_common.jetstream import PLATFORM_BUCKETS, PLATFORM_STREAMS, Provisioner
    from symbi_common.jetstream.server import NatsServerConfig, NatsServerProcess

    results: dict[str, dict[str, float]] = {}
    for path in ("raw", "secure"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            server = NatsServerProcess(
                NatsServerConfig(store_dir=root / "nats", sync_always=sync == "always")
            )
            server.start()
            try:
                authority = ClusterAuthority.open(root / "keys")
                authority.issue("svc-bench-pub", "service")
                authority.issue("svc-bench-sub", "service")

                async def provision(url: str) -> None:
                    import nats

                    nc = await nats.connect(url)
                    js = nc.jetstream()
                    await Provisioner(js, NatsSection()).provision(
                        PLATFORM_STREAMS, PLATFORM_BUCKETS
                    )
                    direct = next(s for s in PLATFORM_STREAMS if s.name == "DIRECT")
                    # The raw path gets a stream with exactly the DIRECT stream's settings.
                    await js.add_stream(
                        api.StreamConfig(
                            name="BENCH_RAW",
                            subjects=["bench.raw.>"],
                            storage=api.StorageType.FILE,
                            max_age=direct.max_age_s,
                            max_msg_size=direct.max_msg_size,
                            duplicate_window=direct.duplicate_window_s,
                        )
                    )
                    await nc.close()

                asyncio.run(provision(server.url))
                print(
                    f"[{sync}] {path}: {args.count} messages, {args.inflight} in flight…",
                    flush=True,
                )
                assert server.process is not None
                server_cpu = process_cpu_s(server.process.pid)
                throughput = run_pair(path, server.url, root / "keys", args, args.count, 0)
                server_cpu = process_cpu_s(server.process.pid) - server_cpu
                print(f"[{sync}] {path}: paced latency run at {args.rate:.0f} msg/s…", flush=True)
                paced = run_pair(
                    path, server.url, root / "keys", args, args.latency_count, args.rate
                )
                results[path] = {
                    "msgs_per_s": throughput["msgs_per_s"],
                    "p50_ms": paced["p50_ms"],
                    "p99_ms": paced["p99_ms"],
                    "saturated_p50_ms": throughput["p50_ms"],
                    "pub_cpu_us": throughput["pub_cpu_us"],
                    "con_cpu_us": throughput["con_cpu_us"],
                    "server_cpu_us": server_cpu / args.count * 1e6,
                }
            finally:
                server.stop()
    return results


def report(sync: str, results: dict[str, dict[str, float]]) -> float:
    raw, secure = results["raw"], results["secure"]
    ratio = secure["msgs_per_s"] / raw["msgs_per_s"]
    label = (
        "server fsync every write (sync_interval: always)"
        if sync == "always"
        else "server default fsync (os page cache, periodic fsync)"
    )
    print(f"\n== {label}")
    for path in ("raw", "secure"):
        r = results[path]
        print(
            f"  {path:6} {r['msgs_per_s']:9.0f} msgs/s   latency at the paced rate p50 {r['p50_ms']:.2f} ms  "
            f"p99 {r['p99_ms']:.2f} ms   (saturated p50 {r['saturated_p50_ms']:.0f} ms)\n"
            f"         CPU per message: publisher {r['pub_cpu_us']:.0f} µs, consumer {r['con_cpu_us']:.0f} µs, "
            f"nats-server {r['server_cpu_us']:.0f} µs"
        )
    print(f"  ratio secure/raw {ratio:.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", choices=("publish", "consume"))
    parser.add_argument("--path", choices=("raw", "secure"), default="raw")
    parser.add_argument("--url", default="")
    parser.add_argument("--keys", default="")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--latency-count", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--inflight", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sync", choices=("both", "os", "always"), default="both")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="iterate: 10,000 messages, 1,000 paced, os fsync only (not the reported figure)",
    )
    args = parser.parse_args()
    if args.quick:
        args.count, args.latency_count, args.sync = 10_000, 1000, "os"
    if args.child == "publish":
        asyncio.run(child_publish(args))
        return
    if args.child == "consume":
        asyncio.run(child_consume(args))
        return
    print(
        f"bus benchmark: {args.count} × {args.size} B, pid {os.getpid()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    configurations = ["os", "always"] if args.sync == "both" else [args.sync]
    ratios = {}
    for sync in configurations:  # every configuration at the full --count
        ratios[sync] = report(sync, run_configuration(sync, args))
    print()
    if "always" in ratios and "os" in ratios:
        print(
            f"bus secure/raw ratio with sync_interval: always (the platform's configuration): "
            f"{ratios['always']:.2f}"
        )
    final = "os" if "os" in ratios else "always"
    if final == "os":
        # Under sync_interval: always both paths wait on one fsync per write (~1,000/s on this
        # kind of disk): that ratio measures the disk, not the bus, and flatters the bus.
        print(
            f"(the last line measures the server's default fsync, where the bus's own CPU cost "
            f"shows; with fsync on every write both paths are bound by the disk; "
            f"{args.count} messages)"
        )
    else:
        print(f"(the last line measures sync_interval: always; {args.count} messages)")
    print(f"bus secure/raw ratio: {ratios[final]:.2f}")


if __name__ == "__main__":
    main()
