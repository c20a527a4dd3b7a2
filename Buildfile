# buildspec's own image, described with its own language.
registry     = env("REGISTRY", "127.0.0.1:5000/buildspec")
python_image = env("PYTHON_IMAGE", "python:3.11-slim")
version      = env("VERSION", "0.1.0")
platforms    = [linux/amd64, linux/arm64]

tags release {
    "{version}"
    "{version.major}.{version.minor}"  if version.stable
    "latest"                           if version.stable and git.is_default_branch
    "{git.branch|slug}"                if git.branch and not git.is_default_branch
    "sha-{git.short_sha}"              if git.short_sha
}

image buildspec {
    context = "."
    args { PYTHON_IMAGE = "{python_image}" }
    labels { "org.opencontainers.image.description" = "Declarative multi-platform container image builds" }
    tags    = release
}
