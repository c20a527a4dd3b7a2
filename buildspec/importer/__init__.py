"""``buildspec import``: a docker buildx bake definition -> a Buildfile.

bake evaluates its own languages (HCL with variables and functions, JSON,
Compose): ``docker buildx bake --print`` gives the resolved targets and groups
as JSON, and that is what is translated, so nothing of bake's semantics is
re-implemented here. What translates:

* each target -> ``image NAME``: context (relative to the Buildfile's folder),
  dockerfile (relative to the context, as in bake), target, platforms, args,
  labels; its tags ``repo:tag`` -> ``repository`` and ``tags``;
* ``contexts = { NAME = "target:T" }`` -> ``args { NAME = image(T) }``: T is built
  first, platform by platform, and its digest is passed as the build argument
  NAME (buildspec has no named contexts, so the Dockerfile's ``FROM NAME``
  becomes ``ARG NAME`` + ``FROM ${NAME}``; a comment says so);
* a matrix (bake prints it as a group of cells named after the target) ->
  ``matrix { axis = [..] }`` when the cells differ only by the axis values (the
  axes are named after the build arguments that vary), else one image per cell;
* groups -> ``group NAME = [..]``; a registry shared by every repository ->
  ``registry``; platforms shared by every image -> ``platforms``;
* anything without an equivalent (outputs, secrets, ssh, cache-to, attest, ...)
  -> a ``# bake: ...`` comment at the image, so nothing is lost silently.

The result is printed in ``buildspec fmt``'s layout (and so parsed once).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from buildspec.errors import BuildspecError, UsageError
from buildspec.importer.matrix import Matrix, fold
from buildspec.importer.text import common_registry, key_text, name_text, split_tag, string, template_literal

_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HANDLED = {"context", "contexts", "dockerfile", "args", "labels", "tags", "target", "platforms", "cache-from",
            "cache-to", "description", "matrix", "name", "inherits", "dockerfile-inline"}
TIMEOUT = 120.0


class ImportFailed(BuildspecError):
    """``docker buildx bake --print`` failed: its own message says why."""


def bake_print(files: Sequence[str], targets: Sequence[str], cwd: Path | None = None) -> dict[str, Any]:
    """The resolved bake definition, as ``docker buildx bake --print`` prints it."""
    argv = ["docker", "buildx", "bake", "--print"]
    for file in files:
        argv += ["--file", file]
    argv += list(targets)
    try:
        done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise ImportFailed("docker is not installed: import reads bake files through "
                           "`docker buildx bake --print` (apt-get install docker-cli docker-buildx)") from None
    except subprocess.TimeoutExpired:
        raise ImportFailed(f"`{' '.join(argv)}` did not finish within {TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("#")]
        raise UsageError(f"`{' '.join(argv)}` failed: " + ("\n".join(lines[-5:]) or f"exit {done.returncode}"))
    try:
        definition: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise ImportFailed("`docker buildx bake --print` printed no JSON") from None
    return definition


def import_bake(files: Sequence[str], targets: Sequence[str], *, cwd: Path | None = None,
                output_dir: Path | None = None) -> str:
    """A Buildfile equivalent to the bake files (read from ``cwd``), for a Buildfile in ``output_dir``."""
    from buildspec.fmt import format_text

    cwd = (cwd or Path.cwd()).resolve()
    definition = bake_print(files, targets, cwd)
    text = translate(definition, cwd=cwd, output_dir=(output_dir or cwd).resolve(),
                     source=", ".join(files) or "the default bake files")
    return format_text(text, "<import>")


# ---------------------------------------------------------------- translation


def translate(definition: Mapping[str, Any], *, cwd: Path, output_dir: Path, source: str) -> str:
    all_targets: dict[str, dict[str, Any]] = dict(definition.get("target") or {})
    groups: dict[str, list[str]] = {name: list(g.get("targets") or []) for name, g in
                                    (definition.get("group") or {}).items()}
    images: list[_Image] = []
    folded: set[str] = set()
    for group, members in groups.items():
        if group in all_targets or len(members) < 2 or not all(m in all_targets for m in members):
            continue
        cells = [(m, all_targets[m]) for m in members]
        matrix = fold(cells)
        if matrix is not None:
            images.append(_Image(group, [dict(cells[0][1])], matrix, cells))
            folded.update(members)
    for name, spec in all_targets.items():
        if name not in folded:
            images.append(_Image(name, [spec], None))
    order = {name: i for i, name in enumerate(all_targets)}
    images.sort(key=lambda image: order[image.members[0][0]] if image.matrix else order[image.name])

    repositories = [split_tag(t)[0] for image in images for t in image.spec.get("tags") or []]
    registry = common_registry(repositories)
    platform_sets = {tuple(image.spec.get("platforms") or ()) for image in images}
    shared_platforms = next(iter(platform_sets)) if len(platform_sets) == 1 and () not in platform_sets else ()

    out = [f"# Imported from {source} by `buildspec import` (bake evaluated its variables and functions).", ""]
    if registry:
        out.append(f"registry  = {string(registry)}")
    if shared_platforms:
        out.append(f"platforms = [{', '.join(shared_platforms)}]")
    for image in images:
        out.append("")
        out += image.render(registry, bool(shared_platforms), cwd, output_dir, set(all_targets) - folded, folded)
    kept_groups = {g: m for g, m in groups.items() if g not in {i.name for i in images if i.matrix}}
    if kept_groups:
        out.append("")
    names = {image.name for image in images}
    for group, members in kept_groups.items():
        if group in names:
            out.append(f"# bake: group {group} has the name of a target; not imported")
            continue
        out.append(f"group {name_text(group)} = [{', '.join(name_text(m) for m in members)}]")
    return "\n".join(out) + "\n"


class _Image:
    """One image statement: a plain target, or a folded matrix (``matrix`` = axis -> values)."""

    def __init__(self, name: str, specs: list[dict[str, Any]], matrix: Matrix | None,
                 members: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        self.name = name
        self.spec = specs[0]
        self.matrix = matrix
        self.members = members or [(name, specs[0])]

    def render(self, registry: str | None, shared_platforms: bool, cwd: Path, output_dir: Path,
               plain_targets: set[str], matrix_cells: set[str]) -> list[str]:
        spec, matrix = self.spec, self.matrix
        varying = matrix.varying if matrix else set()

        def field(key: str, value: str) -> str:
            return matrix.templates[key] if matrix and key in varying else template_literal(value)

        lines = [f"image {name_text(self.name)} {{"]
        notes: list[str] = []
        if spec.get("description"):
            lines.append(f"    # {spec['description']}")
        context = spec.get("context") or "."
        if re.match(r"^[a-z][a-z0-9+.-]*://", context) or context.startswith("git@"):
            notes.append(f"context = {json.dumps(context)}: a remote context has no equivalent (a local folder only)")
        else:
            relative = os.path.relpath((cwd / context).resolve(), output_dir)
            if relative != ".":
                lines.append(f"    context = {string(template_literal(relative))}")
        dockerfile = spec.get("dockerfile") or "Dockerfile"
        if os.path.isabs(dockerfile):
            dockerfile = os.path.relpath(dockerfile, (cwd / context).resolve())
        if dockerfile != "Dockerfile":
            lines.append(f"    dockerfile = {string(template_literal(dockerfile))}")
        if spec.get("dockerfile-inline"):
            notes.append("dockerfile-inline has no equivalent: write it to a Dockerfile")
        if spec.get("target"):
            lines.append(f"    target = {string(field('target', spec['target']))}")
        if spec.get("platforms") and not shared_platforms:
            lines.append(f"    platforms = [{', '.join(spec['platforms'])}]")
        if matrix:
            lines.append("    matrix {")
            lines += [f"        {axis} = [{', '.join(string(v) for v in vals)}]" for axis, vals in matrix.axes.items()]
            lines.append("    }")
            lines.append(f"    name = {string(matrix.templates['@name'])}")
        args = [(k, field(f"args.{k}", str(v))) for k, v in (spec.get("args") or {}).items() if v is not None]
        pins, context_notes = _contexts(spec.get("contexts") or {}, plain_targets, matrix_cells)
        notes += context_notes
        if args or pins:
            lines.append("    args {")
            lines += [f"        {key_text(k)} = {string(v)}" for k, v in args]
            lines += [f"        {key_text(k)} = image({name_text(t)})" for k, t in pins]
            lines.append("    }")
        labels = [(k, field(f"labels.{k}", str(v))) for k, v in (spec.get("labels") or {}).items() if v is not None]
        if labels:
            lines.append("    labels {")
            lines += [f"        {json.dumps(k)} = {string(v)}" for k, v in labels]
            lines.append("    }")
        lines += self._tags(registry, notes)
        cache = _cache(spec, notes)
        if cache:
            lines.append(f"    cache = {string(template_literal(cache))}")
        for key in sorted(set(spec) - _HANDLED):
            if spec[key] not in (None, [], {}, "", False):
                notes.append(f"{key} = {json.dumps(spec[key])} has no equivalent in buildspec")
        lines += [f"    # bake: {note}" for note in notes]
        lines.append("}")
        return lines

    def _tags(self, registry: str | None, notes: list[str]) -> list[str]:
        tags = list(self.spec.get("tags") or [])
        matrix = self.matrix
        if not tags:
            notes.append("no tags: bake would push nothing; buildspec tags it latest under {registry}/NAME")
            return []
        # bake pushes each tag as written; buildspec pushes every tag to every repository of
        # the image, so repositories with the same tags become one list (repository = [...]).
        by_repository: dict[str, list[str]] = {}
        for tag in tags:
            repository, name = split_tag(tag)
            by_repository.setdefault(repository, []).append(name)
        first, *rest = by_repository
        same = [first] + ([] if matrix else [r for r in rest if by_repository[r] == by_repository[first]])
        for repository in by_repository:
            if repository not in same:
                notes += [f"tag {repository}:{name} has no equivalent: buildspec pushes every tag of an image to "
                          f"each of its repositories, and {first} has other tags" for name in by_repository[repository]]
        templates = [template_literal(r) for r in same]
        if matrix and matrix.templates.get("@repository"):
            templates[0] = matrix.templates["@repository"]
        if registry:
            prefix = template_literal(registry) + "/"
            templates = ["{registry}/" + t[len(prefix):] if t.startswith(prefix) else t for t in templates]
        lines = []
        # The default repository is {registry}/{name}, and a matrix cell's name is the cell's.
        default = "{registry}/{name}"
        implied = {default} if matrix else {default, default.replace("{name}", self.name)}
        if len(templates) > 1:
            lines.append(f"    repository = [{', '.join(string(t) for t in templates)}]")
        elif not registry or templates[0] not in implied:
            lines.append(f"    repository = {string(templates[0])}")
        in_first = [i for i, tag in enumerate(tags) if split_tag(tag)[0] == first]
        tag_values = [matrix.templates[f"@tag{i}"] if matrix else template_literal(split_tag(tags[i])[1])
                      for i in in_first]
        lines.append(f"    tags = [{', '.join(string(t) for t in tag_values)}]")
        return lines


def _contexts(contexts: Mapping[str, str], plain: set[str], cells: set[str]) -> tuple[list[tuple[str, str]], list[str]]:
    pins: list[tuple[str, str]] = []
    notes: list[str] = []
    for name, value in contexts.items():
        if value.startswith("target:"):
            target = value.removeprefix("target:")
            if (target in plain or target in cells) and _ARG_NAME.fullmatch(name):
                pins.append((name, target))
                notes.append(f'contexts {name} = "{value}" became args {{ {name} = image({target}) }}: '
                             f"in the Dockerfile, write ARG {name} and FROM ${{{name}}} for FROM {name}")
                continue
        notes.append(f"contexts {name} = {json.dumps(value)} has no equivalent in buildspec")
    return pins, notes


def _cache(spec: Mapping[str, Any], notes: list[str]) -> str | None:
    """``cache-from``/``cache-to`` of type registry -> buildspec's cache repository."""
    cache = None
    for key in ("cache-from", "cache-to"):
        for entry in spec.get(key) or []:
            text = entry if isinstance(entry, str) else ",".join(f"{k}={v}" for k, v in entry.items())
            fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
            if fields.get("type") == "registry" and fields.get("ref"):
                cache = cache or split_tag(fields["ref"])[0]
            else:
                notes.append(f"{key} {text} has no equivalent (buildspec caches in a registry: cache = REPOSITORY)")
    if cache:
        notes.append(f"cache-from/cache-to became cache = {cache} (buildspec keeps one cache tag per image "
                     "and platform in it)")
    return cache
