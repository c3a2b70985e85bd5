"""A small lint of docker/Dockerfile, parsed with BuildKit's own parser, plus hadolint."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from typing import Any

import dockerfile
import pytest

from tests.docker.conftest import DOCKER, ROOT, tool

DOCKERFILE = DOCKER / "Dockerfile"


def commands() -> tuple[Any, ...]:
    return tuple(dockerfile.parse_file(str(DOCKERFILE)))


def stages() -> list[tuple[str, str, list[Any]]]:
    """(base, name, instructions) of each stage, in order."""
    result: list[tuple[str, str, list[Any]]] = []
    for command in commands():
        if command.cmd == "FROM":
            base, _as, name = command.value
            assert _as.upper() == "AS", f"line {command.start_line}: every stage is named"
            result.append((base, name, []))
        elif result:
            result[-1][2].append(command)
    return result


def stage(name: str) -> list[Any]:
    return next(body for _, stage_name, body in stages() if stage_name == name)


def run_text(name: str) -> str:
    return "\n".join(" ".join(c.value) for c in stage(name) if c.cmd == "RUN")


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat) for p in prefixes for pat in patterns)


def test_the_stages_are_build_models_runtime_in_that_order() -> None:
    found = stages()
    assert [name for _, name, _ in found] == ["build", "models", "runtime"]
    bases = {name: base for base, name, _ in found}
    assert bases["models"] == "build"
    # The runtime starts from the bare Python image, not from the build stage.
    assert bases["runtime"] == bases["build"] == "${PYTHON_IMAGE}"


def test_every_copied_file_exists_and_is_not_ignored() -> None:
    names = [name for _, name, _ in stages()]
    for index, (_, _name, body) in enumerate(stages()):
        for command in body:
            if command.cmd not in ("COPY", "ADD"):
                continue
            source_stage = next(
                (f.split("=", 1)[1] for f in command.flags if f.startswith("--from=")), None
            )
            if source_stage is not None:
                assert source_stage in names[:index], (
                    f"line {command.start_line}: --from={source_stage} is not an earlier stage"
                )
                continue
            for source in command.value[:-1]:
                assert (ROOT / source).exists(), f"line {command.start_line}: {source} is missing"
                assert not ignored(source), f"line {command.start_line}: {source} is dockerignored"


def test_the_models_stage_runs_the_makefile_models_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^models:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    wanted = [
        line.strip().lstrip("@").replace("$(BIN)/", "").replace("$(MODELS)", "var/models")
        for line in recipe.group(1).splitlines()
    ]
    steps = [step.strip() for step in re.split(r"&&|\n", run_text("models"))]
    for command in wanted:
        assert any(step.startswith(command) for step in steps), f"models stage lacks: {command}"
    # The genai builder's venv is made where HELPLINE_GENAI_PYTHON says.
    workdir = next(c.value[0] for c in stage("build") if c.cmd == "WORKDIR")
    values = next(c.value for c in stage("models") if c.cmd == "ENV")
    env = dict(zip(values[::2], values[1::2], strict=True))
    assert env["HELPLINE_GENAI_PYTHON"] == f"{workdir}/.venv-genai/bin/python"
    assert "setup-bench-peers.sh genai" in run_text("models")


def test_the_build_stage_installs_as_make_setup_does() -> None:
    text = run_text("build")
    assert "pip install -r requirements.txt" in text
    assert "pip install --no-deps -r requirements-nodeps.txt" in text
    assert "pip install --no-deps ." in text
    # torch from the CPU index at the version requirements.txt pins.
    assert "download.pytorch.org/whl/cpu" in text
    assert "grep -E '^torch==' requirements.txt" in text
    assert re.search(r"^torch==\S+$", (ROOT / "requirements.txt").read_text(), re.M)


def test_the_runtime_runs_as_a_user_and_serves_the_exposed_port() -> None:
    body = {c.cmd: c for c in stage("runtime")}
    user = body["USER"].value[0].split(":")[0]
    assert user not in ("root", "0")
    cmd = body["CMD"]
    assert cmd.json, "CMD in exec form, so signals reach helpline"
    args = list(cmd.value)
    assert args[0] == "helpline"
    assert "run" in args
    port = args[args.index("--port") + 1]
    assert body["EXPOSE"].value == (port,)
    health = body["HEALTHCHECK"]
    assert health.value[0] == "CMD"
    copied = {c.value[-1] for c in stage("runtime") if c.cmd == "COPY"}
    script = health.value[-1]
    assert script.removeprefix("/app/") in copied, f"{script} is not copied into the image"
    config = args[args.index("--config") + 1]
    assert config.removeprefix("/app/") in copied


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", [".venv", "var", "tests", ".git"])
def test_the_dockerignore_keeps_local_state_out(path: str) -> None:
    assert ignored(path)
