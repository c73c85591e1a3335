"""Errors the user can fix, each with a machine-readable code.

`InputError` is raised for anything the user gave that cannot be used (a missing file, a model that does not
load, a target the model does not have ...). Its message names the problem *and* the fix; the command line
prints it as one line and exits with code 2 (with ``--progress json`` the error event carries the ``code``).
It subclasses `ValueError` so library callers can catch it the usual way.

The ``code`` (an `ErrorCode`) lets a front end answer in its own terms without reading the message: the
MONAI Label app names its tasks instead of ``--method``, the Slicer panel its combo boxes. Codes are part of
the contract with the front ends; the message text is not.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Why an input was refused (``InputError.code``)."""

    #: Anything the user can fix that no front end treats specially.
    BAD_INPUT = "bad_input"
    #: A method option is unknown, of the wrong type, outside its bounds or not one of its choices.
    BAD_OPTION = "bad_option"
    #: A layer or gradient method on a model without an eager network it can hook (TorchScript, ONNX, nnU-Net).
    NEEDS_NETWORK = "needs_network"
    #: The model does not make the decision asked about on this image (a ``--target`` it does not predict), so a
    #: causal method has nothing to explain; the sanity check reads it as an empty map of a randomised model.
    NOT_DECIDED = "not_decided"


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it; ``code`` says which kind it is."""

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.BAD_INPUT) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)

    def __reduce__(self):  # keeps the code across processes (batch workers, Dask)
        return _rebuild, (str(self), self.code.value)


def _rebuild(message: str, code: str) -> InputError:
    return InputError(message, code=ErrorCode(code))
