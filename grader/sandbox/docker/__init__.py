"""The Docker sandbox: the grading image (image), the container per submission (runner)."""

from __future__ import annotations

from grader.sandbox.docker.image import (
    IMAGE,
    build_image,
    connect,
    image_state,
    image_status,
    require_image,
    source_hash,
)
from grader.sandbox.docker.runner import (
    CAPABILITIES,
    OWNER_LABEL,
    ROLE,
    ROLE_LABEL,
    DockerLimits,
    DockerSandbox,
)

__all__ = [
    "CAPABILITIES",
    "IMAGE",
    "OWNER_LABEL",
    "ROLE",
    "ROLE_LABEL",
    "DockerLimits",
    "DockerSandbox",
    "build_image",
    "connect",
    "image_state",
    "image_status",
    "require_image",
    "source_hash",
]
