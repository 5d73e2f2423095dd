"""Error types. A user mistake is a `UserError` (one line, exit code 2); bad data is a `DataError`.

Anything else escaping a stage is a bug and is shown with its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix: bad config key, missing file, wrong tokenizer/EOS pair.

    The CLI prints the message on one line and exits with code 2.
    """

    exit_code = 2


class ConfigError(UserError):
    """A configuration key is unknown, missing or of the wrong type."""


class NotImplementedStageError(UserError):
    """A subcommand that is registered but not built yet."""


class DataError(Exception):
    """Bad input data (malformed line, truncated file) that `--strict` turns into a failure."""

    def __init__(self, path: str, line: int | None, reason: str, skippable: bool = False) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        self.skippable = skippable  # a bad line `--strict` made fatal; without it, it is counted and skipped
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # keep the fields across Ray/pickle boundaries
        return (DataError, (self.path, self.line, self.reason, self.skippable))


class RetryableError(Exception):
    """A transient failure (storage hiccup) that the runtime retries with backoff."""
