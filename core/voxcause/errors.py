"""Errors the user can fix.

`InputError` is raised for anything the user gave that cannot be used (a missing file, a model that does not
load, a target the model does not have ...). Its message names the problem *and* the fix; the command line
prints it as one line and exits with code 2. It subclasses `ValueError` so library callers can catch it the
usual way.
"""


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it."""
