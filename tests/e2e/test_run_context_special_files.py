"""A build context holding symlinks that point out of it, a socket and a named pipe.

What docker buildx bake, kaniko and buildah users expect: the build succeeds, a
symlink is copied as a symlink (never followed out of the context: the file it
points at is in no layer), and a socket or a FIFO is left out or recreated as a
special file, never read (so nothing hangs). Checked for every backend, on the
pushed image.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import oci_reader
import pytest
from runner import run_cli
from test_contract_backends import backend_args, own_store

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

SECRET = b"outside-the-context-7f3a9c"
BUILDFILE = """\
registry = "@REGISTRY@"
platforms = [linux/amd64]
image app {
    context = "app"
    args { BUSYBOX = "@BUSYBOX@" }
    tags = ["1.0.0"]
}
"""
DOCKERFILE = """\
ARG BUSYBOX
FROM ${BUSYBOX}
COPY . /ctx/
"""


@pytest.mark.parametrize("backend", ["buildx", "buildah", "kaniko"])
def test_symlinks_out_of_the_context_sockets_and_fifos(
    backend: str, env: Env, unique_repo: str, tmp_path: Path, require_tools: Callable[..., None]
) -> None:
    require_tools("docker", "buildah", "skopeo")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(DOCKERFILE)
    (app / "kept.txt").write_text("kept\n")
    (app / "link-out").symlink_to("../secret.txt")
    (app / "link-abs").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(app / "fifo")
    buildfile = BUILDFILE.replace("@REGISTRY@", unique_repo).replace("@BUSYBOX@", env.base_image)
    (tmp_path / "Buildfile").write_text(buildfile)
    with ExitStack() as stack:
        server = stack.enter_context(socket.socket(socket.AF_UNIX))
        server.bind(str(app / "sock"))
        variables = dict(os.environ)
        if backend != "buildx":
            variables = stack.enter_context(own_store(tmp_path, variables))
        result = run_cli(["run", *backend_args(backend)], cwd=tmp_path, env=variables, timeout=300)
    assert result.code == 0, result
    ref = f"{unique_repo}/app:1.0.0"
    tree = oci_reader.tree(ref, platform="linux/amd64")
    assert tree["ctx/kept.txt"][0] == "file"
    assert tree["ctx/link-out"][:2] == ("symlink", "../secret.txt")
    assert tree["ctx/link-abs"][:2] == ("symlink", str(tmp_path / "secret.txt"))
    # a socket or a FIFO is left out or recreated as a special (or empty) file: never read as data
    for special in ("ctx/sock", "ctx/fifo"):
        kind, _, size = tree.get(special, ("other", "", 0))
        assert kind == "other" or (kind == "file" and size == 0), (special, tree.get(special))
    assert not oci_reader.layers_contain(ref, SECRET, platform="linux/amd64"), "a symlink was followed out"
