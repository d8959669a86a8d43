"""values.schema.json rejects each class of mistake, and says where it is."""

from __future__ import annotations

import pytest
from helm_python.errors import HelmValuesError

from tests.support.chart import render_chart


@pytest.mark.parametrize(
    ("assignment", "path", "detail"),
    [
        pytest.param("replicaCount=2", "at ''", "'replicaCount'", id="unknown-top-level-key"),
        pytest.param(
            "lancamentos.replicaCont=2", "at '/lancamentos'", "'replicaCont'", id="nested-typo"
        ),
        pytest.param(
            "lancamentos.replicaCount=two",
            "at '/lancamentos/replicaCount'",
            "want integer",
            id="string-for-int",
        ),
        pytest.param(
            "cluster.writePath=1", "at '/cluster/writePath'", "want boolean", id="int-for-bool"
        ),
        pytest.param(
            "image.pullPolicy=Sometimes", "at '/image/pullPolicy'", "one of", id="bad-enum"
        ),
        pytest.param("image.tag=latest", "at '/image/tag'", "'not' failed", id="latest-tag"),
        pytest.param("image.digest=sha256:abc", "at '/image/digest'", "pattern", id="bad-digest"),
        pytest.param(
            "secrets.lancamentosDatabase.password=hunter2",
            "at '/secrets/lancamentosDatabase'",
            "'password'",
            id="credential-in-values",
        ),
        pytest.param(
            "mesh.upstreams.consolidado.outlierDetection.consecutive5xxError=5",
            "at '/mesh/upstreams/consolidado/outlierDetection'",
            "'consecutive5xxError'",
            id="mesh-typo",
        ),
        pytest.param(
            "mesh.upstreams.consolidado.timeout=5",
            "at '/mesh/upstreams/consolidado/timeout'",
            "",
            id="mesh-duration-without-unit",
        ),
        pytest.param(
            "networkPolicy.postgres.peers[0].ipBlok.cidr=10.0.0.0/8",
            "at '/networkPolicy/postgres/peers/0'",
            "'ipBlok'",
            id="network-policy-peer-typo",
        ),
        pytest.param(
            "cnpg.backup.schedule=0 2 * * *",
            "at '/cnpg/backup/schedule'",
            "pattern",
            id="cnpg-five-field-cron",
        ),
        pytest.param(
            "migrations.backoffLimit=-1",
            "at '/migrations/backoffLimit'",
            "minimum",
            id="migrations-negative",
        ),
        pytest.param(
            "dispatcher.affinity=near", "at '/dispatcher/affinity'", "want object", id="affinity"
        ),
        pytest.param(
            "fiscal.trustedCAs.secretNam=icp-brasil",
            "at '/fiscal/trustedCAs'",
            "'secretNam'",
            id="fiscal-typo",
        ),
        pytest.param(
            "fiscal.requireTrustedSignature=yes",
            "at '/fiscal/requireTrustedSignature'",
            "want boolean",
            id="fiscal-string-for-bool",
        ),
        pytest.param(
            "fiscal.trustedCAs.secretName=ICP_Brasil",
            "at '/fiscal/trustedCAs/secretName'",
            "",
            id="fiscal-secret-name",
        ),
        pytest.param(
            "secrets.fiscalDatabase.password=hunter2",
            "at '/secrets/fiscalDatabase'",
            "'password'",
            id="fiscal-credential-in-values",
        ),
        pytest.param(
            "fiscal.autoscaling.maxReplica=4",
            "at '/fiscal/autoscaling'",
            "'maxReplica'",
            id="fiscal-autoscaling-typo",
        ),
    ],
)
def test_mistake_is_rejected_at_its_path(assignment: str, path: str, detail: str) -> None:
    with pytest.raises(HelmValuesError) as caught:
        render_chart(sets=[assignment])
    message = str(caught.value)
    assert path in message, message
    assert detail in message, message


@pytest.mark.parametrize(
    "assignment",
    [
        "image.digest=sha256:" + "0" * 64,
        "networkPolicy.postgres.peers[0].ipBlock.cidr=10.0.0.0/8",
        "cnpg.backup.schedule=0 30 1 * * 0",
        "lancamentos.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution=null",
        "fiscal.trustedCAs.secretName=icp-brasil",
        "databaseConnections.serverMaxConnections.fiscal=200",
    ],
)
def test_correct_values_pass(assignment: str) -> None:
    render_chart(sets=[assignment])
