"""Errors that the CLI reports as one clear line (what failed, why, what to do) instead of a traceback."""


class UserError(Exception):
    """A problem the user can fix: bad input, missing key, unknown profile, unreachable service."""


class DataError(UserError):
    """A dataset file or row is missing or malformed."""


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message` of an exception (or of its cause), cut to 160 characters."""
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0][:160]}" if text else type(cause).__name__
