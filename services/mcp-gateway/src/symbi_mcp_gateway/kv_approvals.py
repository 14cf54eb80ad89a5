"""The approval store over a NATS JetStream KV bucket, shared by every gateway replica.

Keys are ``call.<record digest>`` (:func:`~symbi_mcp_gateway.approvals.call_digest`, 32 hex
digits); values are :meth:`CallApproval.to_json`. Create-if-absent and compare-and-set on the
KV revision make every transition atomic across replicas (an approved call is consumed by
one of them only). Listing reads the bucket's keys from the stream's subject index and gets
each (not a KV watch: nats-py's watcher may report "no more values" before the first one
arrives, which would list nothing). The bucket's TTL (twice ``approval_ttl_s``) removes records long after
they stopped mattering; validity itself is the record's ``expires_at_ms``.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from symbi_common.errors import Aborted, AlreadyExists, InvalidArgument
from symbi_common.jetstream.spec import BucketSpec
from symbi_mcp_gateway.approvals import CallApproval, StoredApproval
from symbi_mcp_gateway.kv_keys import stored_keys

__all__ = ["KvApprovalStore", "approvals_bucket"]

logger = logging.getLogger(__name__)

_PREFIX = "call."


def approvals_bucket(approval_ttl_s: float) -> BucketSpec:
    return BucketSpec(
        name="mcp_approvals",
        description="MCP gateway: human approvals of require_approval tool calls",
        history=1,
        ttl_s=approval_ttl_s * 2,
        max_value_size=16 * 1024,
    )


class KvApprovalStore:
    """An :class:`~symbi_mcp_gateway.approvals.ApprovalStore` in a JetStream KV bucket."""

    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv = kv
        self._js = js
        self._bucket = bucket

    async def get(self, digest: str) -> StoredApproval | None:
        try:
            entry = await self._kv.get(_PREFIX + digest)
        except KeyNotFoundError:  # KeyDeletedError is one too
            return None
        if not entry.value:
            return None
        return StoredApproval(CallApproval.from_json(entry.value), entry.revision or 0)

    async def create(self, approval: CallApproval) -> int:
        try:
            return await self._kv.create(_PREFIX + approval.digest, approval.to_json())
        except KeyWrongLastSequenceError:
            raise AlreadyExists("the approval record exists", reason="APPROVAL_EXISTS") from None

    async def update(self, approval: CallApproval, *, revision: int) -> int:
        try:
            return await self._kv.update(
                _PREFIX + approval.digest, approval.to_json(), last=revision
            )
        except KeyWrongLastSequenceError:
            raise Aborted(
                f"approval {approval.approval_id} changed since revision {revision}",
                reason="APPROVAL_CHANGED",
            ) from None

    async def list(self) -> list[CallApproval]:
        approvals: list[CallApproval] = []
        for key in await stored_keys(self._js, self._bucket, _PREFIX):
            try:
                stored = await self.get(key.removeprefix(_PREFIX))
            except InvalidArgument:
                logger.warning("ignoring a malformed approval record under %s", key)
                continue
            if stored is not None:
                approvals.append(stored.approval)
        return approvals
