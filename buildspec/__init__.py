"""buildspec: declarative multi-platform container image builds.

The pipeline, one module per stage:
Buildfile text -> syntax -> model -> evaluate -> graph -> plan -> executor -> registry (manifests) -> reporting.
"""

__version__ = "0.1.0"
