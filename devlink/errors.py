"""The one error type users see.

Every failure a user can cause (bad object, undefined symbol, missing compiler...) is a
`DevlinkError` whose message is one line naming the file/symbol and what to do.  The CLI
prints it as `devlink: error: ...` and exits 1; nothing else is ever shown as a traceback.
"""


class DevlinkError(Exception):
    """A user-facing error: `str(err)` is the whole one-line message."""

    def __init__(self, message: str):
        super().__init__(message.replace("\n", " "))
