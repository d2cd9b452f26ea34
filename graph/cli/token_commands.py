"""`strata token …` and `strata user …` (SPEC 4): a change to a user or a token holds at
once, on every instance.

The rows change first, in their own transaction; then the cached lookups they made wrong
(each token's user, id and admin flag) are invalidated through the engine, whose broadcast
drops them from every instance's memory tier. In that order a lookup running meanwhile
either reads the rows before the commit (and its value is then covered by the
invalidation that follows) or reads the new ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from graph.api.tags import user_deleted
from graph.services import MAX_TAGS_PER_CALL, Services
from graph.settings import Settings
from models.tokens import (
    create_token,
    delete_user,
    revoke_token,
    revoke_user_tokens,
    set_admin,
    token_tag,
)

T = TypeVar("T")

errors = Console(stderr=True)
user_app = typer.Typer(no_args_is_help=True, help="Users: admin rights, deletion.")


async def _committed(services: Services, change: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with services.db.session() as session, session.begin():
        return await change(session)


async def _invalidate(services: Services, tags: Iterable[str], done: str) -> int:
    """After a committed change (`done`, said in errors): its tags invalidated on every
    instance. 0, or 1 with the reason when running servers may not have heard of it."""
    wanted = sorted(set(tags))
    if not wanted:
        return 0
    if services.settings.redis_url is None:
        # Without a shared Redis there is no broadcast to reach running servers.
        errors.print(
            f"[yellow]{done} in the database; REDIS_URL is not set, so running servers "
            "may use their cached copies until they expire"
        )
        return 1
    await services.start()
    for start in range(0, len(wanted), MAX_TAGS_PER_CALL):
        await services.invalidate_tags(wanted[start : start + MAX_TAGS_PER_CALL], "cli")
    if services.cache.stats.get("pending_invalidations"):
        # The engine queued them for a Redis it could not reach; this process is about
        # to exit, so they would never be sent.
        errors.print(
            f"[red]{done} in the database, but Redis is unreachable: running servers may "
            "use their cached copies until they expire"
        )
        return 1
    return 0


def _tokens(hashes: Iterable[str]) -> list[str]:
    return [token_tag(h) for h in hashes]


async def _revoke(token: str | None, username: str | None) -> int:
    services = Services.create(Settings())
    try:
        if username is not None:
            found = await _committed(services, lambda s: revoke_user_tokens(s, username))
            if found is None:
                errors.print(f"[red]no user named {username!r}")
                return 1
            hashes = found
        else:
            assert token is not None
            hashes = await _committed(services, lambda s: revoke_token(s, token))
            if not hashes:
                errors.print("[red]no such token")
                return 1
        if status := await _invalidate(services, _tokens(hashes), "revoked"):
            return status
    finally:
        await services.close()
    print(f"revoked {len(hashes)} token{'s' if len(hashes) != 1 else ''}")
    return 0


def revoke(
    token: Annotated[str | None, typer.Argument(help="The bearer token to revoke")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Revoke every token of this user")
    ] = None,
) -> None:
    """Revoke one token, or every token of a user, at once on every instance."""
    if (token is None) == (user is None):
        errors.print("[red]give a TOKEN or --user USERNAME (one of them)")
        raise typer.Exit(2)
    raise typer.Exit(asyncio.run(_revoke(token, user)))


async def _create(username: str, admin: bool) -> int:
    services = Services.create(Settings())
    try:

        async def change(session: AsyncSession) -> tuple[str, list[str] | None]:
            promoted = await set_admin(session, username, True) if admin else None
            return await create_token(session, username, admin=admin), promoted

        token, promoted = await _committed(services, change)
        print(token)  # valid from now on, whatever follows
        return await _invalidate(services, _tokens(promoted or ()), f"{username} made an admin")
    finally:
        await services.close()


def create(
    username: str,
    admin: Annotated[
        bool, typer.Option("--admin", help="Give the user admin rights (promotes an existing one)")
    ] = False,
) -> None:
    """Create the user if needed and print a new bearer token."""
    raise typer.Exit(asyncio.run(_create(username, admin)))


async def _set_admin(username: str, admin: bool) -> int:
    services = Services.create(Settings())
    try:
        hashes = await _committed(services, lambda s: set_admin(s, username, admin))
        if hashes is None:
            errors.print(f"[red]no user named {username!r}")
            return 1
        done = f"{username} {'is now' if admin else 'is no longer'} an admin"
        if status := await _invalidate(services, _tokens(hashes), done):
            return status
    finally:
        await services.close()
    print(done)
    return 0


@user_app.command("promote")
def promote(username: str) -> None:
    """Give a user admin rights; its tokens carry them at once, on every instance."""
    raise typer.Exit(asyncio.run(_set_admin(username, True)))


@user_app.command("demote")
def demote(username: str) -> None:
    """Take a user's admin rights; its tokens lose them at once, on every instance."""
    raise typer.Exit(asyncio.run(_set_admin(username, False)))


async def _delete(username: str) -> int:
    services = Services.create(Settings())
    try:
        deleted = await _committed(services, lambda s: delete_user(s, username))
        if deleted is None:
            errors.print(f"[red]no user named {username!r}")
            return 1
        tags = [*_tokens(deleted.token_hashes), *user_deleted(deleted.user_id, deleted.reviews)]
        if status := await _invalidate(services, tags, f"{username} deleted"):
            return status
    finally:
        await services.close()
    reviews = len(deleted.reviews)
    print(f"deleted {username}, {reviews} review{'s' if reviews != 1 else ''} and its tokens")
    return 0


@user_app.command("delete")
def delete(username: str) -> None:
    """Delete a user with its reviews and tokens; its tokens stop working at once."""
    raise typer.Exit(asyncio.run(_delete(username)))
