"""Make semantics: skip the builds whose inputs have not changed, and say why the others build.

``key`` computes a build's input key, ``context`` and ``dockerfile`` read what it
depends on, ``records`` keeps keys in the registry, ``check`` decides.
"""
