"""Platforms as OCI spells them: ``os/arch[/variant]``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

# Aliases that every OCI tool treats as the same platform.
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}


class PlatformError(ValueError):
    pass


@dataclass(frozen=True, order=True, slots=True)
class Platform:
    os: str
    arch: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(_PART.match(p) for p in parts):
            raise PlatformError(
                f"'{text}' is not a platform: expected os/arch or os/arch/variant, "
                "e.g. linux/amd64 or linux/arm/v7"
            )
        os_, arch = parts[0], _ARCH_ALIASES.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else None
        return cls(os_, arch, variant)

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}/{self.variant}" if self.variant else f"{self.os}/{self.arch}"

    def normalized(self) -> Platform:
        """arm64/v8 is plain arm64 to every registry index (and kaniko rejects the variant)."""
        if self.arch == "arm64" and self.variant == "v8":
            return Platform(self.os, self.arch)
        return self

    @property
    def slug(self) -> str:
        """``linux-arm-v7``: safe inside a tag or a file name."""
        return str(self).replace("/", "-")

    def template_values(self) -> dict[str, str]:
        values = {"os": self.os, "arch": self.arch, "variant": self.variant or ""}
        values["slug"] = self.slug
        return values
