"""Keeping secrets out of what leaves the process: logs, the store, chat replies and the terminal.

Used wherever text or settings are shown or kept:

- `scrub_text(text)` for free text (error messages, log lines): URLs lose their `user:pass@`
  part and their query string or fragment (signed requests carry keys and signatures there),
  `password=…`-style pairs lose their value, and Telegram bot tokens become `<token>`.
- `describe(exc)`: a failure in one scrubbed line (the feeds, brokers and engine use it).
- `ScrubFilter`, on every log handler of the CLI: log lines and their tracebacks scrubbed too,
  so a `log.exception` over a ccxt error (its text holds the request URL) cannot leak.
- `mask_secrets(data)` for settings dumped as plain data: values under secret-named keys
  (`secret`, `apiKey`, `password`, `token`, `uid`…, at any depth, e.g. ccxt `options`) become
  `<redacted>`, and every string goes through `scrub_text`. Keys ending in `_env` hold the
  *name* of an environment variable, not a secret, and are kept.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "<redacted>"

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_TELEGRAM_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
_SECRET_WORDS = r"password|passwd|passphrase|secret|api_?key|apikey|access_?token|token|private_?key"
_SECRET_PAIR = re.compile(
    rf"(?i)((?:{_SECRET_WORDS})\w*)(\s*[\"']?\s*[=:]\s*[\"']?)([^\s\"',;&)}}\]]+)")

# Secret-named settings keys: matched on the key's words (camelCase and snake_case split), so
# "apiKey", "api_key", "SECRET", "walletPrivateKey" and "uid" match but "fluid" or "keys_shown"
# do not.
_SECRET_KEY_WORDS = frozenset({
    "key", "apikey", "secret", "password", "passwd", "pwd", "pass", "passphrase", "token", "uid",
    "pin", "private", "privatekey", "credential", "credentials", "auth", "signature", "cookie",
})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def scrub_url(url: str) -> str:
    """One URL without its credentials, query string or fragment (`?…` marks a cut query)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    slash = rest.find("/")
    authority = rest if slash < 0 else rest[:slash]
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    if "@" in authority:
        at = authority.rindex("@")
        if 0 <= cut < at:
            # A "?" or "#" before the "@": a password with odd characters, or a query holding an
            # "@". Either way nothing after the scheme can be trusted to be harmless.
            return f"{scheme}://{REDACTED}"
        rest = f"{REDACTED}@{rest[at + 1:]}"
        cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    if cut >= 0:
        rest = rest[:cut] + ("?…" if rest[cut] == "?" else "#…")
    return f"{scheme}://{rest}"


def scrub_text(text: str) -> str:
    """Free text with URL credentials and queries, secret pairs and bot tokens taken out."""
    text = _URL.sub(lambda m: scrub_url(m.group(0)), text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _TELEGRAM_TOKEN.sub("<token>", text)


def describe(exc: BaseException) -> str:
    """A failure in one line: the exception class and the first line of its text, scrubbed.

    Safe for logs, the store and chat: URLs lose their `user:pass@` part and their query string
    (on private endpoints it carries signatures), and the text is cut at 300 characters.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = scrub_text(text)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def is_secret_key(name: str) -> bool:
    """True for a settings key whose value is a secret (never for `*_env` variable names)."""
    if name.lower().endswith("_env"):
        return False
    words = [w.lower() for w in _WORD.findall(name)]
    joined = "".join(words)
    return any(w in _SECRET_KEY_WORDS for w in words) or joined in _SECRET_KEY_WORDS or any(
        s in joined for s in ("apikey", "secret", "password", "passphrase", "privatekey", "token"))


def mask_secrets(data: Any) -> Any:
    """Plain data (dicts, lists, strings…) with secret-named values masked and URLs scrubbed."""
    if isinstance(data, dict):
        return {k: REDACTED if is_secret_key(str(k)) and v not in (None, "") else mask_secrets(v)
                for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_secrets(v) for v in data]
    if isinstance(data, str):
        return scrub_text(data)
    return data


class ScrubFilter(logging.Filter):
    """Scrubs a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_text(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        return True


def scrub_logs(logger: logging.Logger | None = None) -> None:
    """Put a ScrubFilter on every handler of `logger` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
