"""The process's Redis connection: one pool per URL, shared by locks, nonces, health and metrics."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.lru_cache(maxsize=4)
def _redis_for(url: str) -> redis.Redis:
    """Share one connection pool per Redis URL within a process."""
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


def redis_client() -> redis.Redis:
    """Return a Redis client for settings.REDIS_URL as it is now (never at import time)."""
    return _redis_for(settings.REDIS_URL)


@functools.lru_cache(maxsize=4)
def _fast_redis_for(url: str) -> redis.Redis:
    """A pool whose every wait is short: for work that may skip Redis rather than wait on it."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.2, socket_timeout=0.2, retry_on_timeout=False
    )


def fast_redis_client() -> redis.Redis:
    """Return a Redis client for settings.REDIS_URL that gives up after a fifth of a second."""
    return _fast_redis_for(settings.REDIS_URL)
