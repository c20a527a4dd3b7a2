"""Readable syntax errors: Lark's exceptions turned into BuildfileErrors with a hint.

Lark reports the first token it cannot use; these functions look at the tokens around
it (a crude scan of their own that never fails) to say what the writer most likely meant.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from buildspec.errors import BuildfileError, Span
from buildspec.syntax_tree import Str, TagLine

if TYPE_CHECKING:
    from lark import Token
    from lark.exceptions import UnexpectedInput, UnexpectedToken


_TERMINAL_NAMES = {
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "EQUAL": "'='",
    "EQ": "'=='",
    "NE": "'!='",
    "STRING": "a string",
    "NAME": "a name",
    "NUMBER": "a number",
    "PLATFORM": "a platform",
    "IF": "'if'",
    "AND": "'and'",
    "OR": "'or'",
    "NOT": "'not'",
    "$END": "the end of the file",
}


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "STRING":
        return f"string {token}"
    if token.type in ("NAME", "NUMBER", "PLATFORM"):
        return f"'{token}'"
    return _TERMINAL_NAMES.get(token.type, f"'{token}'")


def _expected(names: set[str]) -> str:
    described = sorted({_TERMINAL_NAMES.get(n, n.lower()) for n in names})
    if len(described) > 6:
        return ""
    if len(described) == 1:
        return f"; expected {described[0]}"
    return "; expected " + ", ".join(described[:-1]) + " or " + described[-1]


def syntax_error(e: UnexpectedInput, text: str, file: str) -> BuildfileError:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    line, column = e.line, e.column
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        if char == '"':
            return BuildfileError("unterminated string", Span(file, line, column),
                                  hint='close the string with " on the same line')
        if char == "'":
            return BuildfileError("strings use double quotes", Span(file, line, column),
                                  hint="write \"...\" instead of '...'")
        # A platform where no value can be: `linux` lexed as a name, then the '/'.
        start = pos
        while start > 0 and ((text[start - 1].isascii() and text[start - 1].isalnum()) or text[start - 1] == "_"):
            start -= 1
        platform = _PLATFORM.match(text, start) if char == "/" and start < pos else None
        if platform is not None:
            first = column - (pos - start)
            return BuildfileError(f"unexpected '{platform.group()}'",
                                  Span(file, line, first, first + len(platform.group())),
                                  hint=f"a platform is a value, as in:  platforms = [{platform.group()}]")
        shown = repr(char)[1:-1] if char.isprintable() else f"\\x{ord(char):02x}"
        return BuildfileError(f"unexpected character '{shown}'", Span(file, line, column),
                              hint=_CHARACTER_HINTS.get(text[pos : pos + 2])
                              or _CHARACTER_HINTS.get(char)
                              or (_NAME_HINT if char.isalpha() else None))
    if isinstance(e, UnexpectedToken):
        token = e.token
        if token.type == "$END":
            return _unexpected_end(text, file, e.expected)
        return _unexpected_token(e, token, text, file)
    if isinstance(e, UnexpectedEOF):
        return _unexpected_end(text, file, set(e.expected))
    return BuildfileError("syntax error", Span(file, line, column))


_PLATFORM = re.compile(r"[A-Za-z0-9_]+(?:/[A-Za-z0-9_.]+)+")  # as PLATFORM in the grammar
_NAME_HINT = "names use ASCII letters, digits, '_', '-' and '.'"
_CHARACTER_HINTS = {
    ":": "use '=' to assign, not ':'",
    ";": "statements end at the end of the line; no ';' is needed",
    "//": "comments start with '#'",
    "/*": "comments start with '#'",
}
_CLOSERS = {"{": "}", "[": "]", "(": ")"}
_WHAT = {"{": "block", "[": "list", "(": "call"}
_KEYWORDS = ("if", "and", "or", "not")
_OPERATORS = (*_KEYWORDS, "==", "!=")


@dataclass(frozen=True, slots=True)
class _Tok:
    """A token as the error messages see it: cruder than Lark's, but it never fails."""

    kind: str  # "string", "word", "op", "other"
    text: str
    start: int
    line: int
    column: int

    def span(self, file: str) -> Span:
        return Span(file, self.line, self.column, self.column + len(self.text))


_SCAN = re.compile(
    r"(?P<ws>[ \t\r\f\v]+|\n)"
    r"|(?P<comment>#[^\n]*)"
    r'|(?P<string>"(?:[^"\\\n]|\\.)*"?)'
    r"|(?P<word>[A-Za-z0-9_][A-Za-z0-9_.\-/]*)"
    r"|(?P<op>==|!=|[{}\[\](),=])"
    r"|(?P<other>[\s\S])"
)


def _scan(text: str) -> list[_Tok]:
    tokens = []
    line, line_start = 1, 0
    for m in _SCAN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "ws":
            if m.group() == "\n":
                line, line_start = line + 1, m.end()
            continue
        if kind != "comment":
            tokens.append(_Tok(kind, m.group(), m.start(), line, m.start() - line_start + 1))
    return tokens


def _open_brackets(tokens: list[_Tok], upto: int) -> list[int]:
    """Indexes of the brackets still open before ``tokens[upto]``, innermost last."""
    return _brackets(tokens, upto)[0]


def _unclosed(tokens: list[_Tok]) -> set[int]:
    """Indexes of the brackets that are never closed (``( }`` leaves the ``(`` unclosed)."""
    stack, skipped = _brackets(tokens, len(tokens))
    return set(stack) | skipped


def _brackets(tokens: list[_Tok], upto: int) -> tuple[list[int], set[int]]:
    stack: list[int] = []
    skipped: set[int] = set()
    for i, tok in enumerate(tokens[:upto]):
        if tok.kind != "op":
            continue
        if tok.text in _CLOSERS:
            stack.append(i)
        elif tok.text in ("}", "]", ")"):
            for depth in range(len(stack) - 1, -1, -1):
                if _CLOSERS[tokens[stack[depth]].text] == tok.text:
                    skipped.update(stack[depth + 1 :])
                    del stack[depth:]
                    break
    return stack, skipped


def _not_closed(tokens: list[_Tok], at: int, file: str) -> BuildfileError:
    opener = tokens[at]
    closer = _CLOSERS[opener.text]
    what = _WHAT[opener.text]
    if opener.text == "(" and not (at >= 1 and tokens[at - 1].kind == "word" and tokens[at - 1].text not in _KEYWORDS):
        what = "parenthesis"
    return BuildfileError(f"'{opener.text}' is not closed", opener.span(file),
                          hint=f"close the {what} with '{closer}'")


def _missing_value(key: _Tok | None, equals: _Tok, file: str) -> BuildfileError:
    if key is not None and key.kind in ("word", "string") and key.line == equals.line:
        return BuildfileError(f"'{key.text.strip(chr(34))}' has no value", equals.span(file),
                              hint="write the value after '=' on the same line")
    return BuildfileError("missing value after '='", equals.span(file),
                          hint="write the value after '=' on the same line")


def _unexpected_token(e: UnexpectedToken, token: Token, text: str, file: str) -> BuildfileError:
    tokens = _scan(text)
    starts = [t.start for t in tokens]
    i = bisect.bisect_left(starts, token.start_pos or 0)
    expected = set(e.expected)
    if i < len(tokens) and tokens[i].start == token.start_pos:
        here = tokens[i]
        open_now = _open_brackets(tokens, i)
        still_open = _unclosed(tokens)
        inner = tokens[open_now[-1]].text if open_now else None
        # An unclosed list or call swallows the lines after it; point at its bracket.
        if open_now and inner in ("[", "(") and open_now[-1] in still_open \
                and here.line > tokens[open_now[-1]].line:
            return _not_closed(tokens, open_now[-1], file)
        previous = tokens[i - 1] if i >= 1 else None
        if here.text == "}" and not open_now:
            return BuildfileError("unmatched '}'", here.span(file), hint="this '}' closes no block; remove it")
        # A condition cut short: `"latest" if` or `... and` at the end of the line.
        if previous is not None and previous.text in _OPERATORS \
                and (here.text == "}" or here.line > previous.line):
            what = "a value" if previous.text in ("==", "!=") else "a condition"
            return BuildfileError(f"'{previous.text}' needs {what} after it", previous.span(file),
                                  hint="write the whole condition on the line of its tag template")
        if token.type == "EQUAL" and "EQ" in expected:
            return BuildfileError("unexpected '=' in a condition", here.span(file),
                                  hint="compare with '==' (or '!=')")
        # `context =` with nothing after it: the next line's key was taken as the value.
        if previous is not None and previous.text == "=" and (here.text == "}" or here.line > previous.line):
            return _missing_value(tokens[i - 2] if i >= 2 else None, previous, file)
        if here.text in ("=", "{") and i >= 3 and tokens[i - 2].text == "=" \
                and tokens[i - 1].kind == "word" and tokens[i - 1].line > tokens[i - 2].line:
            return _missing_value(tokens[i - 3], tokens[i - 2], file)
        # `if`, `and`, `or`, `not` outside a tag line read as names: `if git.branch {` is expected.
        if expected <= {"LBRACE", "EQUAL"} and i >= 2 and tokens[i - 2].text in _KEYWORDS:
            # ... or the tag line of this `if` was swallowed by an incomplete condition above.
            if i >= 4 and tokens[i - 3].kind == "string" and tokens[i - 4].text in _OPERATORS \
                    and tokens[i - 4].line < tokens[i - 3].line:
                return _cut_short(tokens[i - 4], tokens[i - 3], file)
            word = tokens[i - 2]
            return BuildfileError(
                f"'{word.text}' can only follow a tag template",
                word.span(file),
                hint='conditions belong to tag templates in a tags block:  "latest"  if git.is_default_branch',
            )
        # A stray word at the end of a line starts a statement that the next line cannot
        # continue: point at the word, not at the innocent line after it.
        if previous is not None and previous.kind == "word" and previous.line < here.line \
                and expected <= {"LBRACE", "EQUAL", "NAME"}:
            first = i - 1
            if "NAME" not in expected and tokens[i - 2].kind == "word" and tokens[i - 2].line == previous.line:
                first = i - 2  # `image app` without its '{'
            return _incomplete(tokens[first:i], _in_tags_block(tokens, open_now), file)
        # LALR merges states, so Lark offers ')' inside a list and ']' inside a call.
        if inner is None:
            expected.discard("RBRACE")
        else:
            expected.discard("$END")
        if inner != "(":
            expected.discard("RPAR")
        if inner != "[":
            expected.discard("RSQB")
        if inner not in ("(", "["):
            expected.discard("COMMA")
        if not any(t.text == "if" and t.line == (previous or here).line for t in tokens[max(i - 40, 0) : i]):
            expected -= {"EQ", "NE"}  # comparisons only come after `if`
        hint = _hint_for(token, expected, inner)
        if here.text == "[" and any(t.text == "if" and t.line == here.line for t in tokens[max(i - 40, 0) : i]):
            hint = 'options come before the condition:  "{version}" [latest] if version.stable'
        if token.type == "STRING" and "NAME" in expected and previous is not None \
                and previous.text in ("image", "tags", "group"):
            hint = f"write the name without quotes: {previous.text} {here.text.strip(chr(34))}"
    else:
        hint = _hint_for(token, expected, None)
    return BuildfileError(
        f"unexpected {_describe_token(token)}{_expected(expected)}",
        Span(file, e.line, e.column, token.end_column if token.end_line == token.line else None),
        hint=hint,
    )


def _in_tags_block(tokens: list[_Tok], open_now: list[int]) -> bool:
    braces = [at for at in open_now if tokens[at].text == "{"]
    return bool(braces) and any(t.text == "tags" for t in tokens[max(braces[-1] - 2, 0) : braces[-1]])


def _incomplete(words: list[_Tok], in_tags_block: bool, file: str) -> BuildfileError:
    shown = " ".join(w.text for w in words)
    if len(words) == 2 and words[0].text in ("image", "tags"):
        hint = f"open the block on the same line: {shown} {{"
    elif in_tags_block:
        hint = 'a tags block holds one "TEMPLATE" per line, optionally followed by [OPTIONS] and if CONDITION'
    else:
        hint = "a statement is NAME = VALUE or NAME { ... }"
    span = Span(file, words[0].line, words[0].column, words[-1].column + len(words[-1].text))
    return BuildfileError(f"'{shown}' is not a complete statement", span, hint=hint)


def _unexpected_end(text: str, file: str, expected: Any) -> BuildfileError:
    tokens = _scan(text)
    still_open = sorted(_unclosed(tokens))
    if still_open:
        return _not_closed(tokens, still_open[-1], file)
    if tokens and tokens[-1].text == "=":
        return _missing_value(tokens[-2] if len(tokens) >= 2 else None, tokens[-1], file)
    last = tokens[-1] if tokens else _Tok("other", "", 0, 1, 1)
    return BuildfileError(
        f"unexpected end of the file{_expected(set(expected))}",
        Span(file, last.line, last.column + len(last.text)),
    )


def _hint_for(token: Token, expected: set[str], inner: str | None) -> str | None:
    if token.type == "NUMBER" and "NAME" in expected:
        return "names start with a letter or '_'"
    if str(token) == "if" and expected <= {"EQUAL", "LBRACE"}:
        return 'a tag template and its condition belong in a tags block:  tags NAME { "latest" if ... }'
    if token.type == "EQUAL" and "EQ" in expected:
        return "compare with '==' in conditions"
    if token.type == "RBRACE" and "EQUAL" in expected:
        return "every attribute needs a value: NAME = VALUE"
    if "COMMA" in expected and inner == "[":
        return "separate list items with commas"
    if "COMMA" in expected and inner == "(":
        return "separate arguments with commas"
    return None


def swallowed_line(node: Str, item: TagLine, text: str) -> BuildfileError:
    tokens = _scan(text)
    at = next((i for i, t in enumerate(tokens) if (t.line, t.column) == (node.span.line, node.span.column)), 0)
    if at >= 1 and tokens[at - 1].text in _OPERATORS:
        return _cut_short(tokens[at - 1], tokens[at], node.span.file)
    return BuildfileError(
        f"the condition on line {item.span.line} is incomplete, so this line was read as part of it",
        node.span,
        hint="write the whole condition on the line of its tag template",
    )


def _cut_short(operator: _Tok, swallowed: _Tok, file: str) -> BuildfileError:
    """``"a" if x ==`` at the end of a line: the next line's ``"b"`` became the operand."""
    what = "a value" if operator.text in ("==", "!=") else "a condition"
    return BuildfileError(
        f"'{operator.text}' needs {what} after it",
        operator.span(file),
        hint="write the whole condition on the line of its tag template",
        notes=((f"so the next line's {swallowed.text} was read as part of the condition", swallowed.span(file)),),
    )
