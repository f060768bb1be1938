"""Write the demo company's input tables as CSV files.

The demo company has 40 SKUs, 3 warehouses, 4 suppliers and 26 weekly periods
and is generated deterministically with seed 20261125, so re-running this
script reproduces ``scenarios/demo/data/*.csv`` byte for byte.

Usage::

    python scenarios/demo/make_demo.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    from optistock.synthetic import InstanceSize, generate_instance, write_instance
except ImportError:  # running from a source checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from optistock.synthetic import InstanceSize, generate_instance, write_instance

DEMO_SIZE = InstanceSize(skus=40, warehouses=3, suppliers=4, periods=26)
DEMO_SEED = 20261125
DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def main(argv: list[str] | None = None) -> int:
    """Generate the demo data set; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder (default: {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)

    tables = generate_instance(DEMO_SIZE, DEMO_SEED)
    write_instance(tables, args.out, fmt="csv")
    print(f"wrote {len(tables)} tables for the demo company to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
