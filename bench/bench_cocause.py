"""Co-cause benchmark: do equal causes get equal responsibility, and does the mass stay on the causes?

Hand-set known-cause models (`voxcause.testing.make_case`), explained at voxcause's defaults
(``voxcause.explain(volume, model=..., seed=...)``, nothing else):

* ``conjunctive``: two equal bright spots, both needed for the decision;
* ``disjunctive``: two equal bright spots, either one enough;
* ``single``: one spot that decides, beside a same-brightness decoy the model ignores.

For each run: the first spot's share of the two spots' positive mass (actual causality gives each part of such
a pair the same responsibility: 0.5), the share of the map's mass on the spots (each grown by 2 voxels), on
the decoy, the forward passes and the certificate. Issue 13's target: share within 0.35-0.65 at 5 seeds for
both pairs, with >= 0.9 of the mass on the spots (single: >= 0.9 on the spot, none on the decoy).

Usage:
    python bench/bench_cocause.py                          # 32^3 and 48^3, seeds 0-4 (~5 min on 2 cores)
    python bench/bench_cocause.py --sizes 32 --seeds 0 1   # a quick check

Prints one line per run as it goes, then a Markdown table (also written to ``bench/results/cocause.md``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from voxcause import explain
from voxcause.testing import loaded, make_case, volume_of

KINDS = ("conjunctive", "disjunctive", "single")
SHARE_RANGE = (0.35, 0.65)
MIN_MASS_ON_CAUSES = 0.9
OUT = Path(__file__).resolve().parent / "results" / "cocause.md"


def measure(kind: str, size: int, seed: int) -> dict:
    """One explanation at the defaults and what its map gives each cause and the decoy."""
    case = make_case(kind, size=size, seed=seed)
    started = time.perf_counter()
    result = explain(volume_of(case.image), model=loaded(case.model), seed=seed)
    seconds = time.perf_counter() - started
    positive = np.clip(result.map, 0, None)
    total = float(positive.sum()) or 1.0
    masses = [float(positive[ndimage.binary_dilation(cause, iterations=2)].sum()) for cause in case.causes]
    return {
        "kind": kind, "size": size, "seed": seed, "seconds": seconds,
        "first_share": masses[0] / sum(masses) if sum(masses) else float("nan"),
        "on_causes": sum(masses) / total,
        "on_decoy": float(positive[case.decoys[0]].sum()) / total if case.decoys else 0.0,
        "passes": result.stats["forward_passes"],
        "certificate": (result.certificate or {}).get("verdict", "-"),
    }


def met(rows: list[dict]) -> bool:
    """Issue 13's target for one kind and size."""
    on = all(row["on_causes"] >= MIN_MASS_ON_CAUSES for row in rows)
    if rows[0]["kind"] == "single":
        return on and all(row["on_decoy"] <= 0.01 for row in rows)
    low, high = SHARE_RANGE
    return on and all(low <= row["first_share"] <= high for row in rows)


def table(rows: list[dict]) -> str:
    lines = [
        "| kind | size | seeds | first spot's share | mass on the spots | mass on the decoy | forward passes "
        "| certificates | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["kind"], row["size"]), []).append(row)

    def span(values, fmt="{:.2f}") -> str:
        low, high = min(values), max(values)
        return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}–{fmt.format(high)}"

    for (kind, size), group in groups.items():
        verdicts = [row["certificate"] for row in group]
        counts = ", ".join(f"{verdict} ×{verdicts.count(verdict)}" for verdict in dict.fromkeys(verdicts))
        share = "—" if kind == "single" else span([row["first_share"] for row in group])
        lines.append(
            f"| {kind} | {size}³ | {len(group)} | {share} | {span([r['on_causes'] for r in group])} "
            f"| {span([r['on_decoy'] for r in group], '{:.3f}')} | {span([r['passes'] for r in group], '{:,}')} "
            f"| {counts} | {'**met**' if met(group) else '**not met**'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = []
    for kind in args.kinds:
        for size in args.sizes:
            for seed in args.seeds:
                row = measure(kind, size, seed)
                rows.append(row)
                print(f"  {kind:<12} {size}^3 seed {seed}: share {row['first_share']:.2f}, on the spots "
                      f"{row['on_causes']:.2f}, decoy {row['on_decoy']:.3f}, {row['passes']} passes, "
                      f"certificate {row['certificate']} ({row['seconds']:.1f} s)", flush=True)
    text = table(rows)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Co-cause benchmark (voxcause defaults)\n\n{text}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
