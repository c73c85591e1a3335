"""The partition search stops when the merged map has converged, and the map it stops with localises the cause
as well as the full run's (known-cause model, fixed seeds)."""

from __future__ import annotations

import numpy as np
from voxcause import explain
from voxcause.causal import responsibility
from voxcause.testing import loaded, make_case, positive_share, volume_of


def _rank_accuracy(values: np.ndarray, cause: np.ndarray) -> float:
    """Share of the top-|cause| voxels inside the cause."""
    top = np.argsort(values.ravel())[::-1][: int(cause.sum())]
    return float(cause.ravel()[top].mean())


def test_the_search_stops_once_the_map_has_converged_and_localises_as_the_full_run(monkeypatch):
    case = make_case("single", size=32, seed=1)
    cause = case.causes[0]

    def run():
        return explain(volume_of(case.image), model=loaded(case.model), seed=1, progress=False)

    stopped = run()
    iterations = stopped.summary()["stats"]["iterations"]
    assert iterations["stopped"] == "converged" and responsibility.MIN_ITERATIONS < iterations["run"] < 10
    assert iterations["most"] == 10 and len(iterations["top_overlap"]) == iterations["run"] - 1
    tail = iterations["top_overlap"][-responsibility.STABLE_STEPS:]
    assert min(tail) >= responsibility.CONVERGED_OVERLAP and iterations["top_voxels"] > 0

    monkeypatch.setattr(responsibility, "CONVERGED_OVERLAP", 1.1)  # never settles: all 10 iterations
    full = run()
    assert (full.stats["iterations"]["run"], full.stats["iterations"]["stopped"]) == (10, "limit")
    assert stopped.stats["forward_passes"] <= 0.8 * full.stats["forward_passes"]
    found, reference = np.asarray(stopped.map), np.asarray(full.map)
    assert _rank_accuracy(found, cause) >= _rank_accuracy(reference, cause) - 0.05
    assert positive_share(found, cause) >= positive_share(reference, cause) - 0.05
    assert stopped.certificate["verdict"] == full.certificate["verdict"] == "pass"
