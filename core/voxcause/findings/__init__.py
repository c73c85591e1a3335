"""Findings: attribution map -> mask, components, atlas regions and a validated JSON document.

Flow: `thresholding` (adaptive percentile mask) -> `components` (ml, RAS mm, Dice) -> `registration`
(scan -> MNI) -> `atlas` (named regions) -> `findings` (the JSON, versioned schema).
"""

from voxcause.findings.findings import (
    SCHEMA_VERSION,
    make_findings,
    read_findings,
    schema,
    validate_findings,
    write_findings,
)

__all__ = ["SCHEMA_VERSION", "make_findings", "read_findings", "schema", "validate_findings", "write_findings"]
