"""What the chart's pods must hold to: the restricted Pod Security Standard, resource
bounds, pinned images. Shared by the chart tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.chart import Rendered

WORKLOAD_KINDS = ("Deployment", "Job")


def pod_specs(rendered: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in WORKLOAD_KINDS:
        for obj in rendered.of_kind(kind):
            yield f"{kind}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]


def security_problems(pod: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    pod_context = pod.get("securityContext", {})
    if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile is not RuntimeDefault")
    for container in pod.get("initContainers", []) + pod["containers"]:
        name = container["name"]
        context = container.get("securityContext", {})
        # A container's own setting wins over the pod's.
        effective = {**pod_context, **context}
        if effective.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if effective.get("runAsUser", 0) == 0:
            problems.append(f"{name}: runs as uid 0 (or an unset uid)")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities are not all dropped")
        added = set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{name}: adds capabilities {sorted(added)}")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    problems.append(f"{name}: no {resource} {bound}")
        problems.extend(f"{name}: {p}" for p in image_problems(container["image"]))
    return problems


def image_problems(image: str) -> list[str]:
    if "@sha256:" in image:
        return []
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:  # no tag at all (a ":" there was a registry port)
        return [f"image {image!r} has no tag"]
    if tag == "latest":
        return [f"image {image!r} uses latest"]
    return []
