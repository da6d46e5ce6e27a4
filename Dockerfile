# syntax=docker/dockerfile:1
#
# One image for every framefleet role: worker, watcher, producer (`extract`), migrations
# (`catalog init`). The role is the command: `docker run framefleet worker --concurrency 1`.
#
#   docker build -t framefleet .                   # the runtime image (the last stage)
#   docker build -t framefleet-flower --target flower .   # + Flower, for the compose profile
#
# No system FFmpeg: the PyAV wheels bundle it, as the Pillow wheels bundle libjpeg/libwebp and the
# psycopg[binary] wheels bundle libpq, so the runtime stage installs no Debian packages at all.
# No secrets are baked in: URLs and passwords come from the environment (see docker-compose.yml).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with framefleet and its dependencies, nothing else ---------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the code does not reinstall them.
# --only-binary: PyAV, NumPy and Pillow must come from wheels; never compile FFmpeg bindings here.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --only-binary=av,numpy,pillow -r /tmp/requirements.txt

# Then the package itself (a regular, non-editable install: the runtime needs no source tree).
COPY README.md ./
COPY framefleet ./framefleet
RUN pip install --no-deps . \
 && framefleet --version

# --- base: the runtime, shared by the final image and the flower stage --------------------------
FROM ${PYTHON_IMAGE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# A fixed numeric UID/GID (10001) so bind-mounted output can be chowned to it on the host, and so
# Kubernetes' runAsNonRoot can verify it. /data/recordings and /data/out are created here, owned by
# that user, so a fresh named volume mounted there starts out writable by it.
RUN groupadd --system --gid 10001 framefleet \
 && useradd --system --uid 10001 --gid framefleet --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin framefleet \
 && mkdir -p /app/configs /data/recordings /data/out \
 && chown framefleet:framefleet /app /data/recordings /data/out

COPY --from=build /opt/venv /opt/venv
COPY configs/ /app/configs/

WORKDIR /app
USER 10001:10001

# No image-level HEALTHCHECK: the roles differ (a one-shot migration, a watcher, a worker), and the
# services it depends on (Redis, PostgreSQL) carry their own healthchecks in docker-compose.yml.
ENTRYPOINT ["framefleet"]
CMD ["--help"]

# --- flower: the runtime plus Flower, only for `docker compose --profile flower` -----------------
FROM base AS flower
USER root
RUN pip install "flower>=2.0,<3"
USER 10001:10001
EXPOSE 5555
ENTRYPOINT ["celery", "-A", "framefleet.worker"]
CMD ["flower", "--port=5555"]

# --- runtime: the default target (last stage), identical to base ---------------------------------
FROM base AS runtime
