"""`strata token revoke` (SPEC 4): a token stops working at once, on every instance.

The rows go first, in their own transaction; then the tokens' cached lookups are
invalidated through the engine, whose broadcast drops them from every instance's memory
tier. In that order a lookup running meanwhile either reads the row before the commit
(and its value is then covered by the invalidation that follows) or finds no row.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from graph.services import Services
from graph.settings import Settings
from models.tokens import revoke_token, revoke_user_tokens, token_tag

errors = Console(stderr=True)


async def _revoke(token: str | None, username: str | None) -> int:
    services = Services.create(Settings())
    try:
        async with services.db.session() as session, session.begin():
            if username is not None:
                found = await revoke_user_tokens(session, username)
                if found is None:
                    errors.print(f"[red]no user named {username!r}")
                    return 1
                hashes = found
            else:
                assert token is not None
                hashes = await revoke_token(session, token)
                if not hashes:
                    errors.print("[red]no such token")
                    return 1
        if services.settings.redis_url is None:
            # Without a shared Redis there is no broadcast to reach running servers.
            errors.print(
                "[yellow]revoked in the database; REDIS_URL is not set, so running servers "
                "may accept the token until their cached lookup expires"
            )
            return 1
        await services.start()
        await services.invalidate_tags([token_tag(h) for h in hashes], "cli")
        if services.cache.stats.get("pending_invalidations"):
            # The engine queued them for a Redis it could not reach; this process is about
            # to exit, so they would never be sent.
            errors.print(
                "[red]revoked in the database, but Redis is unreachable: running "
                "servers may accept the token until their cached lookup expires"
            )
            return 1
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
