"""Results: extract the plan from a solution, re-simulate and check it, write the output tables."""
