"""Talking to registries: references, credentials, a small OCI distribution client,
and the assembly of per-platform images into one image index.

    reference.py   parse and validate image references (the distribution grammar)
    auth.py        Docker credentials (via docker-py), Basic and Bearer token auth
    client.py      RegistryClient: manifests, blobs, tags; retries, TLS, insecure rule
    index.py       assemble_index / publish_index: checked OCI index or Docker list
"""

from buildspec.registry.client import Manifest, RegistryClient
from buildspec.registry.index import IndexEntry, PublishedIndex, assemble_index, publish_index
from buildspec.registry.reference import (
    InvalidReference,
    Reference,
    validate_repository,
    validate_tag,
)

__all__ = [
    "IndexEntry",
    "InvalidReference",
    "Manifest",
    "PublishedIndex",
    "Reference",
    "RegistryClient",
    "assemble_index",
    "publish_index",
    "validate_repository",
    "validate_tag",
]
