"""Load and validate: scenario YAML and input tables → :class:`ProblemData`."""
