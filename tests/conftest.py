"""Shared fixtures live in tests/fixtures/*; each module registers itself here."""

pytest_plugins: list[str] = [
    "tests.fixtures.redis_server",
    "tests.fixtures.media_files",
    "tests.fixtures.media_servers",
    "tests.fixtures.webhook_receiver",
]
