"""User-facing errors.

Anything a user can cause (a bad file, a wrong option, a mismatched checkpoint) raises
`HanformerError` with a one-line message that says what is wrong and how to fix it.
The CLI prints it without a traceback; library users can catch it.
"""

from __future__ import annotations


class HanformerError(Exception):
    """A problem with the user's input, files or settings (never a bug in hanformer)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class InputError(HanformerError):
    """Unreadable, malformed or empty input data; the message names the file and position."""


class ConfigError(HanformerError):
    """An invalid setting: unknown key, wrong type, impossible value."""


class CheckpointError(HanformerError):
    """A checkpoint that is missing, corrupt, or does not fit the model."""


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location like `data.tsv:12 (field 'label')` for error messages."""
    text = str(path)
    if line is not None:
        text += f":{line}"
    if field is not None:
        text += f" (field {field!r})"
    return text
