"""A real Docker engine and docker-compose projects of framefleet, for tests and benchmarks.

What it takes on a CI machine without a registry (issue 8): Debian's ``docker`` client (a newer
client elsewhere on PATH may refuse the 20.10 engine's API), Debian's ``docker-compose`` 1.29 with
the classic builder, an engine (``dockerd --storage-driver=overlay2``, started here when none
answers and this process is root), and stand-ins for the official base images
(``standins/build.sh``, a no-op once built).

Nothing is mocked: `Compose` runs ``docker-compose -p PROJECT -f docker-compose.yml -f OVERRIDE``
and ``docker`` as subprocesses. Errors say what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKER_API_VERSION = "1.41"
"""The Debian engine's (20.10) API: a newer client must speak it."""

T = TypeVar("T")


class DockerUnavailable(Exception):
    """Raised when this machine cannot run the containers; the message says why and what to do."""


def wait_for(
    condition: Callable[[], T | None], *, timeout: float, interval: float = 0.2, what: str
) -> T:
    """Poll ``condition`` until it returns something truthy; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def docker_client() -> str:
    """Debian's docker client when installed (it matches Debian's engine), else the one on PATH."""
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise DockerUnavailable("no docker client: apt-get install docker.io")
    return found


def compose_client() -> str:
    """Debian's docker-compose (1.29): the one the compose file is validated and run with."""
    found = shutil.which("docker-compose")
    if found is None:
        raise DockerUnavailable("no docker-compose: apt-get install docker-compose")
    return found


def docker_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for docker and docker-compose subprocesses.

    The classic builder (BuildKit would fetch its frontend from a registry), the engine's API
    version for any client, and /usr/bin first on PATH, because docker-compose 1.29 runs
    ``docker`` from PATH for ``exec`` and ``run``.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        DOCKER_BUILDKIT="0",
        COMPOSE_DOCKER_CLI_BUILD="0",
        DOCKER_API_VERSION=DOCKER_API_VERSION,
        PATH=os.pathsep.join(["/usr/bin", env.get("PATH", "")]),
    )
    return env


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run ``docker ARGS``; its stdout. A failure raises with docker's own message."""
    result = subprocess.run(
        [docker_client(), *args],
        env=docker_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def engine_answers() -> bool:
    try:
        result = subprocess.run(
            [docker_client(), "info", "--format", "{{.ServerVersion}}"],
            env=docker_env(),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


@dataclass
class Engine:
    """The Docker engine in use; ``process`` is set when this process started it."""

    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    start_seconds: float = 0.0

    def stop(self) -> None:
        """Stop the engine if it was started here (its containers are gone by then)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def ensure_engine(log_dir: Path) -> Engine:
    """An engine that answers: the running one, or ``dockerd --storage-driver=overlay2`` started
    here (as root), waited for by polling ``docker info``.

    Raises:
        DockerUnavailable: no client, or no engine and none can be started here.
    """
    docker_client()
    if engine_answers():
        return Engine()
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailable("no Docker engine answers and dockerd is not installed: "
                                "apt-get install docker.io")  # fmt: skip
    if os.geteuid() != 0:
        raise DockerUnavailable(
            "no Docker engine answers and only root can start one here: "
            "sudo dockerd --storage-driver=overlay2 &"
        )
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "dockerd.log"
    t0 = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [dockerd, "--storage-driver=overlay2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not in the test's process group: ^C does not kill it
        )
    engine = Engine(process, log)

    def up() -> bool:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise DockerUnavailable(f"dockerd exited with status {process.returncode}:\n{tail}")
        return engine_answers()

    try:
        wait_for(up, timeout=90, interval=0.25, what=f"dockerd to answer (log: {log})")
    except TimeoutError as e:
        engine.stop()
        raise DockerUnavailable(str(e)) from e
    engine.start_seconds = time.monotonic() - t0
    return engine


def ensure_standins(*, timeout: float = 900) -> float:
    """Build the base-image stand-ins that are missing (standins/build.sh); its wall seconds."""
    t0 = time.monotonic()
    result = subprocess.run(
        [str(STANDINS / "build.sh")],
        env=docker_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise DockerUnavailable(
            f"the base-image stand-ins could not be built (tests/deploy/standins/build.sh):\n"
            f"{result.stderr[-4000:]}"
        )
    return time.monotonic() - t0


@dataclass
class Compose:
    """One docker-compose project of this repository's compose file (plus an override)."""

    project: str
    env: dict[str, str]
    files: Sequence[Path] = (COMPOSE_FILE,)
    env_file: Path | None = None
    """Read instead of the repository's .env (an empty file: only ``env`` counts)."""
    outputs: list[str] = field(default_factory=list)
    """Everything compose commands printed, for the secrets check."""

    ALL_PROFILES = ("flower", "cli")

    def command(self, *args: str, profiles: Sequence[str] = ()) -> list[str]:
        options = [a for p in profiles for a in ("--profile", p)]
        options += [a for f in self.files for a in ("-f", str(f))]
        if self.env_file is not None:
            options += ["--env-file", str(self.env_file)]
        return [compose_client(), "-p", self.project, *options, *args]

    def run(
        self,
        *args: str,
        timeout: float = 300,
        check: bool = True,
        profiles: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """``docker-compose ARGS``; raises with its output when it fails and ``check``."""
        result = subprocess.run(
            self.command(*args, profiles=profiles),
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.outputs += [result.stdout, result.stderr]
        if check and result.returncode != 0:
            raise RuntimeError(
                f"docker-compose {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """``docker-compose ARGS`` in the background, stdout and stderr to ``log``."""
        with log.open("wb") as out:
            return subprocess.Popen(
                self.command(*args),
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    # --- containers of the project ----------------------------------------------------------

    def containers(self, service: str | None = None, *, all: bool = False) -> list[str]:
        """Ids of the project's containers (running ones unless ``all``), oldest first."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        out = docker("ps", "--no-trunc", "--quiet", *(["--all"] if all else []), *filters)
        return list(reversed(out.split()))

    def inspect(self, container: str) -> dict[str, Any]:
        data = json.loads(docker("inspect", container))
        assert isinstance(data, list) and data
        result: dict[str, Any] = data[0]
        return result

    def health(self, container: str) -> str:
        """``healthy``, ``starting``, ``unhealthy``, or the state when there is no healthcheck."""
        state = self.inspect(container)["State"]
        return str(state["Health"]["Status"] if "Health" in state else state["Status"])

    def hostname(self, container: str) -> str:
        return str(self.inspect(container)["Config"]["Hostname"])

    def ip(self, container: str) -> str:
        networks = self.inspect(container)["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"])

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks that still carry the project's label."""
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": docker("ps", "--all", "--quiet", "--filter", label).split(),
            "volumes": docker("volume", "ls", "--quiet", "--filter", label).split(),
            "networks": docker("network", "ls", "--quiet", "--filter", label).split(),
        }

    def logs(self) -> str:
        """Every service's log, profiles included."""
        return self.run("logs", "--no-color", timeout=120, profiles=self.ALL_PROFILES).stdout

    def down(self) -> None:
        """``down -v --remove-orphans`` with every profile, so nothing of the project remains."""
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300,
                 profiles=self.ALL_PROFILES)  # fmt: skip


def iter_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (no directories)."""
    return (p for p in sorted(root.rglob("*")) if p.is_file())
