"""evaluate/tags.py TagMemo: a named scheme's tags are worked out once per set of values it
reads, and every image gets exactly what working them out on its own would give."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildspec.evaluate import Project, evaluate, tags
from buildspec.model import build_model
from buildspec.syntax import parse

EPOCH = "1774499400"

BUILDFILE = """\
registry = "localhost:5000/memo"
platforms = [linux/amd64]
version = env("VERSION", "1.2.3")

tags shared {
    "{version}"
    "{version.major}.{version.minor}"  if version.stable
    "latest"                           if git.is_default_branch
    "{git.tag}"                        if git.tag
    "edge"                             [prefix = "x-", latest]
}

tags personal {
    "{name}-{version}"
    "{flavor}"                         if flavor == "slim"
    "v{version}"                       [suffix = "-{flavor}"]
}

tags called {
    "{version}"
    "rc"                               if match(version, "-rc", 0)
}

image a { tags = shared }
image b { tags = shared }
image c {
    tags   = shared
    prefix = "pre-"
}
image d {
    tags         = shared
    suffix       = "-s"
    affix_latest = false
}
image e {
    tags = personal
    matrix { flavor = ["slim", "full"] }
    name = "e-{flavor}"
}
image f {
    tags = personal
    matrix { flavor = ["slim"] }
    name = "f-{flavor}"
}
image g { tags = called }
image h { tags = called }
image i { tags = ["{version}", "own"] }
"""


def _project(tmp: Path, environ: dict[str, str]) -> Project:
    (tmp / "Buildfile").write_text(BUILDFILE)
    (tmp / "Dockerfile").write_text("FROM scratch\n")
    return evaluate(build_model(parse(BUILDFILE, "Buildfile"), tmp), None, {"SOURCE_DATE_EPOCH": EPOCH, **environ})


def _outcome(project: Project) -> dict[str, object]:
    return {name: (image.tags, image.tag_decisions) for name, image in project.images.items()}


@pytest.mark.parametrize("environ", [{}, {"VERSION": "2.0.0-rc.1"}, {"VERSION": "3.0.0"}])
def test_the_memo_changes_no_image_s_tags_or_explanations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str],
) -> None:
    with_memo = _outcome(_project(tmp_path, environ))
    monkeypatch.setattr(tags.TagMemo, "key", lambda self, scheme, scope, affixes: None)
    assert _outcome(_project(tmp_path, environ)) == with_memo
    assert len(with_memo) == 10


def test_a_shared_scheme_is_worked_out_once_per_set_of_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str | None] = []
    real = tags._render_tags

    def counting(scheme, *args):  # type: ignore[no-untyped-def]
        rendered.append(scheme.name)
        return real(scheme, *args)

    monkeypatch.setattr(tags, "_render_tags", counting)
    project = _project(tmp_path, {})
    # shared: a and b read the same values; c and d have their own prefix or suffix.
    # personal reads {name}: each image its own. called calls match(): never kept.
    # i has its own list.
    assert sorted(map(str, rendered)) == sorted(
        ["shared"] * 3 + ["personal"] * 3 + ["called"] * 2 + ["None"]
    )
    assert project.images["a"].tags == project.images["b"].tags == ("1.2.3", "1.2", "x-edge")
    assert project.images["c"].tags == ("pre-1.2.3", "pre-1.2", "x-edge")
    assert project.images["e-slim"].tags == ("e-slim-1.2.3", "slim", "v1.2.3-slim")
    assert project.images["e-full"].tags == ("e-full-1.2.3", "v1.2.3-full")
