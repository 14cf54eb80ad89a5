"""Bearer tokens of the gateway's MCP endpoint: Ed25519-signed, expiring, checked against the
platform's keyring (docs/adr/0084-agent-tokens.md).

A token is ``sat1.<claims>.<signature>`` (both unpadded base64url). The claims are a JSON
object ``{aud, exp, iat, iss, jti, kid, sub}``: the agent (``sub``), the principal that signed
(``iss``) with its key id (``kid``), and the lifetime in Unix milliseconds. The signature is
Ed25519 over ``b"symbi-agent-token-v1\\n" + <claims text>`` (the prefix keeps a token signature
from ever being mistaken for an envelope's, and back).

Who may sign a token for agent ``A``:

- ``A`` itself (a principal of role ``agent``, certified by the cluster root or a worker
  node's issuer) — an agent with bus credentials mints its own tokens;
- a gateway replica (``svc-mcp-gateway-*``, role ``service``) — what ``IssueAgentToken``
  hands out to operators and platform components.

Verification needs no shared secret and no state: the signer's certificate comes from the
keyring every service already follows, so a revoked or expired certificate invalidates its
tokens at once, on every replica.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError

from symbi_common.crypto.identity import PrincipalKeys
from symbi_common.crypto.keyring import Keyring
from symbi_common.crypto.rejects import EnvelopeRejected
from symbi_common.errors import InvalidArgument, PermissionDenied

__all__ = [
    "AGENT_ID_PATTERN",
    "AUDIENCE",
    "GATEWAY_ISSUER_PREFIX",
    "TOKEN_PREFIX",
    "AgentTokenClaims",
    "KeyringTokenAuthenticator",
    "check_agent_id",
    "issue_agent_token",
]

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sat1"
AUDIENCE = "symbi-mcp-gateway"
GATEWAY_ISSUER_PREFIX = "svc-mcp-gateway-"
_SIGNING_PREFIX = b"symbi-agent-token-v1\n"
#: Agent ids as contract C2 has them: letters, digits, ``-`` and ``_``, at most 64.
AGENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_AGENT_ID_RE = re.compile(AGENT_ID_PATTERN)
_MAX_TOKEN_CHARS = 4096
_CACHE_SIZE = 4096


def check_agent_id(agent_id: str) -> str:
    """``agent_id`` if it is a valid agent principal id.

    Raises:
        InvalidArgument: it is empty or not one.
    """
    if not _AGENT_ID_RE.match(agent_id):
        raise InvalidArgument(
            f"agent id {agent_id[:80]!r} is invalid: use 1-64 letters, digits, '-' or '_'",
            reason="BAD_AGENT_ID",
        )
    return agent_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


@dataclass(frozen=True, slots=True)
class AgentTokenClaims:
    """What a token says."""

    agent_id: str
    issuer: str
    key_id: str
    issued_at_ms: int
    expires_at_ms: int
    token_id: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "aud": AUDIENCE,
                "exp": self.expires_at_ms,
                "iat": self.issued_at_ms,
                "iss": self.issuer,
                "jti": self.token_id,
                "kid": self.key_id,
                "sub": self.agent_id,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: bytes) -> AgentTokenClaims:
        raw: Any = json.loads(text)
        if not isinstance(raw, dict) or raw.get("aud") != AUDIENCE:
            raise ValueError("not a token for the MCP gateway")
        texts = [raw.get(key) for key in ("sub", "iss", "kid", "jti")]
        times = [raw.get(key) for key in ("iat", "exp")]
        strings = [value for value in texts if isinstance(value, str)]
        numbers = [v for v in times if isinstance(v, int) and not isinstance(v, bool)]
        if len(strings) != len(texts):
            raise ValueError("claims sub, iss, kid and jti must be strings")
        if len(numbers) != len(times):
            raise ValueError("claims iat and exp must be integers")
        sub, iss, kid, jti = strings
        iat, exp = numbers
        return cls(sub, iss, kid, iat, exp, jti)


def issue_agent_token(
    keys: PrincipalKeys, agent_id: str, *, ttl_s: float, now_ms: int | None = None
) -> tuple[str, AgentTokenClaims]:
    """A token for ``agent_id`` signed by ``keys`` (the agent's own, or a gateway's)."""
    issued = int(time.time() * 1000) if now_ms is None else now_ms
    claims = AgentTokenClaims(
        agent_id=check_agent_id(agent_id),
        issuer=keys.principal_id,
        key_id=keys.key_id,
        issued_at_ms=issued,
        expires_at_ms=issued + int(ttl_s * 1000),
        token_id=secrets.token_hex(8),
    )
    body = claims.to_json().encode()
    signature = keys.sign(_SIGNING_PREFIX + body)
    return f"{TOKEN_PREFIX}.{_b64(body)}.{_b64(signature)}", claims


class KeyringTokenAuthenticator:
    """:class:`~symbi_mcp_gateway.ports.AgentAuthenticator` for ``sat1`` tokens.

    Signatures that verified are remembered (bounded); lifetime, certificate validity and
    revocation are checked on every request.
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        max_ttl_s: float,
        clock_skew_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keyring = keyring
        self._max_ttl_ms = int(max_ttl_s * 1000)
        self._skew_ms = int(clock_skew_s * 1000)
        self._clock = clock
        self._verified: OrderedDict[str, AgentTokenClaims] = OrderedDict()

    async def authenticate(self, token: str) -> str | None:
        try:
            return self.verify(token).agent_id
        except PermissionDenied as exc:
            logger.info("MCP endpoint: token refused: %s", exc.message)
            return None

    def verify(self, token: str) -> AgentTokenClaims:
        """The claims of a valid token.

        Raises:
            PermissionDenied: the token is malformed, expired, too long-lived, signed by a
                principal that may not speak for the agent, or its signature does not verify.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._parse(token)
        else:
            self._verified.move_to_end(token)
        now = int(self._clock() * 1000)
        if claims.issued_at_ms > now + self._skew_ms:
            raise self._refuse("the token is issued in the future")
        if claims.expires_at_ms <= now:
            raise self._refuse("the token expired")
        if claims.expires_at_ms - claims.issued_at_ms > self._max_ttl_ms:
            raise self._refuse(f"the token lives longer than {self._max_ttl_ms // 1000}s")
        try:
            certificate = self._keyring.lookup(claims.issuer, claims.key_id, at_ms=now)
        except EnvelopeRejected as exc:
            raise self._refuse(f"its signer is not valid now: {exc}") from None
        role = certificate.role
        if role == "agent":
            if claims.issuer != claims.agent_id:
                raise self._refuse("an agent may sign tokens for itself only")
        elif not (role == "service" and claims.issuer.startswith(GATEWAY_ISSUER_PREFIX)):
            raise self._refuse(f"a {role} ({claims.issuer}) may not sign agent tokens")
        if token not in self._verified:
            body, signature = self._split(token)
            try:
                certificate.verify_key.verify(_SIGNING_PREFIX + body, signature)
            except BadSignatureError:
                raise self._refuse("the signature does not verify") from None
            self._verified[token] = claims
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    @staticmethod
    def _refuse(why: str) -> PermissionDenied:
        return PermissionDenied(f"agent token refused: {why}", reason="BAD_AGENT_TOKEN")

    def _split(self, token: str) -> tuple[bytes, bytes]:
        if len(token) > _MAX_TOKEN_CHARS:
            raise self._refuse("the token is too long")
        prefix, _, rest = token.partition(".")
        body_text, _, signature_text = rest.partition(".")
        if prefix != TOKEN_PREFIX or not body_text or not signature_text:
            raise self._refuse(f"not a {TOKEN_PREFIX} token")
        try:
            return _unb64(body_text), _unb64(signature_text)
        except (binascii.Error, ValueError):
            raise self._refuse("the token is not base64url") from None

    def _parse(self, token: str) -> AgentTokenClaims:
        body, _ = self._split(token)
        try:
            claims = AgentTokenClaims.from_json(body)
        except ValueError as exc:
            raise self._refuse(f"malformed claims: {exc}") from None
        try:
            check_agent_id(claims.agent_id)
        except InvalidArgument as exc:
            raise self._refuse(exc.message) from None
        return claims
