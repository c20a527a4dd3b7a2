"""``buildspec completion bash|zsh|fish``: shell completion scripts made from the CLI itself.

The commands, their options, the choices of options such as ``--format`` and
which options take a file are read from cli.py's argparse parser, so a new
option completes without editing a script. Targets are read from the Buildfile
at completion time (the one after ``-f``/``--file``, else ./Buildfile) through the
hidden command ``buildspec __targets``, which prints images, matrix cells and
groups, one per line, and nothing when the Buildfile has a mistake.

Install: ``source <(buildspec completion bash)`` in ~/.bashrc; for zsh,
``buildspec completion zsh > "${fpath[1]}/_buildspec"`` (or ``source <(...)``
after compinit); for fish, ``buildspec completion fish > ~/.config/fish/completions/buildspec.fish``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# Options whose value is a path (everything else that takes a value gets no file names).
_FILE_OPTIONS = {"--file", "--metadata-file", "--output", "--kaniko-executor"}


@dataclass(frozen=True)
class _Option:
    flags: tuple[str, ...]
    help: str
    takes_value: bool
    choices: tuple[str, ...]
    is_file: bool
    repeatable: bool


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    options: tuple[_Option, ...]
    positional: str  # "targets", "files", "choices", or "" (none)
    positional_choices: tuple[str, ...]


def _commands(parser: argparse.ArgumentParser) -> list[_Command]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    commands = []
    for name, command in sub.choices.items():
        if name.startswith("_"):
            continue
        options: list[_Option] = []
        positional_choices: tuple[str, ...]
        positional, positional_choices = "", ()
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.option_strings:
                options.append(_Option(
                    tuple(action.option_strings),
                    (action.help or "").replace("%%", "%"),
                    action.nargs != 0,
                    tuple(str(c) for c in action.choices or ()),
                    any(flag in _FILE_OPTIONS for flag in action.option_strings),
                    isinstance(action, argparse._AppendAction),
                ))
            elif action.dest == "targets":
                positional = "targets"
            elif action.choices:
                positional, positional_choices = "choices", tuple(str(c) for c in action.choices)
            else:
                positional = "files"
        commands.append(_Command(name, helps.get(name, ""), tuple(options), positional, positional_choices))
    return commands


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    commands = _commands(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](commands)


# ---------------------------------------------------------------- bash


def _bash(commands: list[_Command]) -> str:
    names = " ".join(c.name for c in commands)
    value_cases = []
    option_cases = []
    for command in commands:
        for option in command.options:
            if not option.takes_value:
                continue
            pattern = "|".join(f"{command.name}:{flag}" for flag in option.flags)
            if option.choices:
                action = f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur"))'
            elif option.is_file:
                action = 'COMPREPLY=($(compgen -f -- "$cur"))'
            else:
                action = "COMPREPLY=()"
            value_cases.append(f"        {pattern}) {action}; return ;;")
        flags = " ".join(flag for option in command.options for flag in option.flags)
        positional = {
            "targets": 'COMPREPLY=($(compgen -W "$(buildspec __targets -f "$file" 2>/dev/null)" -- "$cur"))',
            "files": 'COMPREPLY=($(compgen -f -- "$cur"))',
            "choices": f'COMPREPLY=($(compgen -W "{" ".join(command.positional_choices)}" -- "$cur"))',
            "": "COMPREPLY=()",
        }[command.positional]
        option_cases.append(
            f'        {command.name})\n'
            f'            if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "{flags} --help" -- "$cur")); '
            f'else {positional}; fi ;;'
        )
    return f"""# bash completion for buildspec: source <(buildspec completion bash)
_buildspec() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local cmd="" file="Buildfile" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -f|--file) file="${{COMP_WORDS[i+1]}}" ;;
            -*) ;;
            *) [[ -z $cmd ]] && cmd="${{COMP_WORDS[i]}}" ;;
        esac
    done
    if [[ -z $cmd && $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
        return
    elif [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "{names}" -- "$cur"))
        return
    fi
    case "$cmd:$prev" in
{chr(10).join(value_cases)}
    esac
    case "$cmd" in
{chr(10).join(option_cases)}
    esac
}}
complete -o filenames -F _buildspec buildspec
"""


# ---------------------------------------------------------------- zsh


def _zsh_text(text: str) -> str:
    """Text inside a single-quoted _arguments spec: no quote, brackets or colons unescaped."""
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]")


def _zsh(commands: list[_Command]) -> str:
    described = "\n".join(f"        '{c.name}:{_zsh_text(c.help)}'" for c in commands)
    cases = []
    for command in commands:
        specs = []
        for option in command.options:
            if option.choices:
                value = f":{option.flags[-1].lstrip('-')}:({' '.join(option.choices)})"
            elif option.is_file:
                value = ":file:_files"
            elif option.takes_value:
                value = f":{option.flags[-1].lstrip('-')}: "
            else:
                value = ""
            exclusive = "" if option.repeatable else f"({' '.join(option.flags)})"
            star = "*" if option.repeatable else ""
            help_text = _zsh_text(option.help)
            if len(option.flags) == 1:
                specs.append(f"'{exclusive}{star}{option.flags[0]}[{help_text}]{value}'")
            else:
                flags = ",".join(option.flags)
                specs.append(f"'{exclusive}{star}'{{{flags}}}'[{help_text}]{value}'")
        positional = {
            "targets": "'*:target:_buildspec_targets'",
            "files": "'*:file:_files'",
            "choices": f"'1:{command.name}:({' '.join(command.positional_choices)})'",
            "": "",
        }[command.positional]
        if positional:
            specs.append(positional)
        body = " \\\n                ".join(specs)
        cases.append(f"        {command.name})\n            _arguments -s \\\n                {body} ;;")
    return f"""#compdef buildspec
# zsh completion for buildspec: buildspec completion zsh > "${{fpath[1]}}/_buildspec"
# (or: source <(buildspec completion zsh), after compinit)

_buildspec_targets() {{
    local file=Buildfile i
    for ((i = 1; i < $#words; i++)); do
        if [[ ${{words[i]}} == (-f|--file) ]]; then file=${{words[i+1]}}; fi
    done
    local -a targets
    targets=(${{(f)"$(buildspec __targets -f "$file" 2>/dev/null)"}})
    _describe -t targets 'target' targets
}}

_buildspec() {{
    local -a commands
    commands=(
{described}
    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'buildspec command' commands
        return
    fi
    local cmd=${{words[2]}}
    shift words
    (( CURRENT-- ))
    case $cmd in
{chr(10).join(cases)}
    esac
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _buildspec "$@"
else
    compdef _buildspec buildspec
fi
"""


# ---------------------------------------------------------------- fish


def _fish_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _fish(commands: list[_Command]) -> str:
    names = " ".join(c.name for c in commands)
    lines = [
        "# fish completion for buildspec: buildspec completion fish > ~/.config/fish/completions/buildspec.fish",
        "function __buildspec_targets",
        "    set -l tokens (commandline -opc)",
        "    set -l file Buildfile",
        "    for i in (seq (count $tokens))",
        "        if contains -- $tokens[$i] -f --file; and test $i -lt (count $tokens)",
        "            set file $tokens[(math $i + 1)]",
        "        end",
        "    end",
        "    buildspec __targets -f $file 2>/dev/null",
        "end",
        "complete -c buildspec -f",
        f"complete -c buildspec -n 'not __fish_seen_subcommand_from {names}' -l version -d 'show the version'",
    ]
    for command in commands:
        lines.append(f"complete -c buildspec -n 'not __fish_seen_subcommand_from {names}' "
                     f"-a {command.name} -d '{_fish_text(command.help)}'")
        when = f"-n '__fish_seen_subcommand_from {command.name}'"
        for option in command.options:
            flags = " ".join(f"-s {f[1:]}" if len(f) == 2 else f"-l {f[2:]}" for f in option.flags)
            if option.choices:
                value = f" -x -a '{' '.join(option.choices)}'"
            elif option.is_file:
                value = " -r -F"
            elif option.takes_value:
                value = " -x"
            else:
                value = ""
            lines.append(f"complete -c buildspec {when} {flags}{value} -d '{_fish_text(option.help)}'")
        if command.positional == "targets":
            lines.append(f"complete -c buildspec {when} -a '(__buildspec_targets)'")
        elif command.positional == "files":
            lines.append(f"complete -c buildspec {when} -F")
        elif command.positional == "choices":
            lines.append(f"complete -c buildspec {when} -a '{' '.join(command.positional_choices)}'")
    return "\n".join(lines) + "\n"
