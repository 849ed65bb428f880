"""Shared fixtures live in tests/fixtures/*; each module registers itself here."""

pytest_plugins: list[str] = ["tests.fixtures.redis_server"]
