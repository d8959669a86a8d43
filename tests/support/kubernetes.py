"""Kubernetes validity of rendered objects: kubernetes-validate's strict schemas for
built-in kinds, and CloudNativePG's field lists (no PyPI package ships its CRDs)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed

from mesh.chart import Object

# The Kubernetes release whose OpenAPI schemas the objects must satisfy.
KUBERNETES_VERSION = "1.33.0"
# Chart.yaml's kubeVersion floor: the oldest release the chart must also be valid for
# (HPA ContainerResource metrics are GA from 1.30).
OLDEST_KUBERNETES_VERSION = "1.30.0"

BUILT_IN_API_VERSIONS = frozenset(
    {"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}
)
CNPG_API_VERSION = "postgresql.cnpg.io/v1"
BARMAN_API_VERSION = "barmancloud.cnpg.io/v1"
SECRET_KEY = frozenset({"name", "key"})

# The API references: the keys allowed at each path the chart writes. A list's items are
# checked against the list's own path.
CNPG_FIELDS: dict[tuple[str, ...], frozenset[str]] = {
    ("Cluster", "spec"): frozenset(
        {
            "instances",
            "postgresql",
            "imageName",
            "inheritedMetadata",
            "affinity",
            "storage",
            "resources",
            "topologySpreadConstraints",
            "bootstrap",
            "plugins",
            "replica",
            "externalClusters",
        }
    ),
    # parameters: PostgreSQL's own settings, free-form.
    ("Cluster", "spec", "postgresql"): frozenset({"synchronous", "parameters"}),
    ("Cluster", "spec", "postgresql", "synchronous"): frozenset(
        {"method", "number", "dataDurability"}
    ),
    ("Cluster", "spec", "inheritedMetadata"): frozenset({"labels", "annotations"}),
    ("Cluster", "spec", "affinity"): frozenset(
        {"enablePodAntiAffinity", "topologyKey", "podAntiAffinityType"}
    ),
    ("Cluster", "spec", "storage"): frozenset({"size", "storageClass"}),
    ("Cluster", "spec", "bootstrap"): frozenset({"initdb", "recovery"}),
    ("Cluster", "spec", "bootstrap", "initdb"): frozenset({"database", "owner"}),
    ("Cluster", "spec", "bootstrap", "recovery"): frozenset(
        {"source", "backup", "volumeSnapshots", "recoveryTarget", "database", "owner", "secret"}
    ),
    # ReplicaClusterConfiguration (the distributed topology).
    ("Cluster", "spec", "replica"): frozenset(
        {"self", "primary", "enabled", "source", "promotionToken", "minApplyDelay"}
    ),
    ("Cluster", "spec", "externalClusters"): frozenset(
        {
            "name",
            "connectionParameters",
            "sslCert",
            "sslKey",
            "sslRootCert",
            "password",
            "barmanObjectStore",
            "plugin",
        }
    ),
    ("Cluster", "spec", "externalClusters", "plugin"): frozenset({"name", "enabled", "parameters"}),
    # PluginConfiguration; its parameters are the plugin's own, free-form strings.
    ("Cluster", "spec", "plugins"): frozenset({"name", "enabled", "isWALArchiver", "parameters"}),
    ("ScheduledBackup", "spec"): frozenset(
        {
            "schedule",
            "immediate",
            "method",
            "pluginConfiguration",
            "backupOwnerReference",
            "cluster",
        }
    ),
    ("ScheduledBackup", "spec", "pluginConfiguration"): frozenset({"name", "parameters"}),
    ("ScheduledBackup", "spec", "cluster"): frozenset({"name"}),
    ("ObjectStore", "spec"): frozenset(
        {"configuration", "retentionPolicy", "instanceSidecarConfiguration"}
    ),
    ("ObjectStore", "spec", "configuration"): frozenset(
        {"destinationPath", "endpointURL", "endpointCA", "s3Credentials", "wal", "data"}
    ),
    ("ObjectStore", "spec", "configuration", "s3Credentials"): frozenset(
        {"accessKeyId", "secretAccessKey", "region", "sessionToken", "inheritFromIAMRole"}
    ),
    ("ObjectStore", "spec", "configuration", "s3Credentials", "accessKeyId"): SECRET_KEY,
    ("ObjectStore", "spec", "configuration", "s3Credentials", "secretAccessKey"): SECRET_KEY,
    ("ObjectStore", "spec", "configuration", "wal"): frozenset(
        {"compression", "encryption", "maxParallel"}
    ),
    ("ObjectStore", "spec", "configuration", "data"): frozenset(
        {"compression", "encryption", "jobs", "immediateCheckpoint"}
    ),
    ("ObjectStore", "spec", "instanceSidecarConfiguration"): frozenset(
        {"resources", "env", "logLevel", "retentionPolicyIntervalSeconds"}
    ),
    ("ObjectStore", "spec", "instanceSidecarConfiguration", "resources"): frozenset(
        {"requests", "limits"}
    ),
}
CNPG_REQUIRED: dict[str, frozenset[str]] = {
    "Cluster": frozenset({"instances", "storage"}),
    "ScheduledBackup": frozenset({"schedule", "cluster"}),
    "ObjectStore": frozenset({"configuration"}),
}
CNPG_ENUMS: dict[tuple[str, ...], frozenset[str]] = {
    ("Cluster", "spec", "postgresql", "synchronous", "method"): frozenset({"any", "first"}),
    ("Cluster", "spec", "postgresql", "synchronous", "dataDurability"): frozenset(
        {"required", "preferred"}
    ),
    ("Cluster", "spec", "affinity", "podAntiAffinityType"): frozenset({"preferred", "required"}),
    ("ScheduledBackup", "spec", "method"): frozenset(
        {"barmanObjectStore", "volumeSnapshot", "plugin"}
    ),
    ("ObjectStore", "spec", "configuration", "wal", "compression"): frozenset(
        {"bzip2", "gzip", "lz4", "snappy", "xz", "zstd"}
    ),
    ("ObjectStore", "spec", "configuration", "data", "compression"): frozenset(
        {"bzip2", "gzip", "snappy"}
    ),
}
RETENTION_POLICY = re.compile(r"^[1-9][0-9]*[dwm]$")


def kubernetes_errors(objects: Iterable[Object], version: str = KUBERNETES_VERSION) -> list[str]:
    """Why each object is invalid; raises for a kind this test knows no schema for."""
    errors: list[str] = []
    for obj in objects:
        api_version = obj["apiVersion"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if api_version in BUILT_IN_API_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
        elif api_version in (CNPG_API_VERSION, BARMAN_API_VERSION):
            errors.extend(f"{where}: {problem}" for problem in cnpg_errors(obj))
        elif not api_version.split("/")[0].endswith(".istio.io"):
            raise AssertionError(f"{where}: no schema known for {api_version}")
    return errors


def cnpg_errors(obj: Object) -> list[str]:
    kind = obj["kind"]
    missing = CNPG_REQUIRED[kind] - obj["spec"].keys()
    errors = [f"spec: missing {sorted(missing)}"] if missing else []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        allowed = CNPG_FIELDS.get((kind, *path))
        if allowed is None:
            return  # free-form below here (labels, annotations, plugin parameters)
        for key, value in node.items():
            where = (*path, key)
            if key not in allowed:
                errors.append(f"{'.'.join(path)}: unknown field {key!r}")
            elif isinstance(value, Mapping):
                walk(value, where)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Mapping):
                        walk(item, where)
            elif (kind, *where) in CNPG_ENUMS and value not in CNPG_ENUMS[(kind, *where)]:
                errors.append(f"{'.'.join(where)}: {value!r} is not one of the allowed values")

    walk(obj["spec"], ("spec",))
    if kind == "ScheduledBackup" and len(obj["spec"]["schedule"].split()) != 6:
        errors.append("spec.schedule: CNPG wants six cron fields, seconds first")
    if kind == "ObjectStore":
        if not obj["spec"]["configuration"].get("destinationPath"):
            errors.append("spec.configuration: missing destinationPath")
        if not RETENTION_POLICY.match(obj["spec"].get("retentionPolicy", "1d")):
            errors.append("spec.retentionPolicy: not a number of days, weeks or months")
    return errors
