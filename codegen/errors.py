"""Errors the CLI turns into a message and exit code 2."""


class UsageError(ValueError):
    """Bad input from the user: a file, an option, a model lbgen cannot take.

    The message names the culprit (layer, file or option). Nothing has been
    written when it is raised.
    """
