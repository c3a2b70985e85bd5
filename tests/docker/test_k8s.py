"""docker/k8s against the Kubernetes JSON schemas (kubernetes-validate, offline) and each other."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from connectors.widget.connector import SOCKET_PATH
from tests.docker.conftest import K8S, k8s_documents, k8s_object

VERSION = "1.37.0"
DEPLOYMENTS = ["helpline-app", "helpline-model"]


@pytest.mark.parametrize(
    "document",
    [doc for _, doc in k8s_documents()],
    ids=[f"{doc['kind']}/{doc['metadata']['name']}" for _, doc in k8s_documents()],
)
def test_every_object_follows_the_strict_kubernetes_schema(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, VERSION, strict=True)


def test_kustomization_lists_every_file_and_the_image_of_every_container() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    (image,) = kustomization["images"]
    for name in DEPLOYMENTS:
        for container in k8s_object("Deployment", name)["spec"]["template"]["spec"]["containers"]:
            assert container["image"] == image["name"]


def pod(name: str) -> dict[str, Any]:
    return k8s_object("Deployment", name)["spec"]["template"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployments_are_probed_on_healthz_non_root_and_requested(name: str) -> None:
    spec = pod(name)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    (container,) = spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    command = container["command"]
    assert ports["http"] == int(command[command.index("--port") + 1])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config = mounts["/app/helpline.yml"]
    assert command[command.index("--config") + 1] == config["mountPath"]
    volume = next(v for v in spec["volumes"] if v["name"] == config["name"])
    configmap = k8s_object("ConfigMap", volume["configMap"]["name"])
    assert config["subPath"] in configmap["data"]  # type: ignore[operator]
    for source in container["envFrom"]:
        k8s_object("Secret", source["secretRef"]["name"])
    if container["securityContext"].get("readOnlyRootFilesystem"):
        # The NLU classifier is trained at startup and cached under models.cache_dir/nlu.
        assert "/app/var/models/nlu" in mounts


def test_the_model_worker_runs_serve_model_where_the_app_config_points() -> None:
    (container,) = pod("helpline-model")["spec"]["containers"]
    assert "serve-model" in container["command"]
    service = k8s_object("Service", "helpline-model")
    (port,) = service["spec"]["ports"]  # type: ignore[index]
    (app,) = pod("helpline-app")["spec"]["containers"]
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["HELPLINE_LOCAL_MODEL_URL"] == f"http://helpline-model:{port['port']}"
    assert {e["name"]: e["value"] for e in container["env"]}["HELPLINE_LOCAL_MODEL_URL"] == ""


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_services_select_the_pods_of_their_deployment(name: str) -> None:
    service = k8s_object("Service", name)
    labels = pod(name)["metadata"]["labels"]
    selector = service["spec"]["selector"]  # type: ignore[index]
    assert selector.items() <= labels.items()
    container_ports = {p["name"] for p in pod(name)["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports  # type: ignore[index]


def test_the_ingress_routes_the_sockets_with_long_timeouts() -> None:
    ingress = k8s_object("Ingress", "helpline")
    annotations = ingress["metadata"]["annotations"]  # type: ignore[index]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 600
    paths = {
        p["path"]: p["backend"]["service"]
        for rule in ingress["spec"]["rules"]  # type: ignore[index]
        for p in rule["http"]["paths"]
    }
    assert {SOCKET_PATH, "/console/api/ws", "/"} <= set(paths)
    for backend in paths.values():
        k8s_object("Service", backend["name"])


def test_the_hpa_and_pdb_cover_the_app_and_keep_it_up() -> None:
    hpa = k8s_object("HorizontalPodAutoscaler", "helpline-app")
    target = hpa["spec"]["scaleTargetRef"]  # type: ignore[index]
    assert (target["kind"], target["name"]) == ("Deployment", "helpline-app")
    assert hpa["spec"]["minReplicas"] >= 2  # type: ignore[index]
    pdb = k8s_object("PodDisruptionBudget", "helpline-app")
    selector = pdb["spec"]["selector"]["matchLabels"]  # type: ignore[index]
    assert selector.items() <= pod("helpline-app")["metadata"]["labels"].items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # type: ignore[index]
