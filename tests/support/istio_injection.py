"""What Istio's sidecar injector adds to a pod, as far as Pod Security is concerned:
the init container and the proxy's securityContext, from the injection template of the
istiod chart (files/injection-template.yaml, 1.2x; the `pilot.cni.enabled` branches)."""

from __future__ import annotations

import copy
from typing import Any

PROXY_UID = 1337
# What the istiod chart's global.proxy.image resolves to, pinned (any tag would do here).
PROXY_IMAGE = "docker.io/istio/proxyv2:1.27.3"
# The annotations the injector reads the proxy's resources from.
RESOURCE_ANNOTATIONS = {
    ("requests", "cpu"): "sidecar.istio.io/proxyCPU",
    ("requests", "memory"): "sidecar.istio.io/proxyMemory",
    ("limits", "cpu"): "sidecar.istio.io/proxyCPULimit",
    ("limits", "memory"): "sidecar.istio.io/proxyMemoryLimit",
}


def _resources(annotations: dict[str, str]) -> dict[str, dict[str, str]]:
    """The template's `resources`: from the pod's annotations, else none of its own."""
    out: dict[str, dict[str, str]] = {}
    for (bound, resource), key in RESOURCE_ANNOTATIONS.items():
        if key in annotations:
            out.setdefault(bound, {})[resource] = annotations[key]
    return out


def _init_container(cni: bool, resources: dict[str, Any]) -> dict[str, Any]:
    if cni:  # istio-validation: checks the CNI plugin's rules, needs no privilege
        context: dict[str, Any] = {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsGroup": PROXY_UID,
            "runAsUser": PROXY_UID,
            "runAsNonRoot": True,
        }
        return {
            "name": "istio-validation",
            "image": PROXY_IMAGE,
            "resources": resources,
            "securityContext": context,
        }
    # istio-init: writes the pod's iptables rules itself, as root with NET_ADMIN/NET_RAW.
    context = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        "readOnlyRootFilesystem": False,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "runAsUser": 0,
    }
    return {
        "name": "istio-init",
        "image": PROXY_IMAGE,
        "resources": resources,
        "securityContext": context,
    }


def _proxy(resources: dict[str, Any]) -> dict[str, Any]:
    context = {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsGroup": PROXY_UID,
        "runAsNonRoot": True,
        "runAsUser": PROXY_UID,
    }
    # A native sidecar (Kubernetes >= 1.29): an init container that keeps running.
    return {
        "name": "istio-proxy",
        "image": PROXY_IMAGE,
        "restartPolicy": "Always",
        "resources": resources,
        "securityContext": context,
    }


def injected(template: dict[str, Any], *, cni: bool) -> dict[str, Any]:
    """A pod template's spec as the API server admits it once the injector has run."""
    resources = _resources(template["metadata"].get("annotations", {}))
    out: dict[str, Any] = copy.deepcopy(template["spec"])
    out["initContainers"] = [
        _init_container(cni, resources),
        _proxy(resources),
        *out.get("initContainers", []),
    ]
    return out
