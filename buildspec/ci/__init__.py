"""``buildspec ci gitlab|github``: the build graph as the CI system's own pipeline.

``model`` turns the graph into jobs (shared), ``gitlab`` and ``github`` render them,
``limits`` keeps a pipeline inside each system's limits, ``command`` is the CLI
glue and ``options`` the command-line options (light: imported by cli.py).
"""
