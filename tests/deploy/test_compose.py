"""The deployment files: docker-compose.yml, the Dockerfile, .dockerignore and configs/*.toml.

No Docker engine is needed or used: the compose file is validated and normalised by
``docker-compose config`` (Debian's v1.29, or the v2 ``docker compose`` plugin), every command a
service runs is checked against our own CLI, and the Dockerfile is checked as text. Building the
image and running the containers is `test_containers.py` (marker ``docker``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest
from click.testing import CliRunner

from framefleet.cli import main
from framefleet.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CONFIGS = REPO / "configs"

PROFILES = ("flower", "cli")
CORE_SERVICES = {"redis", "postgres", "migrate", "watcher", "worker"}
OUR_SERVICES = {"migrate", "watcher", "worker", "cli", "flower"}
STANDINS = REPO / "tests" / "deploy" / "standins"

DOCKER_DATABASE_URL = "postgresql+psycopg://framefleet:framefleet@postgres:5432/framefleet"
DOCKER_BROKER_URL = "redis://redis:6379/0"


class RunCompose(Protocol):
    def __call__(
        self, *args: str, profiles: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]: ...


def _missing(reason: str) -> NoReturn:
    """Skip for lack of a tool, except in CI, where every tool must be installed."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure, not a skip")
    pytest.skip(reason)


# --- docker-compose --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_cmd() -> list[str]:
    """The compose client: Debian's docker-compose (v1.29) or the docker compose plugin (v2)."""
    if found := shutil.which("docker-compose"):
        return [found]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    _missing(
        "neither docker-compose nor the docker compose plugin is installed "
        "(apt-get install docker-compose)"
    )


@pytest.fixture(scope="module")
def run_compose(compose_cmd: list[str], tmp_path_factory: pytest.TempPathFactory) -> RunCompose:
    """Run ``<compose> -f docker-compose.yml [--profile P]... ARGS`` with a neutral environment.

    The host's FRAMEFLEET_*, POSTGRES_PASSWORD or a stray .env file must not change what is
    validated, so the environment is minimal and the env file an empty one.
    """
    empty_env_file = tmp_path_factory.mktemp("compose") / "empty.env"
    empty_env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}

    def run(*args: str, profiles: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        profile_args = [arg for p in profiles for arg in ("--profile", p)]
        command = [
            *compose_cmd,
            "-f",
            str(COMPOSE_FILE),
            "--env-file",
            str(empty_env_file),
            *profile_args,
            *args,
        ]
        return subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    return run


@pytest.fixture(scope="module")
def compose(run_compose: RunCompose) -> dict[str, Any]:
    """The compose file as compose itself resolves it (anchors merged, variables defaulted)."""
    try:
        import yaml
    except ImportError:
        _missing("PyYAML is not installed: pip install pyyaml (parses `docker-compose config`)")
    result = run_compose("config", profiles=PROFILES)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("profiles", [(), ("flower",), ("cli",), PROFILES], ids=repr)
def test_compose_file_is_valid(run_compose: RunCompose, profiles: tuple[str, ...]) -> None:
    result = run_compose("config", "-q", profiles=profiles)
    assert result.returncode == 0, result.stderr


def test_services_and_profiles(run_compose: RunCompose, compose: dict[str, Any]) -> None:
    """`up` starts the core services only; flower and cli need their profile (or `run`)."""
    listed = run_compose("config", "--services", profiles=PROFILES)
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == CORE_SERVICES | {"flower", "cli"}
    # v1.29 lists profiled services even without --profile, so read the profiles themselves.
    profiles = {name: s.get("profiles", []) for name, s in compose["services"].items()}
    assert profiles == {name: [] for name in CORE_SERVICES} | {"flower": ["flower"], "cli": ["cli"]}


def test_redis_keeps_an_append_only_file_and_is_health_checked(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly yes" in " ".join(_argv(redis["command"]))
    assert "redis-cli ping" in " ".join(_argv(redis["healthcheck"]["test"]))
    assert _volume_targets(redis)["/data"]["type"] == "volume"


def test_postgres_has_a_volume_and_is_health_checked(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(_argv(postgres["healthcheck"]["test"]))
    assert _volume_targets(postgres)["/var/lib/postgresql/data"]["type"] == "volume"
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "framefleet"  # the documented default


def test_startup_order_waits_for_health_and_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    watcher = services["watcher"]["depends_on"]
    assert watcher["migrate"]["condition"] == "service_completed_successfully"
    assert watcher["redis"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "postgres" not in services["worker"]["depends_on"], "workers never open the catalog"


def test_workers_can_be_scaled(compose: dict[str, Any]) -> None:
    """`--scale worker=N` needs no fixed names and no fixed host ports on the workers."""
    for name, service in compose["services"].items():
        assert "container_name" not in service, f"{name}: container_name prevents --scale"
    worker = compose["services"]["worker"]
    assert not worker.get("ports"), "workers must not publish host ports"
    assert _argv(worker["command"])[:3] == ["worker", "--concurrency", "1"]


def test_worker_stop_grace_period_covers_a_segment(compose: dict[str, Any]) -> None:
    """Long enough for a default segment to finish during Celery's warm shutdown."""
    from framefleet.jobs.limits import time_limits

    grace = _duration_seconds(compose["services"]["worker"]["stop_grace_period"])
    settings = load_settings(config_path=CONFIGS / "docker.toml", env={})
    hard = time_limits(settings.segment_seconds, factor=settings.time_limit_factor).hard_seconds
    assert grace >= hard, f"stop_grace_period {grace}s < the hard time limit {hard}s"


def test_worker_is_health_checked_by_its_heartbeat(compose: dict[str, Any]) -> None:
    """`framefleet health` reads the heartbeat file the worker's environment names."""
    worker = compose["services"]["worker"]
    test = _argv(worker["healthcheck"]["test"])
    assert test[0] == "CMD", "exec form: no shell in the way of the exit status"
    assert test[1] == "framefleet", test
    _assert_cli_accepts(test[2:])
    heartbeat = worker["environment"]["FRAMEFLEET_HEARTBEAT_FILE"]
    assert Path(heartbeat).is_relative_to("/tmp"), "writable by any UID, not in a shared volume"
    interval = _duration_seconds(worker["healthcheck"]["interval"])
    assert _duration_seconds(worker["healthcheck"]["timeout"]) <= interval


def test_workers_have_cpu_and_memory_limits(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    cpus = float(worker["cpus"])
    assert 0.5 <= cpus <= 2, f"cpus {cpus}: Docker refuses more than the host has (CI has 2)"
    memory = str(worker["mem_limit"]).lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)b?", memory)
    assert match, memory
    mib = float(match[1]) * {"": 2**-20, "k": 2**-10, "m": 1, "g": 1024}[match[2]]
    assert 512 <= mib <= 4096, f"mem_limit {memory}"


def test_data_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("watcher", "worker", "cli"):
        volumes = _volume_targets(services[name])
        assert volumes["/data/recordings"].get("read_only"), f"{name}: recordings must be :ro"
        assert not volumes["/data/out"].get("read_only"), f"{name}: /data/out must be writable"
    rules = _volume_targets(services["watcher"])["/app/configs/rules.toml"]
    assert Path(rules["source"]) == CONFIGS / "rules.toml"
    assert rules.get("read_only")


def test_framefleet_services_share_one_image_and_the_docker_settings(
    compose: dict[str, Any],
) -> None:
    images: set[str] = set()
    for name in OUR_SERVICES - {"flower"}:
        service = compose["services"][name]
        images.add(service["image"])
        assert service["build"]["target"] == "runtime"
        env = service["environment"]
        assert env["FRAMEFLEET_CONFIG"] == "/app/configs/docker.toml"
        # The environment repeats configs/docker.toml (so POSTGRES_PASSWORD reaches every
        # service); with the defaults the two must agree.
        settings = load_settings(config_path=CONFIGS / "docker.toml", env=env)
        assert settings.database_url == DOCKER_DATABASE_URL
        assert settings.broker_url == DOCKER_BROKER_URL
    assert len(images) == 1, f"one image for every role, got {sorted(images)}"
    assert compose["services"]["flower"]["build"]["target"] == "flower"


def test_build_targets_are_dockerfile_stages(compose: dict[str, Any]) -> None:
    stages = {stage.name for stage in _dockerfile_stages()}
    for name, service in compose["services"].items():
        if "build" in service:
            assert service["build"].get("target") in stages, name


def test_every_framefleet_service_is_covered(compose: dict[str, Any]) -> None:
    """test_service_command_is_ours is parametrized by hand; a new service must be added there."""
    built = {name for name, service in compose["services"].items() if "build" in service}
    assert built == OUR_SERVICES


@pytest.mark.parametrize("service_name", sorted(OUR_SERVICES - {"flower"}))
def test_service_command_is_ours(compose: dict[str, Any], service_name: str) -> None:
    """The command line a service runs parses with our CLI (checked with --help appended).

    Click parses the whole line before the eager --help exits, so a misspelt subcommand or
    option fails here, while values are not used.
    """
    argv = _service_argv(compose["services"][service_name])
    assert argv[0] == "framefleet", argv
    _assert_cli_accepts(argv[1:])


def test_flower_runs_our_celery_app(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``celery -A framefleet.worker``: the module must hold a Celery app that celery finds.

    The app is built from the environment on first access, as in the flower container.
    """
    from celery import Celery
    from celery.app.utils import find_app

    import framefleet.worker

    argv = _service_argv(compose["services"]["flower"])
    assert argv[:3] == ["celery", "-A", "framefleet.worker"], argv
    assert "flower" in argv[3:]
    for key in [k for k in os.environ if k.startswith("FRAMEFLEET_")]:
        monkeypatch.delenv(key)
    for key, value in compose["services"]["flower"]["environment"].items():
        monkeypatch.setenv(key, value)
    # The image copies configs/ to /app/configs/.
    assert os.environ["FRAMEFLEET_CONFIG"] == "/app/configs/docker.toml"
    monkeypatch.setenv("FRAMEFLEET_CONFIG", str(CONFIGS / "docker.toml"))
    monkeypatch.setattr(framefleet.worker, "_app", None)  # restored afterwards
    app = find_app(argv[2])
    assert isinstance(app, Celery)
    assert app.conf.broker_url == DOCKER_BROKER_URL


def _documented_commands() -> list[list[str]]:
    """Example command lines in the comments of the compose file and configs/local.toml."""
    text = COMPOSE_FILE.read_text() + (CONFIGS / "local.toml").read_text()
    pattern = r"^\s*#\s{2,}(?:docker compose run --rm cli|framefleet)\s+(.+)$"
    commands = []
    for line in re.findall(pattern, text, re.M):
        args = shlex.split(line.split("#")[0].split("&")[0])
        commands.append(args[2:] if args[:1] == ["--config"] else args)
    return commands


@pytest.mark.parametrize("args", _documented_commands(), ids=shlex.join)
def test_documented_command_is_ours(args: list[str]) -> None:
    _assert_cli_accepts(args)


# --- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "database_url", "broker_url"),
    [
        ("docker.toml", DOCKER_DATABASE_URL, DOCKER_BROKER_URL),
        ("local.toml", "sqlite:///framefleet.db", "redis://localhost:6379/0"),
    ],
)
def test_config_loads(name: str, database_url: str, broker_url: str) -> None:
    settings = load_settings(config_path=CONFIGS / name, env={})
    assert settings.database_url == database_url
    assert settings.broker_url == broker_url
    assert settings.effective_results_url == broker_url


@pytest.mark.parametrize("name", ["docker.toml", "local.toml"])
def test_config_documents_every_setting(name: str) -> None:
    """Each settings file names every key (set, or commented out at its default)."""
    text = (CONFIGS / name).read_text()
    keys = [f.name for f in fields(Settings)]
    missing = [key for key in keys if not re.search(rf"^(# )?{key} =", text, re.M)]
    assert not missing, f"configs/{name} does not mention {missing}"


def test_docker_config_runs_one_process_per_container() -> None:
    settings = load_settings(config_path=CONFIGS / "docker.toml", env={})
    assert settings.worker_concurrency == 1


def test_rules_example() -> None:
    rules = tomllib.loads((CONFIGS / "rules.toml").read_text())["rules"]
    assert rules
    names = [rule["name"] for rule in rules]
    assert len(set(names)) == len(names), "rule names are claim keys: they must be unique"
    known = {
        "name", "where", "out", "fps", "resize", "max_side", "width", "height", "format",
        "quality", "mode", "segment_seconds", "name_template",
    }  # fmt: skip
    for rule in rules:
        assert set(rule) <= known, f"{rule['name']}: unknown keys {set(rule) - known}"
        assert {"name", "where", "out"} <= set(rule)
        assert Path(rule["out"]).is_relative_to("/data/out"), "workers write under /data/out"
        assert sum(k in rule for k in ("resize", "max_side", "width", "height")) <= 1
        assert rule.get("format", "jpeg") in {"jpeg", "png", "webp"}
        assert rule.get("mode", "exact") in {"exact", "keyframes"}
        assert isinstance(rule.get("fps", "2"), str), "fps is a string so fractions stay exact"


# --- Dockerfile and .dockerignore ------------------------------------------------------------


@dataclass
class _Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _dockerfile_stages() -> list[_Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    stages: list[_Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value
        elif keyword == "FROM":
            base, _, name = re.sub(r"--platform=\S+\s+", "", rest).partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), base.strip())
            stages.append(_Stage(name=name.strip() or str(len(stages)), base=base))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


def _effective(stages: list[_Stage], stage: _Stage, keyword: str) -> str | None:
    """The last value of KEYWORD in STAGE, inherited through FROM <earlier stage>."""
    for kw, rest in reversed(stage.instructions):
        if kw == keyword:
            return rest
    parent = next((s for s in stages if s.name == stage.base), None)
    return _effective(stages, parent, keyword) if parent else None


def test_dockerfile_base_image_is_slim_python_311() -> None:
    stages = _dockerfile_stages()
    for stage in stages:
        if not any(s.name == stage.base for s in stages):
            assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base


@pytest.mark.parametrize("target", ["runtime", "flower", None], ids=str)
def test_dockerfile_runs_as_non_root(target: str | None) -> None:
    stages = _dockerfile_stages()
    stage = stages[-1] if target is None else next(s for s in stages if s.name == target)
    user = _effective(stages, stage, "USER")
    assert user is not None, f"{stage.name}: no USER, so it runs as root"
    assert user.split(":")[0] not in {"root", "0"}, f"{stage.name}: USER {user}"


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    stages = _dockerfile_stages()
    final = stages[-1]
    assert final.name == "runtime", "the default target (last stage) is the runtime image"
    assert json.loads(_effective(stages, final, "ENTRYPOINT") or "null") == ["framefleet"]
    assert isinstance(json.loads(_effective(stages, final, "CMD") or "null"), list)


def test_dockerfile_installs_from_wheels_without_cache_or_secrets() -> None:
    stages = _dockerfile_stages()
    build = next(s for s in stages if any("pip install" in r for k, r in s.instructions))
    env = " ".join(rest for kw, rest in build.instructions if kw == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in env
    installs = " ".join(rest for kw, rest in build.instructions if kw == "RUN")
    assert re.search(r"--only-binary[= ]\S*\bav\b", installs), "PyAV must come from a wheel"
    for stage in stages:
        if stage.name != build.name:
            runs = " ".join(rest for kw, rest in stage.instructions if kw == "RUN")
            assert "apt-get" not in runs, f"{stage.name}: PyAV bundles FFmpeg, no system packages"
    text = DOCKERFILE.read_text()
    assert not re.search(r"^\s*(ENV|ARG)\s+\S*(PASSWORD|SECRET|TOKEN)", text, re.M | re.I)


def test_dockerfile_needs_no_frontend_from_a_registry() -> None:
    """A ``# syntax=`` line makes BuildKit fetch that frontend: no build without a registry."""
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first), first


@pytest.mark.parametrize(
    "script", sorted(STANDINS.glob("**/*.sh")), ids=lambda p: str(p.relative_to(STANDINS))
)
def test_standin_scripts_parse(script: Path) -> None:
    """The stand-in recipes run only where Docker does; their syntax is checked everywhere."""
    shell = "sh" if script.read_text().startswith("#!/bin/sh") else "bash"
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


def test_dockerignore_keeps_the_context_to_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: exclude everything, then re-include"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for unwanted in (".git", ".venv", "bench", "tests"):
        assert unwanted not in allowed
    copied = set()
    for stage in _dockerfile_stages():
        for keyword, rest in stage.instructions:
            if keyword == "COPY" and not rest.startswith("--from"):
                copied.update(src.rstrip("/") for src in rest.split()[:-1])
    assert copied <= allowed, f"COPY sources excluded by .dockerignore: {copied - allowed}"


# --- helpers ---------------------------------------------------------------------------------


def _argv(value: str | list[Any] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _service_argv(service: dict[str, Any]) -> list[str]:
    """Entrypoint + command as the container would run them (image defaults from the Dockerfile)."""
    stages = _dockerfile_stages()
    stage = next(s for s in stages if s.name == service["build"]["target"])
    entrypoint = service.get("entrypoint") or json.loads(_effective(stages, stage, "ENTRYPOINT"))
    command = service.get("command") or json.loads(_effective(stages, stage, "CMD") or "[]")
    return _argv(entrypoint) + _argv(command)


def _assert_cli_accepts(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, f"framefleet {shlex.join(args)}: {result.output}"


def _volume_targets(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Volumes by container path, in the long form (v1.29 prints the short one)."""
    volumes: dict[str, dict[str, Any]] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            volume = {
                "type": "bind" if source.startswith(("/", ".")) else "volume",
                "source": source,
                "target": target,
                "read_only": "ro" in "".join(mode).split(","),
            }
        volumes[volume["target"]] = volume
    return volumes


def _duration_seconds(value: str | int) -> float:
    if isinstance(value, int):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", value)
    assert parts, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_helpers_read_compose_forms() -> None:
    """v1.29 prints short volume strings and "2m"; v2 prints long forms and "2m0s"."""
    assert _duration_seconds("2m") == _duration_seconds("2m0s") == 120
    short = _volume_targets({"volumes": ["/x:/data/recordings:ro", "out:/data/out:rw"]})
    assert short["/data/recordings"]["read_only"]
    assert short["/data/out"]["type"] == "volume"
    assert not short["/data/out"]["read_only"]
