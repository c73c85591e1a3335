"""Batches: one explanation (or counterfactual, or findings) per manifest row, locally or on Dask.

Resumable by content hash, one failing case never stops the others, every result written atomically.
See `run_batch` for the flow and `voxcause batch --help` for the command line.
"""

from .job import Job
from .manifest import Case, read_manifest
from .results import CaseResult, write_results
from .runner import BatchReport, run_batch

__all__ = ["BatchReport", "Case", "CaseResult", "Job", "read_manifest", "run_batch", "write_results"]
