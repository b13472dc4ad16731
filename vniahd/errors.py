"""User-facing errors.

A :class:`VniahdError` is a mistake the user can fix (bad flag, missing file, wrong directory).
The CLI prints its message on one line and exits with status 2, never a traceback. The message
must name the problem *and* the fix.
"""

from __future__ import annotations


class VniahdError(Exception):
    """A problem with the user's input; the message says what is wrong and how to fix it."""


class UnknownNameError(VniahdError, KeyError):
    """A name (variant, layout, allocation, backend, schedule…) that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(sorted(self.valid))}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]
