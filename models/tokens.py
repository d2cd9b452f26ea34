"""Users and their bearer tokens. Tokens are stored only as SHA-256 digests.

A token is 32 random bytes, so a fast digest is enough: there is nothing to brute-force
that a slow password hash would protect.

Every change to a user or a token returns the digests of the tokens whose cached lookup
(their user's id, name and admin flag) it made wrong: the caller invalidates those once
the change committed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, fields

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.records import ReviewRecord, UserRecord
from models.tables import API_TOKENS, REVIEWS, USERS, ApiToken, User

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


async def _user_id(session: AsyncSession, name: str) -> int | None:
    return await session.scalar(select(USERS.c.id).where(USERS.c.name == name))


async def _token_hashes(session: AsyncSession, user_id: int) -> list[str]:
    """The digests of a user's tokens: what the caller invalidates. A token's cached lookup
    is tagged with its own digest only, because a lookup's tags are fixed before it loads
    (their versions are read first, against stale sets) and the user is known only after."""
    query = select(API_TOKENS.c.token_hash).where(API_TOKENS.c.user_id == user_id)
    return list(await session.scalars(query))


async def revoke_user_tokens(session: AsyncSession, name: str) -> list[str] | None:
    """Delete every token of a user; their digests, or None when there is no such user."""
    user_id = await _user_id(session, name)
    if user_id is None:
        return None
    hashes = await _token_hashes(session, user_id)
    await session.execute(delete(API_TOKENS).where(API_TOKENS.c.user_id == user_id))
    return hashes


async def set_admin(session: AsyncSession, name: str, admin: bool) -> list[str] | None:
    """Give (or take) a user's admin rights. The digests of its tokens when that changed
    anything (none when it already was so); None when there is no such user."""
    user_id = await _user_id(session, name)
    if user_id is None:
        return None
    changed = await session.execute(
        update(USERS).where(USERS.c.id == user_id, USERS.c.is_admin != admin).values(is_admin=admin)
    )
    return await _token_hashes(session, user_id) if changed.rowcount else []  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DeletedUser:
    user_id: int
    token_hashes: list[str]
    reviews: list[ReviewRecord]  # deleted with it: their books' counts and lists change


async def delete_user(session: AsyncSession, name: str) -> DeletedUser | None:
    """Delete a user with its tokens and reviews; None when there is no such user."""
    user_id = await _user_id(session, name)
    if user_id is None:
        return None
    hashes = await _token_hashes(session, user_id)
    columns = [REVIEWS.c[f.name] for f in fields(ReviewRecord)]
    rows = await session.execute(select(*columns).where(REVIEWS.c.reviewer_id == user_id))
    reviews = [ReviewRecord(*row) for row in rows]
    await session.execute(delete(REVIEWS).where(REVIEWS.c.reviewer_id == user_id))
    await session.execute(delete(API_TOKENS).where(API_TOKENS.c.user_id == user_id))
    await session.execute(delete(USERS).where(USERS.c.id == user_id))
    return DeletedUser(user_id, hashes, reviews)


async def ensure_user(session: AsyncSession, name: str, *, admin: bool = False) -> User:
    """The user named `name`, created if needed; `admin` creates an admin or promotes one
    (never demotes: `set_admin` does that, and says whose lookups changed)."""
    user_id = await _user_id(session, name)
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


def user_for_token(conn: Connection, token: str) -> UserRecord | None:
    if not is_plausible(token):
        return None
    stmt = (
        select(USERS.c.id, USERS.c.name, USERS.c.is_admin)
        .join(API_TOKENS, API_TOKENS.c.user_id == USERS.c.id)
        .where(API_TOKENS.c.token_hash == digest(token))
    )
    row = conn.execute(stmt).first()
    return None if row is None else UserRecord(id=row[0], name=row[1], is_admin=bool(row[2]))
