"""The Docker sandbox: the grading image (image), the container per submission (runner)."""

# What a grading container is made of (its hardening) is in container.

from __future__ import annotations

from grader.sandbox.docker.container import (
    CAPABILITIES,
    OWNER_LABEL,
    ROLE,
    ROLE_LABEL,
    DockerLimits,
)
from grader.sandbox.docker.image import (
    IMAGE,
    build_image,
    connect,
    image_state,
    image_status,
    require_image,
    source_hash,
)
from grader.sandbox.docker.runner import DockerSandbox

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
