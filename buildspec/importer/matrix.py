"""bake matrices back into Buildfile matrices.

``docker buildx bake --print`` prints a matrix target as a group of cells. The
cells are one buildspec matrix when the build arguments that vary between them
form a full cross product (the axes, named after those arguments) and every
other field that varies is a template over the axes that renders each cell's
value exactly; otherwise the cells stay separate images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from buildspec.importer.text import split_tag, template_literal

_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names a matrix axis may not take: settings and the names every template sees.
_RESERVED = {"registry", "version", "platforms", "backend", "name", "tag", "platform", "git", "date",
             "publish", "builder", "version_scheme", "default_branch", "short_sha_length", "platform_tag"}


class Matrix:
    def __init__(self, axes: dict[str, list[str]], templates: dict[str, str], varying: set[str]) -> None:
        self.axes = axes
        self.templates = templates  # field -> template: "args.K", "labels.K", "@name", "@tagN", ...
        self.varying = varying  # the fields whose template differs from cell to cell


def fold(cells: list[tuple[str, dict[str, Any]]]) -> Matrix | None:
    """The cells of one bake matrix as one buildspec matrix image, or None when they are not one."""
    fields = [_fields(name, spec) for name, spec in cells]
    if any(f.keys() != fields[0].keys() for f in fields):
        return None
    varying = [k for k in fields[0] if len({f[k] for f in fields}) > 1]
    if any(k in ("context", "dockerfile", "platforms") or k.startswith("contexts.") for k in varying):
        return None  # paths and platforms are not templates in a Buildfile
    axis_args = [k for k in varying if k.startswith("args.")]
    if not axis_args:
        return None
    axes: dict[str, list[str]] = {}
    for key in axis_args:
        axis = key.removeprefix("args.").lower().replace("-", "_")
        if not _ARG_NAME.fullmatch(axis) or axis in _RESERVED or axis in axes:
            axis = f"{axis}_axis"
        axes[axis] = list(dict.fromkeys(f[key] for f in fields))
    combos = [tuple(f[key] for key in axis_args) for f in fields]
    if len(set(combos)) != len(cells) or len(cells) != _product(len(v) for v in axes.values()):
        return None
    axis_names = list(axes)
    templates: dict[str, str] = {}
    for key in fields[0]:
        if key in axis_args:
            templates[key] = "{" + axis_names[axis_args.index(key)] + "}"
            continue
        if key not in varying:
            templates[key] = template_literal(fields[0][key])
            continue
        template = _templatise([f[key] for f in fields], combos, axis_names)
        if template is None:
            return None
        templates[key] = template
    return Matrix(axes, templates, set(varying))


def _product(sizes: Any) -> int:
    result = 1
    for size in sizes:
        result *= size
    return result


def _fields(name: str, spec: Mapping[str, Any]) -> dict[str, str]:
    """The strings of a target that a template may carry, by field."""
    fields = {"@name": name, "context": spec.get("context") or ".",
              "dockerfile": spec.get("dockerfile") or "Dockerfile", "target": spec.get("target") or "",
              "platforms": ",".join(spec.get("platforms") or [])}
    fields |= {f"args.{k}": str(v) for k, v in (spec.get("args") or {}).items() if v is not None}
    fields |= {f"labels.{k}": str(v) for k, v in (spec.get("labels") or {}).items() if v is not None}
    tags = spec.get("tags") or []
    if tags:
        fields["@repository"] = split_tag(tags[0])[0]
        fields |= {f"@tag{i}": split_tag(t)[1] for i, t in enumerate(tags)}
    fields |= {f"contexts.{k}": str(v) for k, v in (spec.get("contexts") or {}).items()}
    return fields


def _templatise(values: list[str], combos: list[tuple[str, ...]], axes: list[str]) -> str | None:
    """A template that renders to ``values[i]`` for the axis values ``combos[i]``, or None."""
    first, combo = values[0], combos[0]
    # Longest values first, so that "3.12" is replaced before "3".
    order = sorted(range(len(axes)), key=lambda i: -len(combo[i]))
    for last_only in (False, True):
        template = template_literal(first)
        for i in order:
            value = template_literal(combo[i])
            if not value:
                continue
            if last_only:
                at = template.rfind(value)
                if at >= 0:
                    template = template[:at] + "{" + axes[i] + "}" + template[at + len(value):]
            else:
                template = template.replace(value, "{" + axes[i] + "}")
        if all(_render(template, dict(zip(axes, c, strict=True))) == v for v, c in zip(values, combos, strict=True)):
            return template
    return None


def _render(template: str, values: Mapping[str, str]) -> str:
    out = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    return out.replace("{{", "{").replace("}}", "}")
