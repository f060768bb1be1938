"""optistock: an optimisation engine for multi-warehouse procurement.

The pipeline is visible in the package layout:

- :mod:`optistock.preprocess` — read the scenario YAML and the input tables, validate them and
  return a :class:`~optistock.preprocess.data.ProblemData`;
- :mod:`optistock.backend` — build the mixed-integer model from it and solve it;
- :mod:`optistock.postprocess` — turn the solution into a plan, re-simulate it, check it and write it.
"""

__version__ = "0.1.0"
