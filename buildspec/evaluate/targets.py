"""Checks across images, and target names (images, matrix cells, groups)."""

from __future__ import annotations

from collections.abc import Mapping

from buildspec.errors import BuildfileError, Span, UsageError
from buildspec.evaluate.types import Image, Project
from buildspec.model import did_you_mean


def _check_pushes_are_distinct(images: Mapping[str, Image]) -> None:
    owners: dict[str, Image] = {}
    for image in images.values():
        refs = [f"{image.repository}:{t}" for t in (*image.tags, *image.platform_tags.values())]
        refs += [f"{repository}:{t}" for repository in image.repositories[1:] for t in image.tags]
        for ref in refs:
            if ref in owners and owners[ref] is not image:
                raise BuildfileError(
                    f"images '{owners[ref].name}' and '{image.name}' would both push {ref}",
                    image.span,
                    hint="give matrix cells a suffix (suffix = \"-{axis}\") or distinct repositories"
                    if image.matrix else "give each image its own repository, or distinct tags",
                    notes=((f"'{owners[ref].name}' is defined here", owners[ref].span),),
                )
            owners[ref] = image


def _target_names(project: Project) -> list[str]:
    return [*project.images, *project.declared, *project.groups]


def resolve_target(project: Project, name: str, groups: Mapping[str, tuple[str, ...]],
                   span: Span | None) -> tuple[str, ...]:
    if name in groups:
        return groups[name]
    if name in project.images:
        return (name,)
    if name in project.declared:
        return project.declared[name]
    message = f"no target named '{name}'"
    hint = did_you_mean(name, [*project.images, *project.declared, *groups])
    if span is None:
        raise UsageError(message + (f"; {hint}" if hint else ""))
    raise BuildfileError(message, span, hint=hint)


def _resolve_groups(project: Project) -> dict[str, tuple[str, ...]]:
    decls = project.buildfile.groups
    resolved: dict[str, tuple[str, ...]] = {}

    def visit(name: str, stack: tuple[str, ...]) -> tuple[str, ...]:
        if name in resolved:
            return resolved[name]
        members: dict[str, None] = {}
        for word in decls[name].members:
            if word.text in stack:
                raise BuildfileError(f"group '{name}' includes itself through '{word.text}'", word.span)
            if word.text in decls:
                found = visit(word.text, (*stack, word.text))
            else:
                found = resolve_target(project, word.text, {}, word.span)
            members.update(dict.fromkeys(found))
        resolved[name] = tuple(members)
        return resolved[name]

    for name in decls:
        visit(name, (name,))
    return resolved


def _check_references(project: Project, groups: Mapping[str, tuple[str, ...]]) -> None:
    for image in project.images.values():
        for name, span in image.needs:
            resolve_target(project, name, groups, span)
        for platform in image.platforms:
            for pin in image.pins(platform):
                if pin.target in project.images:
                    if not project.images[pin.target].tags:
                        raise BuildfileError(
                            f"image '{pin.target}' has no tags here, so it is built but not pushed, "
                            "and image() cannot pin it", pin.span,
                            hint=f"give '{pin.target}' a tag line that applies here "
                                 '(often "sha-{git.short_sha}" if git.short_sha)')
                    continue
                decl = next((d for d in project.buildfile.images if d.name == pin.target), None)
                if decl is not None and not decl.matrix:
                    (named,) = project.declared[pin.target]
                    raise BuildfileError(f"image '{pin.target}' is named '{named}' (name = ...)", pin.span,
                                         hint=f"image() takes that name: image({named})")
                if pin.target in project.declared:
                    cells = ", ".join(project.declared[pin.target])
                    raise BuildfileError(f"'{pin.target}' is a matrix; image() names one cell", pin.span,
                                         hint=f"cells: {cells}")
                raise BuildfileError(f"image() names no target: '{pin.target}'", pin.span,
                                     hint=did_you_mean(pin.target, project.images))
            break  # pins are the same on every platform


