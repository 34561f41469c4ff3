"""Session fixtures for the kind smoke suite: tools, cluster, stack, and the blueprint's facts.

Each test needs the `cluster` fixture. When a tool is missing or broken, or no
cluster answers, every test skips with a reason naming what is missing. With
SHIPWAY_SMOKE_PROVISIONED=1 the workflow has already created the cluster and
run `pulumi up`; otherwise the session creates (or reuses) the kind cluster
and runs `pulumi up` on the dev stack against a local file backend.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from smoke_support import (
    BLUEPRINT,
    CLUSTER_NAME,
    CONTEXT,
    PROVISIONED,
    Cluster,
    create_or_reuse_kind_cluster,
    kubeconfig_path,
    pulumi_up,
    tool_problem,
    tools_needed,
)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """The smoke cluster, reachable, with the dev stack up; skips naming what is missing."""
    problems = [problem for tool in tools_needed() if (problem := tool_problem(tool))]
    if problems:
        pytest.skip("kind smoke suite needs " + "; ".join(problems))
    context = CONTEXT
    kubeconfig = kubeconfig_path()
    if not PROVISIONED:
        tmp = tmp_path_factory.mktemp("smoke")
        create_or_reuse_kind_cluster(tmp)
        pulumi_up(tmp, context)
    probe = subprocess.run(
        ["kubectl", "--context", context, "--request-timeout=10s", "cluster-info"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        message = next((line for line in probe.stderr.splitlines() if line.strip()), "no output")
        pytest.skip(f"kind smoke suite needs a cluster: kind cluster {CLUSTER_NAME} (context {context}) "
                    f"is not reachable: {message.strip()}")
    return Cluster(name=CLUSTER_NAME, context=context, kubeconfig=kubeconfig)


@pytest.fixture(scope="session")
def blueprint(cluster: Cluster) -> Any:
    """The blueprint the dev stack was deployed from."""
    from shipway.spec import load_blueprint

    return load_blueprint(BLUEPRINT)


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> Iterator[Any]:
    """A kubernetes client for the smoke cluster's context."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(cluster.kubeconfig), context=cluster.context)
    yield client
    client.close()


@pytest.fixture(scope="session")
def core(api_client: Any) -> Any:
    """The CoreV1 API of the smoke cluster."""
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client: Any) -> Any:
    """The custom-objects API of the smoke cluster."""
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


@pytest.fixture
def scratch_namespace(core: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for one test's objects, deleted afterwards."""
    from kubernetes import client

    name = f"smoke-{request.node.name.replace('_', '-')[:40].strip('-')}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"pod-security.kubernetes.io/enforce": "restricted"})))
    yield name
    core.delete_namespace(name)
