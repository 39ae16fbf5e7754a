"""Errors that the CLI reports as one clear line (what failed, why, what to do) instead of a traceback."""


class UserError(Exception):
    """A problem the user can fix: bad input, missing key, unknown profile, unreachable service."""


class DataError(UserError):
    """A dataset file or row is missing or malformed."""
