"""Users and their bearer tokens. Tokens are stored only as SHA-256 digests.

A token is 32 random bytes, so a fast digest is enough: there is nothing to brute-force
that a slow password hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.records import UserRecord
from models.tables import API_TOKENS, USERS, ApiToken, User

TOKEN_PREFIX = "strata_"
MAX_TOKEN_LENGTH = 200
TOKEN_TAG_KIND = "Token"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_tag(token_hash: str) -> str:
    """The cache key and tag of a token's lookup: its digest, never the token itself."""
    return f"{TOKEN_TAG_KIND}:{token_hash}"


async def revoke_token(session: AsyncSession, token: str) -> list[str]:
    """Delete one token; the digests deleted (none when it was not ours)."""
    if not is_plausible(token):
        return []
    token_hash = digest(token)
    result = await session.execute(delete(API_TOKENS).where(API_TOKENS.c.token_hash == token_hash))
    return [token_hash] if result.rowcount else []  # type: ignore[attr-defined]


async def revoke_user_tokens(session: AsyncSession, name: str) -> list[str] | None:
    """Delete every token of a user; their digests, or None when there is no such user.

    The digests are what the caller invalidates: a token's cached lookup is tagged with
    its own digest only, because a lookup's tags are fixed before it loads (their versions
    are read first, against stale sets) and the user is known only after."""
    user_id = await session.scalar(select(USERS.c.id).where(USERS.c.name == name))
    if user_id is None:
        return None
    hashes = list(
        await session.scalars(
            select(API_TOKENS.c.token_hash).where(API_TOKENS.c.user_id == user_id)
        )
    )
    await session.execute(delete(API_TOKENS).where(API_TOKENS.c.user_id == user_id))
    return hashes


async def ensure_user(session: AsyncSession, name: str, *, admin: bool = False) -> User:
    user_id = await session.scalar(select(USERS.c.id).where(USERS.c.name == name))
    user = None if user_id is None else await session.get(User, user_id)
    if user is None:
        user = User(name=name, is_admin=admin)
        session.add(user)
    elif admin and not user.is_admin:
        user.is_admin = True
    await session.flush()
    return user


async def create_token(session: AsyncSession, name: str, *, admin: bool = False) -> str:
    """Create the user if needed and return a new token for it, shown only this once."""
    user = await ensure_user(session, name, admin=admin)
    assert user.id is not None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=digest(token)))
    await session.flush()
    return token


def is_plausible(token: str) -> bool:
    """Whether a string could be one of our tokens, checked before any lookup."""
    return token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH


async def user_for_token(conn: AsyncConnection, token: str) -> UserRecord | None:
    if not is_plausible(token):
        return None
    stmt = (
        select(USERS.c.id, USERS.c.name, USERS.c.is_admin)
        .join(API_TOKENS, API_TOKENS.c.user_id == USERS.c.id)
        .where(API_TOKENS.c.token_hash == digest(token))
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else UserRecord(id=row[0], name=row[1], is_admin=bool(row[2]))
