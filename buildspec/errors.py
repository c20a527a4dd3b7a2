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


@dataclass(frozen=True, slots=True)  # slots: a large Buildfile has 100,000s of spans
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


def format_error(error: BuildfileError, sources: dict[str, str]) -> str:
    """``FILE:LINE:COL: error: message``, the source line with a caret, then hint and notes."""
    lines = [_located(error.span, "error", error.message)]
    lines.extend(_excerpt(error.span, sources))
    if error.hint:
        lines.append(f"  hint: {error.hint}")
    for message, span in error.notes:
        lines.append(_located(span, "note", message))
        lines.extend(_excerpt(span, sources))
    return "\n".join(lines)


def _located(span: Span | None, severity: str, message: str) -> str:
    if span is None:
        return f"{severity}: {message}"
    if span.line <= 0:
        return f"{span.file}: {severity}: {message}"
    return f"{span}: {severity}: {message}"


def _excerpt(span: Span | None, sources: dict[str, str]) -> list[str]:
    if span is None or span.line <= 0 or span.file not in sources:
        return []
    # Lines as the parser counts them: only "\n" ends one (str.splitlines also splits at
    # form feeds and U+2028, which would show the wrong line).
    source_lines = sources[span.file].split("\n")
    if span.line > len(source_lines):
        return []
    # One character per column, so that the caret stays under the right one.
    text = "".join(c if c.isprintable() else " " if c == "\t" else "\ufffd"
                   for c in source_lines[span.line - 1].rstrip("\r"))
    width = 1
    if span.end_column is not None and span.end_column > span.column:
        width = span.end_column - span.column
    number = str(span.line)
    gutter = " " * len(number)
    return [
        f" {number} | {text}",
        f" {gutter} | {' ' * (span.column - 1)}{'^' * width}",
    ]
