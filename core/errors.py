"""Premia's exceptions.

    PremiaError
    ├── ConfigError        a config file or value is wrong; the message names the key and the fix
    ├── SnapshotError      a market snapshot is malformed, incomplete or inconsistent
    ├── StaleDataError     data is older than its staleness limit and must not drive a proposal
    ├── FeedError          a market feed failed (transient or permanent)
    ├── StoreError         the SQLite store cannot be opened or migrated
    ├── ExecutionError     a proposal cannot be executed (expired, decided, market moved, caps)
    └── CommandError       a chat command cannot be served; the message is shown to the person

Only these are turned into user-facing messages at the edges; anything else is a bug, logged
with its traceback and answered with a generic apology.
"""


class PremiaError(Exception):
    """Base of every error Premia explains to a person."""


class ConfigError(PremiaError):
    """The config is invalid; the message names the key and the fix."""


class SnapshotError(PremiaError):
    """A market-and-portfolio snapshot is malformed or inconsistent."""


class StaleDataError(PremiaError):
    """Data is older than its staleness limit."""


class FeedError(PremiaError):
    """A market data feed failed."""


class StoreError(PremiaError):
    """The store cannot be opened, read or migrated."""


class ExecutionError(PremiaError):
    """A proposal cannot be executed as asked."""


class CommandError(PremiaError):
    """A chat command cannot be served; the text is meant for the person who sent it."""
