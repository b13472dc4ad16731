"""One-line notices on stderr: warnings about suspicious inputs, and status lines for slow steps.

A warning is something the user may want to act on but that does not stop the command (an input
that is legal but probably not what was meant: a video stretched to another aspect, a schedule
that leaves samples without a distractor). Each is one line, ``vniahd: warning: …``, naming the
numbers and, where there is one, the fix. Errors that stop a command are
:class:`vniahd.errors.VniahdError` instead.

A status line (``vniahd: …``) says that a slow step has started, so a command that is quiet for
half a minute is not mistaken for a hung one (progress bars only show on a terminal).
"""

from __future__ import annotations

import sys

PREFIX = "vniahd"


def warn(message: str) -> None:
    """Print ``vniahd: warning: <message>`` on one line to stderr."""
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{PREFIX}: warning: {text}", file=sys.stderr, flush=True)


def status(message: str) -> None:
    """Print ``vniahd: <message>`` on one line to stderr (a slow step has started)."""
    text = " ".join(str(message).split())
    print(f"{PREFIX}: {text}", file=sys.stderr, flush=True)
