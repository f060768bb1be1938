"""Exceptions raised by optistock and the process exit codes they map to.

Exit codes (documented in README and ``optistock --help``):

====  ==========================================================
0     plan written
1     anything unexpected (a bug; ``--debug`` shows the traceback)
2     bad input: scenario YAML or an input table
3     hard constraints cannot be met (the message names them)
4     no plan found within the time limit
5     another batch holds the lock on the store (``optistock batch``)
6     conflict: a purchase order changed since it was read; nothing was changed, re-read and retry
====  ==========================================================
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_INPUT = 2
    INFEASIBLE = 3
    NO_SOLUTION = 4
    LOCKED = 5
    CONFLICT = 6


class OptistockError(Exception):
    """Base class of the errors a user can act on; ``exit_code`` is what the CLI returns."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class InputError(OptistockError):
    """Bad input, located as precisely as possible: file, line or row, and field."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.row = row
        self.field = field
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        where: list[str] = []
        if self.file:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        elif self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.detail}" if prefix else self.detail


class InfeasibleError(OptistockError):
    """The fixed inputs already break a hard limit, so no plan can exist."""

    exit_code = ExitCode.INFEASIBLE


class NoSolutionError(OptistockError):
    """The solver found no plan within its time limit."""

    exit_code = ExitCode.NO_SOLUTION


class StoreError(OptistockError):
    """The store (database) cannot be used: cannot be opened, newer schema, bad URL."""

    exit_code = ExitCode.BAD_INPUT


class WorkflowError(OptistockError):
    """A purchase-order command that is not allowed: unknown id, illegal transition, bad quantity."""

    exit_code = ExitCode.BAD_INPUT


class ConflictError(OptistockError):
    """Someone else changed the purchase order in between; nothing was changed."""

    exit_code = ExitCode.CONFLICT


class LockedError(OptistockError):
    """Another nightly batch holds the store's batch lock."""

    exit_code = ExitCode.LOCKED
