"""Two external agents talking over the Symbi bus with the agent SDK.

    symbi up --detach
    symbi keys issue agent-alice
    symbi keys issue agent-bob
    uv run python examples/agent_sdk/ping_pong.py

Bob listens for direct messages, answers requests and follows the public agent topic; Alice
sends him a direct message, asks him a question and publishes on the topic. Every message is
signed by its sender and encrypted; Bob sees the verified sender of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from symbi_common.agent import AgentClient, Received


async def main(data_dir: Path, nats_url: str) -> None:
    keys = data_dir / "keys"
    got: asyncio.Queue[str] = asyncio.Queue()

    async with (
        await AgentClient.connect(keys, "agent-alice", nats_url) as alice,
        await AgentClient.connect(keys, "agent-bob", nats_url) as bob,
    ):

        async def on_direct(message: Received) -> None:
            await got.put(
                f"bob got a direct message from {message.sender}: {message.payload.decode()}"
            )

        async def on_public(message: Received) -> None:
            await got.put(
                f"bob read on {message.envelope.topic} from {message.sender}: {message.payload.decode()}"
            )

        async def answer(message: Received) -> bytes:
            return b"pong to " + message.payload

        await bob.open_subscription()  # from now on, topic messages are kept for bob
        async with asyncio.TaskGroup() as loops:
            tasks = [
                loops.create_task(bob.listen(on_direct)),
                loops.create_task(bob.serve(answer)),
                loops.create_task(bob.subscribe({"agents.public": on_public})),
            ]
            await alice.send("agent-bob", b"hello, bob")
            print(await asyncio.wait_for(got.get(), 15))
            reply = await alice.request("agent-bob", b"ping", timeout=10)
            print(f"alice got a reply from {reply.sender}: {reply.payload.decode()}")
            await alice.publish("agents.public", b"news for every agent")
            print(await asyncio.wait_for(got.get(), 15))
            for task in tasks:
                task.cancel()


def nats_url_of(data_dir: Path) -> str:
    state = json.loads((data_dir / "state.json").read_text())
    return str(state["nats_url"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".symbi"), help="the local platform's directory"
    )
    parser.add_argument("--nats-url", help="default: the running local platform's")
    args = parser.parse_args()
    asyncio.run(main(args.data_dir, args.nats_url or nats_url_of(args.data_dir)))
