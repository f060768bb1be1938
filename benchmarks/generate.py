"""Generate a named benchmark instance plus its ``scenario.yaml``.

Usage::

    python benchmarks/generate.py --size S|M|L|XL --seed N --out DIR [--format csv|parquet]

Sizes (skus x warehouses x suppliers x periods) come from
:data:`optistock.synthetic.NAMED_SIZES`: S 20x2x3x13, M 200x3x4x13,
L 2000x5x6x26, XL 20000x10x8x26.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    from optistock.synthetic import NAMED_SIZES, InstanceSize, generate_instance, write_instance
except ImportError:  # running from a source checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from optistock.synthetic import NAMED_SIZES, InstanceSize, generate_instance, write_instance

SCENARIO_TEMPLATE = """\
# Benchmark {name}: {size.skus} SKUs, {size.warehouses} warehouses, {size.suppliers} suppliers, \
{size.periods} weekly periods (seed {seed}, {fmt}).
name: bench-{name}
data: .
horizon:
  periods: {size.periods}
  start: 2027-01-04
  period_length_days: 7
solver:
  name: highs
  time_limit: 600
  mip_gap: 0.01
  threads: 2
"""


def scenario_yaml(name: str, size: InstanceSize, seed: int, fmt: str) -> str:
    """Return the text of the benchmark's ``scenario.yaml``."""
    return SCENARIO_TEMPLATE.format(name=name, size=size, seed=seed, fmt=fmt)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the instance and its scenario; return the exit code."""
    parser = argparse.ArgumentParser(description="Generate a synthetic optistock benchmark.")
    parser.add_argument("--size", required=True, choices=list(NAMED_SIZES), help="named size")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--format", dest="fmt", choices=["csv", "parquet"], default="csv", help="file format")
    args = parser.parse_args(argv)

    size = NAMED_SIZES[args.size]
    start = time.perf_counter()
    tables = generate_instance(size, args.seed)
    write_instance(tables, args.out, fmt=args.fmt)
    (args.out / "scenario.yaml").write_text(
        scenario_yaml(args.size, size, args.seed, args.fmt), encoding="utf-8"
    )
    elapsed = time.perf_counter() - start
    print(
        f"bench-{args.size}: {size.demand_rows} demand rows written to {args.out} "
        f"({args.fmt}) in {elapsed:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
