"""The keys a JetStream KV bucket holds under a prefix, from the stream's subject index.

Not a KV watch: nats-py's watcher may report "no more values" before the first one arrives,
which would list nothing. Keys of deleted values may still be in the index (their delete
marker is a message); callers ``get`` each key and skip the deleted ones.
"""

from __future__ import annotations

from nats.js import JetStreamContext

__all__ = ["stored_keys"]


async def stored_keys(js: JetStreamContext, bucket: str, prefix: str) -> list[str]:
    """The keys under ``prefix`` in KV ``bucket``, sorted."""
    subject_prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{subject_prefix}{prefix}>")
    return sorted(subject.removeprefix(subject_prefix) for subject in info.state.subjects or {})
