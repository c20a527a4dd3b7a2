"""Error types and exit codes.

    BuildspecError                 anything buildspec reports without a traceback
    ├── UsageError                 bad command line (exit 2)
    ├── BuildfileError             a mistake in a Buildfile, with a Span (exit 2)
    │   └── (many, one message each; see syntax.py, model.py, evaluate.py, graph.py)
    └── RegistryError              talking to a registry failed (exit 1)

Only cli.py turns these into exit statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a build or push failed
    INVALID = 2  # invalid Buildfile or arguments
    INTERRUPTED = 130


@dataclass(frozen=True)
class Span:
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    column: int
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class BuildspecError(Exception):
    exit_code = ExitCode.FAILED


class UsageError(BuildspecError):
    exit_code = ExitCode.INVALID


class RegistryError(BuildspecError):
    exit_code = ExitCode.FAILED


class BuildfileError(BuildspecError):
    """A mistake in a Buildfile, reported as ``FILE:LINE:COL: error: message``."""

    exit_code = ExitCode.INVALID

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        notes: tuple[tuple[str, Span | None], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.notes = notes
