"""Fuzz the engine with random instances and check every plan it writes (not part of the suite).

Usage::

    python tests/fuzz.py --cases 40 [--first 0] [--path auto|decompose|arrays|groups] [--out DIR]

Each case draws a synthetic instance (:func:`optistock.synthetic.generate_instance`) of 1-60 SKUs, 1-4
warehouses, 1-5 suppliers and 2-16 periods (every third case at most 3 SKUs, 2 warehouses, 3 suppliers
and 6 periods), and at random cuts the budget (to 0, 5 % or 30 %), the suppliers' capacity (to 10 % or
50 %) or the warehouses' storage (to 5 % or 30 %), or empties the stock on hand; then solves it end to
end (:func:`optistock.pipeline.run_scenario`) with a time limit of 3, 8 or 15 s and a ``mip_gap`` of 0,
1 % or 5 % (60 s and 0 for a case of at most 3 SKUs). Every plan written must pass the independent check
of ``tests/independent_check.py`` at exactly its reported objective, with a bound no higher. A case of
at most 3 SKUs is also solved with CP-SAT at a gap of 0: where both solvers prove optimality, their
optima must agree. A case may end in "infeasible" (exit 3) only where the independent check finds a
broken hard rule in the plan that does nothing (stock on hand beyond storage), and without a plan only
where it does too and the whole model (the path not forced) is proven infeasible; never in an error.

``--path`` forces the solve path: ``decompose`` (Lagrangian bound and fix-and-optimize on the whole
model), ``arrays`` (the LP from arrays, as for models of over 100,000 lines) or ``groups`` (no whole
model, as for L and XL): the last two by lowering the line limits of ``optistock.backend.strategy`` in
this process. Exit code 0 when every case passed, 1 otherwise. The campaign of 2026-12-06 found four
defects this way (``models/core.md`` §8 and §9).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from independent_check import check_run

from optistock.backend import strategy
from optistock.errors import InfeasibleError, NoSolutionError
from optistock.pipeline import run_scenario
from optistock.synthetic import InstanceSize, generate_instance, write_instance

logger = logging.getLogger("optistock.fuzz")
DEFAULT_LIMITS = strategy.ARRAY_LINE_LIMIT, strategy.GROUP_PATH_LINE_LIMIT
"""The line limits of the solve paths, as shipped (``--path arrays|groups`` lowers them)."""


def draw_instance(case: int) -> tuple[InstanceSize, dict[str, pd.DataFrame], list[str], random.Random]:
    """The instance of ``case``: its size, tables, the limits cut, and the generator for what follows."""
    rng = random.Random(case)
    if case % 3 == 0:
        size = InstanceSize(rng.randint(1, 3), rng.randint(1, 2), rng.randint(1, 3), rng.randint(2, 6))
    else:
        size = InstanceSize(rng.randint(1, 60), rng.randint(1, 4), rng.randint(1, 5), rng.randint(2, 16))
    tables = generate_instance(size, case)
    cuts = []
    if rng.random() < 0.3:
        tables["budget"]["amount"] = (tables["budget"]["amount"] * rng.choice([0, 0.05, 0.3])).round(2)
        cuts.append("budget")
    if rng.random() < 0.3:
        tables["suppliers"]["capacity"] = (tables["suppliers"]["capacity"] * rng.choice([0.1, 0.5])).round()
        cuts.append("supplier capacity")
    if rng.random() < 0.3:
        tables["warehouses"]["capacity"] = tables["warehouses"]["capacity"] * rng.choice([0.05, 0.3])
        cuts.append("storage")
    if rng.random() < 0.2:
        tables["inventory"]["on_hand"] = 0
        cuts.append("no stock")
    return size, tables, cuts, rng


def solve_case(folder: Path, size: InstanceSize, solver: dict[str, Any]) -> tuple[str, float | None]:
    """Solve the instance in ``folder/data`` and check the plan; ("ok" | "infeasible" | a failure, the
    objective where the solver proved it optimal)."""
    scenario = {"name": folder.name, "data": "data", "horizon": {"periods": size.periods}, "solver": solver}
    path = folder / f"{solver['name']}.yaml"
    path.write_text(json.dumps(scenario), encoding="utf-8")  # JSON is YAML
    out = folder / f"plan-{solver['name']}"
    try:
        result = run_scenario(path, out)
    except InfeasibleError as error:
        if _doing_nothing_breaks_a_rule(folder, size.periods):
            return "infeasible", None
        return f"infeasible, but the plan that does nothing breaks no rule: {error}", None
    except NoSolutionError as error:
        if _doing_nothing_breaks_a_rule(folder, size.periods) and _whole_model_infeasible(path):
            return "infeasible", None  # the forced path cannot prove it; the whole model does
        return f"NoSolutionError: {error}", None
    except Exception as error:  # every other end is a failure to report, not to stop the campaign at
        return f"{type(error).__name__}: {error}", None
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    check = check_run(out, size.periods)
    if check.violations:
        return f"invalid plan: {check.violations[:3]}", None
    if abs(summary["objective"] - check.total) > 1e-6 * max(1.0, abs(check.total)):
        return f"objective {summary['objective']} but the files cost {check.total}", None
    bound = summary["best_bound"]
    if bound is not None and bound > summary["objective"] * (1 + 1e-6) + 1e-6:
        return f"bound {bound} above the objective {summary['objective']}", None
    optimum = (
        summary["objective"] if result.solve.status.value == "optimal" and solver["mip_gap"] == 0 else None
    )
    return "ok", optimum


def _doing_nothing_breaks_a_rule(folder: Path, periods: int) -> bool:
    """Whether the independent check finds a broken hard rule in the plan that orders and ships nothing
    on the instance in ``folder/data`` (the stock on hand and open orders alone), so that "infeasible"
    is confirmed apart from the engine and its wording."""
    nothing = folder / "do-nothing"
    shutil.copytree(folder / "data", nothing / "inputs", dirs_exist_ok=True)
    return bool(check_run(nothing, periods).violations)


def _whole_model_infeasible(scenario: Path) -> bool:
    """Whether the whole model of ``scenario`` is proven infeasible (the solve path not forced)."""
    forced = strategy.ARRAY_LINE_LIMIT, strategy.GROUP_PATH_LINE_LIMIT
    strategy.ARRAY_LINE_LIMIT, strategy.GROUP_PATH_LINE_LIMIT = DEFAULT_LIMITS
    try:
        run_scenario(scenario, None)
    except InfeasibleError:
        return True
    except Exception:  # anything else is not a proof
        return False
    finally:
        strategy.ARRAY_LINE_LIMIT, strategy.GROUP_PATH_LINE_LIMIT = forced
    return False


def run_case(case: int, root: Path, path: str) -> list[str]:
    """The failures of one case (empty when it passed)."""
    size, tables, cuts, rng = draw_instance(case)
    folder = root / f"case-{case}"
    write_instance(tables, folder / "data")
    tiny = size.skus <= 3
    settings: dict[str, Any] = {
        "time_limit": 60 if tiny else rng.choice([3, 8, 15]),
        "mip_gap": 0.0 if tiny else rng.choice([0.0, 0.01, 0.05]),
        "threads": rng.choice([1, 2]),
    }
    if path == "decompose":
        settings["method"] = "decompose"
    failures, optima = [], {}
    for name in ("highs", "cpsat") if tiny and path in ("auto", "decompose") else ("highs",):
        outcome, optimum = solve_case(folder, size, {"name": name, **settings})
        described = f"case {case} ({size.skus}x{size.warehouses}x{size.suppliers}x{size.periods}, {name}"
        described += f", cut: {', '.join(cuts) or 'nothing'}): {outcome}"
        logger.info(described)
        if outcome not in ("ok", "infeasible"):
            failures.append(described)
        if optimum is not None:
            optima[name] = optimum
    if len(optima) == 2 and abs(optima["highs"] - optima["cpsat"]) > 1e-6 * max(1.0, abs(optima["highs"])):
        failures.append(f"case {case}: HiGHS proves {optima['highs']}, CP-SAT {optima['cpsat']}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20, help="how many cases (default: 20)")
    parser.add_argument("--first", type=int, default=0, help="number of the first case (default: 0)")
    parser.add_argument("--path", choices=["auto", "decompose", "arrays", "groups"], default="auto")
    parser.add_argument("--out", type=Path, help="keep the instances and plans here (default: a temp folder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("optistock").setLevel(logging.ERROR)
    logger.setLevel(logging.INFO)
    if args.path == "arrays":
        strategy.ARRAY_LINE_LIMIT = 0
    elif args.path == "groups":
        strategy.GROUP_PATH_LINE_LIMIT = 0
    with tempfile.TemporaryDirectory() as temporary:
        root = args.out or Path(temporary)
        failures = [
            f for case in range(args.first, args.first + args.cases) for f in run_case(case, root, args.path)
        ]
    logger.info("%d cases, %d failures", args.cases, len(failures))
    for failure in failures:
        logger.error(failure)
    return 1 if failures else 0


if __name__ == "__main__":  # the Dask workers of the decomposition re-import this module
    sys.exit(main())
