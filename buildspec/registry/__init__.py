"""Talking to registries: references, credentials, a small OCI distribution client,
and the assembly of per-platform images into one image index.

    reference.py   parse and validate image references (the distribution grammar)
    auth.py        Docker credentials (via docker-py), Basic and Bearer token auth
    client.py      RegistryClient: manifests, blobs, tags; retries, TLS, insecure rule
    transport.py   the HTTP side of it: retry policy, certs.d TLS, error texts
    blobs.py       copy an image (manifest and blobs) between repositories, by digest
    index.py       assemble_index / publish_index: checked OCI index or Docker list


Nothing is re-exported here: `plan` needs only reference.py, and client.py and
auth.py pull in requests, urllib3 and docker-py.
"""
