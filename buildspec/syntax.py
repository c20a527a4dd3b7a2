"""Stage 1: Buildfile text -> syntax tree (small frozen dataclasses with spans).

The grammar (grammar/buildfile.lark) is LALR and generic; this module turns
Lark's tokens straight into the nodes below while parsing (no intermediate
parse tree, which keeps `plan` fast on large files) and turns Lark's
exceptions into ``BuildfileError`` with a position and a readable message.
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from buildspec.errors import BuildfileError, Span

# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True, slots=True)
class Word:
    """A bare word: a name (`release`, `buildx`), a platform (`linux/arm64`) or a number."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal; ``text`` is unescaped, ``raw`` is as written (with quotes)."""

    text: str
    raw: str
    span: Span


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class NameRef:
    """A name in a condition: `git.branch`, `version.stable`."""

    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    left: Condition
    right: Condition
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # "==" | "!="
    left: Condition
    right: Condition
    span: Span


Value = Word | Str | ListValue | Call
Condition = NameRef | Not | BoolOp | Compare | Str | Word | Call


@dataclass(frozen=True, slots=True)
class Assign:
    key: str
    value: Value
    span: Span  # of the key


@dataclass(frozen=True, slots=True)
class NamedAssign:
    """``group default = [a, b]``."""

    kind: str
    name: str
    value: Value
    span: Span  # of the kind keyword
    name_span: Span


@dataclass(frozen=True, slots=True)
class TagOption:
    """``prefix = "pr-"`` or a bare flag (``latest``) in a tag line's ``[...]``."""

    name: str
    value: Value | None
    span: Span  # of the name


@dataclass(frozen=True, slots=True)
class TagLine:
    template: Str
    condition: Condition | None
    span: Span
    options: tuple[TagOption, ...] = ()


@dataclass(frozen=True, slots=True)
class Block:
    kind: str
    label: str | None
    items: tuple[Assign | Block | TagLine, ...]
    span: Span  # of the kind keyword
    label_span: Span | None


Statement = Assign | NamedAssign | Block


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    text: str
    statements: tuple[Statement, ...]


# ---------------------------------------------------------------- parsing

_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unescape(raw: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw[1:-1])


class _ToNodes(Transformer[Token, Any]):
    """Builds syntax nodes during the LALR parse; ``file`` is set per parse."""

    file = "Buildfile"

    def _span(self, tok: Token) -> Span:
        return Span(self.file, tok.line or 0, tok.column or 0, tok.end_column)

    def STRING(self, tok: Token) -> Str:
        return Str(_unescape(str(tok)), str(tok), self._span(tok))

    def start(self, items: list[Statement]) -> tuple[Statement, ...]:
        return tuple(items)

    def assignment(self, items: list[Any]) -> Assign:
        key, value = items
        if isinstance(key, Str):
            return Assign(key.text, value, key.span)
        return Assign(str(key), value, self._span(key))

    def named_assignment(self, items: list[Any]) -> NamedAssign:
        kind, name, value = items
        return NamedAssign(str(kind), str(name), value, self._span(kind), self._span(name))

    def block(self, items: list[Any]) -> Block:
        kind, label, *body = items
        return Block(
            str(kind),
            None if label is None else str(label),
            tuple(body),
            self._span(kind),
            None if label is None else self._span(label),
        )

    def tag_line(self, items: list[Any]) -> TagLine:
        template, options, condition = items
        return TagLine(template, condition, template.span, tuple(options or ()))

    def tag_options(self, items: list[Any]) -> tuple[TagOption, ...]:
        _bracket, *options = items
        return tuple(o for o in options if o is not None)

    def tag_option(self, items: list[Any]) -> TagOption:
        name, value = items
        return TagOption(str(name), value, self._span(name))

    def word(self, items: list[Token]) -> Word:
        return Word(str(items[0]), self._span(items[0]))

    def name_ref(self, items: list[Token]) -> NameRef:
        return NameRef(str(items[0]), self._span(items[0]))

    def list_value(self, items: list[Any]) -> ListValue:
        bracket, *rest = items
        return ListValue(tuple(i for i in rest if i is not None), self._span(bracket))

    def call(self, items: list[Any]) -> Call:
        name, *args = items
        return Call(str(name), tuple(a for a in args if a is not None), self._span(name))

    def not_(self, items: list[Any]) -> Not:
        return Not(items[0], _span_of(items[0]))

    def and_(self, items: list[Any]) -> BoolOp:
        return BoolOp("and", items[0], items[1], _span_of(items[0]))

    def or_(self, items: list[Any]) -> BoolOp:
        return BoolOp("or", items[0], items[1], _span_of(items[0]))

    def compare(self, items: list[Any]) -> Compare:
        left, op, right = items
        return Compare(str(op), left, right, _span_of(left))


def _span_of(node: Any) -> Span:
    span: Span = node.span
    return span


_lock = threading.Lock()


@cache
def _parser() -> tuple[Lark, _ToNodes]:
    grammar = _grammar_text()
    transformer = _ToNodes()
    parser = Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        transformer=transformer,
        maybe_placeholders=True,
        cache=True,
    )
    return parser, transformer


def _grammar_text() -> str:
    # Installed wheel: the grammar ships inside the package; source checkout: grammar/.
    packaged = resources.files("buildspec").joinpath("grammar/buildfile.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).parent.parent / "grammar" / "buildfile.lark").read_text(encoding="utf-8")


def read_source(path: Path, display: str) -> str:
    """Read a Buildfile as UTF-8, or raise a BuildfileError that says why not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BuildfileError(f"no Buildfile at '{display}'", Span(display, 0, 0),
                             hint="pass another file with -f FILE") from None
    except IsADirectoryError:
        raise BuildfileError(f"'{display}' is a directory, not a Buildfile",
                             Span(display, 0, 0)) from None
    except OSError as e:
        raise BuildfileError(f"cannot read '{display}': {e.strerror}", Span(display, 0, 0)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        column = e.start - (before.rfind(b"\n") + 1) + 1
        raise BuildfileError(
            f"the Buildfile is not valid UTF-8 (byte 0x{data[e.start]:02x})",
            Span(display, line, column),
            hint="save the file as UTF-8",
        ) from None


def parse(text: str, file: str = "Buildfile") -> SourceFile:
    """Parse Buildfile text into syntax nodes; raise BuildfileError on a syntax error."""
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise BuildfileError("the Buildfile contains a NUL byte", Span(file, line, column),
                             hint="is it a binary file? a Buildfile is UTF-8 text")
    parser, transformer = _parser()
    with _lock:
        transformer.file = file
        try:
            statements: tuple[Statement, ...] = parser.parse(text)  # type: ignore[assignment]
        except UnexpectedInput as e:
            raise _syntax_error(e, text, file) from None
    _check_conditions(statements, text)
    return SourceFile(file, text, statements)


MAX_CONDITION_DEPTH = 100  # later stages walk conditions recursively


def _check_conditions(statements: tuple[Statement, ...], text: str) -> None:
    """Catch a condition that ran on into the next tag line, or that nests absurdly deep.

    Newlines are not significant, so in ``"a" if git.branch ==`` followed by a
    line ``"b"``, the template ``"b"`` becomes the right-hand side of ``==``
    and silently disappears. A string that starts a line inside a condition is
    that mistake: nobody writes a condition's operand at the start of a line.
    The depth limit keeps every later (recursive) walk of a condition safe.
    """
    lines = text.split("\n")
    blocks = [s for s in statements if isinstance(s, Block)]
    while blocks:
        block = blocks.pop()
        for item in block.items:
            if isinstance(item, Block):
                blocks.append(item)
            elif isinstance(item, TagLine) and item.condition is not None:
                for node in _condition_strings(item.condition, item):
                    line = lines[node.span.line - 1] if node.span.line <= len(lines) else ""
                    if not line[: node.span.column - 1].strip():
                        raise _swallowed_line(node, item, text)


def _swallowed_line(node: Str, item: TagLine, text: str) -> BuildfileError:
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


def _condition_strings(condition: Condition, item: TagLine) -> list[Str]:
    """The strings in a condition, in order (iteratively: a condition may be deep)."""
    found: list[Str] = []
    stack: list[tuple[Condition | Value, int]] = [(condition, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_CONDITION_DEPTH:
            raise BuildfileError(f"the condition of this tag nests more than {MAX_CONDITION_DEPTH} levels deep",
                                 item.span, hint="simplify it")
        if isinstance(node, Str):
            found.append(node)
        elif isinstance(node, Not):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, BoolOp | Compare):
            stack.extend([(node.right, depth + 1), (node.left, depth + 1)])
        elif isinstance(node, Call):
            stack.extend((arg, depth + 1) for arg in reversed(node.args))
    return found


# ---------------------------------------------------------------- friendly syntax errors

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


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> BuildfileError:
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
