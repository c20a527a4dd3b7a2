"""Stage 1: Buildfile text -> syntax nodes with spans, and readable syntax errors."""

from __future__ import annotations

import pytest

from buildspec.errors import BuildfileError, Span, format_error
from buildspec.syntax import (
    Assign,
    Block,
    BoolOp,
    Call,
    Compare,
    ListValue,
    NamedAssign,
    NameRef,
    Not,
    Str,
    TagLine,
    Word,
    parse,
)


def only(text: str) -> object:
    (statement,) = parse(text, "F").statements
    return statement


def value_of(text: str) -> object:
    statement = only(f"x = {text}\n")
    assert isinstance(statement, Assign)
    return statement.value


def condition_of(text: str) -> object:
    block = only(f'tags t {{\n    "x" if {text}\n}}\n')
    assert isinstance(block, Block)
    (line,) = block.items
    assert isinstance(line, TagLine)
    return line.condition


def error(text: str) -> BuildfileError:
    with pytest.raises(BuildfileError) as info:
        parse(text, "F")
    return info.value


# ---------------------------------------------------------------- nodes


def test_an_empty_file_and_comments_parse_to_nothing() -> None:
    assert parse("", "F").statements == ()
    assert parse("# only a comment\n\n   # another\n", "F").statements == ()


def test_assignment_with_its_span() -> None:
    statement = only('  registry = "localhost:5000/acme"  # where images go\n')
    assert statement == Assign(
        "registry",
        Str("localhost:5000/acme", '"localhost:5000/acme"', Span("F", 1, 14, 35)),
        Span("F", 1, 3, 11),
    )


def test_string_escapes() -> None:
    value = value_of(r'"a\"b\\c\nd\te\x"')
    assert isinstance(value, Str)
    assert value.text == 'a"b\\c\nd\te\\x'  # an unknown escape stays as written
    assert value.raw == r'"a\"b\\c\nd\te\x"'


def test_bare_words_names_platforms_and_numbers() -> None:
    assert value_of("buildx") == Word("buildx", Span("F", 1, 5, 11))
    assert value_of("linux/arm/v7") == Word("linux/arm/v7", Span("F", 1, 5, 17))
    assert value_of("3.12") == Word("3.12", Span("F", 1, 5, 9))
    assert value_of("app-py3.12") == Word("app-py3.12", Span("F", 1, 5, 15))


def test_lists_allow_a_trailing_comma_and_line_breaks() -> None:
    value = value_of('[\n    linux/amd64,\n    "linux/arm64",\n]')
    assert isinstance(value, ListValue)
    assert [type(i).__name__ for i in value.items] == ["Word", "Str"]
    assert value.span == Span("F", 1, 5, 6)
    assert value_of("[]") == ListValue((), Span("F", 1, 5, 6))


def test_calls() -> None:
    value = value_of('env("VERSION", "1.0.0")')
    assert isinstance(value, Call)
    assert value.name == "env"
    assert [a.text for a in value.args if isinstance(a, Str)] == ["VERSION", "1.0.0"]
    pin = value_of("image(runtime-slim-1)")
    assert pin == Call("image", (Word("runtime-slim-1", Span("F", 1, 11, 25)),), Span("F", 1, 5, 10))
    assert value_of("f()") == Call("f", (), Span("F", 1, 5, 6))


def test_group_is_a_named_assignment() -> None:
    statement = only("group default = [base, app]\n")
    assert isinstance(statement, NamedAssign)
    assert (statement.kind, statement.name) == ("group", "default")
    assert statement.span == Span("F", 1, 1, 6)
    assert statement.name_span == Span("F", 1, 7, 14)


def test_blocks_nest_and_keep_their_label() -> None:
    block = only('image app {\n    args { A = "1" }\n    tags { "latest" }\n}\n')
    assert isinstance(block, Block)
    assert (block.kind, block.label, block.span, block.label_span) == (
        "image", "app", Span("F", 1, 1, 6), Span("F", 1, 7, 10)
    )
    args, tags = block.items
    assert isinstance(args, Block) and args.label is None and args.kind == "args"
    assert isinstance(tags, Block) and isinstance(tags.items[0], TagLine)


def test_newlines_are_not_significant() -> None:
    one_line = parse('image app { context = "." tags = ["x"] }', "F").statements
    many = parse('image app {\n context = "."\n tags = ["x"]\n}', "F").statements
    assert [type(i) for i in one_line[0].items] == [type(i) for i in many[0].items]  # type: ignore[union-attr]


def test_string_keys_in_blocks() -> None:
    block = only('labels { "org.opencontainers.image.title" = "x" }\n')
    assert isinstance(block, Block)
    (entry,) = block.items
    assert isinstance(entry, Assign)
    assert entry.key == "org.opencontainers.image.title"
    assert entry.span == Span("F", 1, 10, 42)


def test_tag_lines_with_and_without_conditions() -> None:
    block = only('tags release {\n    "{version}"\n    "latest"  if git.is_default_branch\n}\n')
    assert isinstance(block, Block)
    first, second = block.items
    assert isinstance(first, TagLine) and first.condition is None
    assert isinstance(second, TagLine)
    assert second.condition == NameRef("git.is_default_branch", Span("F", 3, 18, 39))


# ---------------------------------------------------------------- conditions


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    condition = condition_of("a or not b and c")
    assert isinstance(condition, BoolOp) and condition.op == "or"
    assert isinstance(condition.left, NameRef) and condition.left.path == "a"
    right = condition.right
    assert isinstance(right, BoolOp) and right.op == "and"
    assert isinstance(right.left, Not) and isinstance(right.right, NameRef)


def test_parentheses_group() -> None:
    condition = condition_of("(a or b) and c")
    assert isinstance(condition, BoolOp) and condition.op == "and"
    assert isinstance(condition.left, BoolOp) and condition.left.op == "or"


def test_comparisons() -> None:
    condition = condition_of('git.event == "schedule"')
    assert isinstance(condition, Compare) and condition.op == "=="
    assert isinstance(condition.left, NameRef) and isinstance(condition.right, Str)
    condition = condition_of("version.major != 0")
    assert isinstance(condition, Compare) and condition.op == "!="
    assert condition.right == Word("0", Span("F", 2, 29, 30))


def test_calls_in_conditions() -> None:
    condition = condition_of('env("CI") and not match(git.tag, "^v")')
    assert isinstance(condition, BoolOp)
    assert isinstance(condition.left, Call) and condition.left.name == "env"
    assert isinstance(condition.right, Not) and isinstance(condition.right.operand, Call)


def test_a_condition_may_span_lines_when_it_is_not_a_string() -> None:
    condition = condition_of("version.stable\n        and git.is_default_branch")
    assert isinstance(condition, BoolOp)


# ---------------------------------------------------------------- line endings and odd characters


def test_crlf_line_endings() -> None:
    statements = parse('a = "1"\r\nimage app {\r\n  context = "."\r\n}\r\n', "F").statements
    assert len(statements) == 2
    assert statements[1].span == Span("F", 2, 1, 6)


def test_unicode_inside_strings_and_comments() -> None:
    statement = only('title = "café ☕"  # déjà vu\n')
    assert isinstance(statement, Assign) and isinstance(statement.value, Str)
    assert statement.value.text == "café ☕"


def test_form_feed_does_not_shift_line_numbers_in_excerpts() -> None:
    text = 'a = "1"\x0cb = "2"\nc = ]\n'
    e = error(text)
    assert e.span is not None and e.span.line == 2
    shown = format_error(e, {"F": text})
    assert " 2 | c = ]" in shown


# ---------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('a = "x', "unterminated string", 1, 5),
        ("a = 'x'", "strings use double quotes", 1, 5),
        ("a = 1 ;", "unexpected character ';'", 1, 7),
        ("image app {\n", "'{' is not closed", 1, 11),
        ("a = [x,\nb = 1\n", "'[' is not closed", 1, 5),
        ('a = env("x"\nb = 1\n', "'(' is not closed", 1, 8),
        ("}\n", "unmatched '}'", 1, 1),
        ("a =\nb = 1\n", "'a' has no value", 1, 3),
        ("a =", "'a' has no value", 1, 3),
        ("a = [x y]", "unexpected 'y'; expected ',' or ']'", 1, 8),
        ('tags t {\n "x" if a = "b"\n}', "unexpected '=' in a condition", 2, 11),
        ('tags t {\n "x" if\n}', "'if' needs a condition after it", 2, 6),
        ('tags t {\n "x" if a ==\n "y"\n}', "'==' needs a value after it", 2, 11),
        ('tags t {\n "x" if a or\n "y" if b\n}', "'or' needs a condition after it", 2, 11),
        ("image app {\n if a\n}", "'if' can only follow a tag template", 2, 2),
        ('image app\n context = "."\n}', "'image app' is not a complete statement", 1, 1),
        ("image app", "unexpected end of the file; expected '=' or '{'", 1, 10),
        ("a = b\x00", "the Buildfile contains a NUL byte", 1, 6),
    ],
)
def test_syntax_errors(text: str, message: str, line: int, column: int) -> None:
    e = error(text)
    assert e.message == message
    assert e.span is not None
    assert (e.span.file, e.span.line, e.span.column) == ("F", line, column)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ('image app {\n context: "."\n}', "use '=' to assign, not ':'"),
        ("// comment\n", "comments start with '#'"),
        ("a = [x y]", "separate list items with commas"),
        ('a = env("x" "y")', "separate arguments with commas"),
        ('image "app" {\n}', "write the name without quotes: image app"),
        ('image app {\n 2x = "."\n}', "names start with a letter or '_'"),
        ("café = 1", "names use ASCII letters, digits, '_', '-' and '.'"),
        ("linux/amd64\n", "a platform is a value, as in:  platforms = [linux/amd64]"),
    ],
)
def test_syntax_error_hints(text: str, hint: str) -> None:
    assert error(text).hint == hint


def test_merged_lalr_states_do_not_leak_into_expected_tokens() -> None:
    """Lark offers ']' inside a call and '}' at the top level (LALR merges states)."""
    assert "']'" not in error('a = env("x" "y")').message
    assert "'}'" not in error("1app = 2").message
    assert "the end of the file" not in error('image app {\n 2x = "."\n}').message


def test_a_swallowed_tag_line_is_named_in_a_note() -> None:
    e = error('tags t {\n    "x" if a ==\n    "y"\n}\n')
    ((note, span),) = e.notes
    assert note == 'so the next line\'s "y" was read as part of the condition'
    assert span == Span("F", 3, 5, 8)


def test_parse_errors_render_with_a_caret() -> None:
    text = 'image app {\n    context = "." ;\n}\n'
    shown = format_error(error(text), {"F": text})
    assert shown == (
        "F:2:19: error: unexpected character ';'\n"
        ' 2 |     context = "." ;\n'
        "   |                   ^\n"
        "  hint: statements end at the end of the line; no ';' is needed"
    )


def test_parsing_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [f'image app{i} {{\n context = "{i}"\n}}\n' for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: parse(t, t[6:11]), texts))
    for text, result in zip(texts, results, strict=True):
        (block,) = result.statements
        assert isinstance(block, Block)
        assert block.label == text[6:text.index(" {")]
        assert block.span.file == text[6:11]
