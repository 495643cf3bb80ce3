"""Short-lived browser tokens (API.md §7): a JWT minted from an API key, carrying the key's name and some of its
scopes, that a browser can hold instead of the key (and that EventSource can put in a URL).

Stateless: nothing is stored. Each token is signed (HS256) with a secret derived from the API key that minted
it, so
- every replica that has the same CONFCTL_API_KEYS accepts every other replica's tokens, with no new secret to
  configure and share;
- removing or rotating an API key revokes at once every token it minted, and narrowing a key's scopes narrows
  its live tokens too (a token's scopes are always cut down to the key's current ones);
- a token does not reveal the key: the derivation is an HMAC, one-way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from confctl.entry.settings import ApiKey, Scope

ISSUER = "confctl"
AUDIENCE = "confctl:browser"
ALGORITHM = "HS256"
_DERIVATION = b"confctl browser token v1"  # a new value here revokes every token ever minted


class TokenRefused(Exception):
    """A presented token that is not (or no longer) valid; `expired` tells the two cases apart."""

    def __init__(self, detail: str, *, expired: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.expired = expired


@dataclass(frozen=True, slots=True)
class Minted:
    """A new token and what it grants."""

    token: str
    expires_at: int  # Unix time, seconds
    scopes: list[Scope]


def signing_secret(key: ApiKey) -> bytes:
    """The HMAC secret of the tokens `key` mints: derived from the key's own secret, never stored or logged."""
    return hmac.new(key.key.encode(), _DERIVATION, hashlib.sha256).digest()


def looks_like_token(presented: str) -> bool:
    """Whether `presented` has a JWT's shape (three dot-separated parts); API keys are matched first anyway."""
    return presented.count(".") == 2


def mint(key: ApiKey, scopes: list[Scope], ttl_s: int, now: float) -> Minted:
    """A token for `key`'s name with `scopes` (the caller has checked they are the key's), valid `ttl_s` seconds."""
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": key.name, "scope": " ".join(scopes),
        "iat": issued, "exp": issued + ttl_s, "jti": secrets.token_urlsafe(12),
    }
    return Minted(jwt.encode(claims, signing_secret(key), algorithm=ALGORITHM), issued + ttl_s, scopes)


def verify(token: str, keys: list[ApiKey], now: float) -> tuple[ApiKey, int]:
    """The key that minted `token`, its scopes cut down to the token's, and the token's expiry; else TokenRefused.

    The signature is checked before the expiry, so "expired" is only ever said of a token confctl did mint.
    """
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefused("The token is not a confctl token.") from None
    name = unverified.get("sub")
    for key in (k for k in keys if k.name == name):
        try:
            claims = jwt.decode(token, signing_secret(key), algorithms=[ALGORITHM], audience=AUDIENCE,
                                issuer=ISSUER, options={"verify_exp": False, "require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError:
            continue  # another key of the same name may have minted it
        expires_at = claims["exp"]
        if not isinstance(expires_at, int) or expires_at <= now:
            raise TokenRefused("The token has expired; mint a new one with POST /v1/tokens.", expired=True)
        granted = str(claims.get("scope", "")).split()
        return key.model_copy(update={"scopes": [s for s in key.scopes if s in granted]}), expires_at
    raise TokenRefused("The token is not valid (unknown or rotated API key, or a bad signature).")
