"""The retry policy shared by the feeds: transient failures are retried with a short backoff.

Transient means the same request may well succeed in a moment: ccxt's `NetworkError` family
(DDoSProtection for HTTP 429/418, RateLimitExceeded, ExchangeNotAvailable for 5xx, RequestTimeout,
OnMaintenance). Everything else — BadSymbol, AuthenticationError, other ExchangeErrors, a body
that is not the JSON we expect — is permanent: retrying would ask the same wrong question again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import aiohttp
import ccxt
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

# describe() lives with the other redaction helpers; importers of this module keep using it.
from core.redact import describe

log = logging.getLogger(__name__)

T = TypeVar("T")
FailureKind = Literal["transient", "permanent"]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ccxt.NetworkError,  # DDoSProtection, RateLimitExceeded, ExchangeNotAvailable, RequestTimeout
    aiohttp.ClientConnectionError,
    TimeoutError,
)

# Small waits: a poll runs every few minutes and should finish in seconds, not hide an outage.
WAIT_INITIAL_S = 0.2
WAIT_MAX_S = 2.0


class MalformedResponse(Exception):
    """A response parsed but lacks what we asked for (a price, a timestamp): permanent."""


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def failure_kind(exc: BaseException) -> FailureKind:
    return "transient" if is_transient(exc) else "permanent"


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.info("retrying after %s (attempt %d, waiting %.2fs)", describe(exc) if exc else "?",
             state.attempt_number, wait)


def retrying(retries: int, *, initial_s: float | None = None, max_s: float | None = None) -> AsyncRetrying:
    """Up to `retries` further attempts on transient errors; the last error is re-raised."""
    initial_s = WAIT_INITIAL_S if initial_s is None else initial_s  # read now: tests shorten it
    max_s = WAIT_MAX_S if max_s is None else max_s
    return AsyncRetrying(
        stop=stop_after_attempt(max(0, retries) + 1),
        wait=wait_exponential(multiplier=initial_s, max=max_s) + wait_random(0, initial_s / 2),
        retry=retry_if_exception(is_transient),
        before_sleep=_log_retry,
        reraise=True,
    )


class RequestStats:
    """Counts request attempts and keeps the slowest one (for the poll's report and the bench)."""

    def __init__(self) -> None:
        self.count = 0
        self.slowest_s = 0.0

    async def timed(self, fn: Callable[[], Awaitable[T]]) -> T:
        self.count += 1
        started = time.monotonic()
        try:
            return await fn()
        finally:
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)

    async def call(self, retries: int, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` with the retry policy, timing every attempt."""
        return await retrying(retries)(self.timed, fn)
