"""The one error a bad data file or an impossible split raises."""

from __future__ import annotations


class DataError(ValueError):
    """A data file (or built-in set) that cannot be used as configured.

    Its message starts with what it is about (the file's path, or the built-in set's name)
    and gives one reason.
    """


class DataFileNotFound(DataError, FileNotFoundError):
    """The configured data file does not exist (also a `FileNotFoundError`)."""
