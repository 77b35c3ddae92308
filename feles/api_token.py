"""The API's bearer token: generated per run, read from a file or the environment, never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_ENV = "FELES_API_TOKEN"


class TokenError(ValueError):
    """The token file cannot be read or holds no token."""


def generate_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def read_token(token_file: Path | None) -> str | None:
    """The token from `token_file` if given, else from $FELES_API_TOKEN, else None."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise TokenError(f"cannot read the token file {token_file}: {error.strerror or error}") from None
        if not token:
            raise TokenError(f"the token file {token_file} is empty")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or None


def tokens_match(expected: str, authorization: str | None) -> bool:
    """Whether an Authorization header carries the expected bearer token (constant-time compare)."""
    if not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.strip().encode(), expected.encode())
