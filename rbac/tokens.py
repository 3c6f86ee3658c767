"""Personal API token format and hashing. Tokens are random; only their SHA-256 is stored."""

import hashlib
import secrets

TOKEN_PREFIX = "sbt_"
PREFIX_LENGTH = 12


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    return token[:PREFIX_LENGTH]
