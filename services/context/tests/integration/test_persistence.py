"""Kill -9 loses no acknowledged memory: a child process stores memories through the
embedded store, prints an acknowledgement after each store returns, and is killed with
SIGKILL mid-stream; reopening the store finds every acknowledged memory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from symbi_context import (
    ClearancePolicy,
    EdgeVectorStore,
    HashingEmbedder,
    MemoryQuery,
    MemoryStore,
)

CHILD = r"""
import asyncio, sys
from symbi_context import ClearancePolicy, EdgeVectorStore, HashingEmbedder, MemoryStore, NewMemory

async def main(path):
    store = EdgeVectorStore(path)
    memory = MemoryStore(store, HashingEmbedder(), ClearancePolicy())
    await memory.open()
    i = 0
    while True:  # until killed
        (rec,) = await memory.store("agent-k", [NewMemory(f"acknowledged memory number {i}")])
        print(f"ACK {rec.id} {i}", flush=True)
        i += 1

asyncio.run(main(sys.argv[1]))
"""


async def test_acknowledged_memories_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "store"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    acked: dict[str, int] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    try:
        while len(acked) < 300:
            assert time.monotonic() < deadline, "child did not acknowledge 300 memories in 60 s"
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
            assert line, (await proc.stderr.read()).decode() if proc.stderr else "child exited"
            _, memory_id, n = line.decode().split()
            acked[memory_id] = int(n)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = EdgeVectorStore(path)
    memory = MemoryStore(store, HashingEmbedder(), ClearancePolicy())
    await memory.open()
    try:
        missing = []
        for memory_id, n in acked.items():
            record = await memory.get("agent-k", memory_id)
            if record.content != f"acknowledged memory number {n}":
                missing.append(memory_id)
        assert missing == []
        found = await memory.retrieve(
            "agent-k", MemoryQuery("acknowledged memory number 7", limit=3)
        )
        assert found
    finally:
        await store.aclose()
