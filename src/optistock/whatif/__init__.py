"""What-if analysis: scenario files with inheritance and changes, sweeps on Dask, comparison of runs.

- :mod:`.changes`: the change vocabulary (strict pydantic schema) and :func:`~.changes.apply_changes`,
  pure functions on the canonical input tables, applied before ``ProblemData`` is built;
- :mod:`.scenario_file`: scenario files with ``extends``, ``changes``, named ``scenarios`` and ``sweep``;
- :mod:`.kpis` and :mod:`.compare`: the KPIs of a written run and side-by-side comparisons;
- :mod:`.sweep`: the Cartesian product of parameter values, solved in parallel on ``dask.distributed``.
"""
