"""The PostgreSQL server that `make test` and CI provide answers through SQLAlchemy + asyncpg."""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> str:
    """The server's URL; CI must have one, a developer's machine may not."""
    url = os.environ.get("MULTIHELIX_TEST_POSTGRES_URL", "")
    if url:
        return url
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail("MULTIHELIX_TEST_POSTGRES_URL is unset on CI: run the suite with `make test`")
    pytest.skip("MULTIHELIX_TEST_POSTGRES_URL is unset (`make test` starts a server)")


async def test_postgres_server_answers_a_query(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            version = (await connection.execute(text("select version()"))).scalar_one()
    finally:
        await engine.dispose()

    assert version.startswith("PostgreSQL ")
