"""/metrics is an operator surface (SPEC 3): open in dev mode, admins only in production."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graph.settings import Settings
from tests.support.api import Api, running_api


@pytest.fixture
async def production_api(cached_settings: Settings) -> AsyncIterator[Api]:
    async with running_api(cached_settings.model_copy(update={"env": "production"})) as api:
        yield api


async def test_production_metrics_want_an_admin_token(production_api: Api) -> None:
    client = production_api.client
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "strata_" not in anonymous.text
    user = await client.get(
        "/metrics", headers={"Authorization": f"Bearer {production_api.user_token}"}
    )
    assert user.status_code == 403
    admin = await client.get(
        "/metrics", headers={"Authorization": f"Bearer {production_api.admin_token}"}
    )
    assert admin.status_code == 200
    assert "strata_" in admin.text


async def test_dev_metrics_are_open(cached_api: Api) -> None:
    assert cached_api.services.settings.dev
    response = await cached_api.client.get("/metrics")
    assert response.status_code == 200
    assert "strata_" in response.text
