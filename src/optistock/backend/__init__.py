"""Build the mixed-integer model of a :class:`~optistock.preprocess.data.ProblemData` and solve it."""
