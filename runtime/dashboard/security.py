"""Who may use the dashboard: the bind rule, the token, sessions and CSRF tokens.

Pure (no I/O, no web framework): ``app.py`` applies it to every request.

- The dashboard binds to loopback by default; on any other address it needs a token.
- With a token, every page and every action needs it: in the ``Authorization: Bearer`` header
  (scripts), or once in the login form, after which a cookie proves it.
- Every browser gets a session cookie (random); each form carries a CSRF token derived from
  that session with the server's secret, and a POST whose token does not match is refused. A
  request authenticated by the header needs none: a page of another site cannot set it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from typing import Final

from ..errors import ConfigurationError

__all__ = [
    "AUTH_COOKIE",
    "MIN_TOKEN_LENGTH",
    "SESSION_COOKIE",
    "Guard",
    "check_bind",
    "is_loopback",
    "loopback_hosts",
]

SESSION_COOKIE: Final = "queues_session"
AUTH_COOKIE: Final = "queues_auth"
#: Shortest token accepted: long enough that guessing it over HTTP is hopeless.
MIN_TOKEN_LENGTH: Final = 16
_SESSION_BYTES: Final = 32
_TOKEN_HINT: Final = (
    "make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'` and pass it "
    "as --token or in QUEUES_DASHBOARD_TOKEN"
)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` listens on this machine only (``localhost``, 127.0.0.0/8,
    ``::1``). A name other than ``localhost`` counts as not loopback: it may resolve anywhere."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse (``ConfigurationError``) a non-loopback ``host`` without a token, and a token
    too short or with spaces."""
    if token is not None:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigurationError(
                f"the dashboard token is too short ({len(token)} characters): use at least "
                f"{MIN_TOKEN_LENGTH}; {_TOKEN_HINT}"
            )
        if token != token.strip() or any(c.isspace() or ord(c) < 32 for c in token):
            raise ConfigurationError(
                f"the dashboard token holds spaces or control characters; {_TOKEN_HINT}"
            )
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host!r} without a token: anyone who can "
            "reach that address could retry, cancel and redrive jobs. Bind to 127.0.0.1 "
            f"(the default), or set a token: {_TOKEN_HINT}"
        )


def loopback_hosts() -> list[str]:
    """The Host header names a loopback-bound dashboard answers to (any port). Others are
    refused, so that a web page whose name was rebound to 127.0.0.1 cannot read it."""
    return ["localhost", "127.0.0.1", "[::1]", "::1"]


class Guard:
    """The server's secret and the checks made with it. A new secret on every start: a
    restart signs everyone out, which is what a token change needs too."""

    __slots__ = ("_secret", "_token")

    def __init__(self, token: str | None, *, secret: bytes | None = None) -> None:
        self._token = token
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    @property
    def token_required(self) -> bool:
        return self._token is not None

    # -- sessions and CSRF --------------------------------------------------------------------

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(_SESSION_BYTES)

    @staticmethod
    def valid_session(value: str | None) -> bool:
        """Whether ``value`` has the shape of a session this server hands out."""
        if value is None or len(value) != 43:
            return False
        try:
            return len(base64.urlsafe_b64decode(value + "=")) == _SESSION_BYTES
        except ValueError:
            return False

    def _sign(self, purpose: str, session: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}:{session}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")

    def csrf_token(self, session: str) -> str:
        """The token the forms of ``session`` carry."""
        return self._sign("csrf", session)

    def csrf_ok(self, session: str | None, submitted: str | None) -> bool:
        if not self.valid_session(session) or not submitted:
            return False
        assert session is not None
        return hmac.compare_digest(self.csrf_token(session), submitted)

    # -- the token ----------------------------------------------------------------------------

    def token_matches(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is the token (compared in constant time)."""
        if self._token is None or not candidate:
            return False
        return hmac.compare_digest(
            hashlib.sha256(candidate.encode()).digest(),
            hashlib.sha256(self._token.encode()).digest(),
        )

    def bearer_ok(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (``Bearer <token>``)."""
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def auth_cookie(self, session: str) -> str:
        """The cookie value proving that ``session`` entered the token."""
        return self._sign("auth", session)

    def cookie_ok(self, session: str | None, cookie: str | None) -> bool:
        if self._token is None or not self.valid_session(session) or not cookie:
            return False
        assert session is not None
        return hmac.compare_digest(self.auth_cookie(session), cookie)
