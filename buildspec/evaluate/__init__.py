"""Stage 3: model -> project (see project.py). The package's public names."""

from buildspec.evaluate.project import _functions, evaluate, host
from buildspec.evaluate.targets import resolve_target
from buildspec.evaluate.types import BACKENDS, OCI, Image, Pin, Project, TagDecision, TagLister
from buildspec.syntax import NameRef

__all__ = ["BACKENDS", "OCI", "Image", "NameRef", "Pin", "Project", "TagDecision", "TagLister", "_functions",
           "evaluate", "host", "resolve_target"]
