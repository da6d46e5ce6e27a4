# One image for every framefleet role: worker, watcher, producer (`extract`), migrations
# (`catalog init`). The role is the command: `docker run framefleet worker --concurrency 1`.
#
#   docker build -t framefleet .                          # the runtime image (the last stage)
#   docker build -t framefleet-flower --target flower .   # + Flower, for the compose profile
#
# Builds with the classic builder and with BuildKit, and needs no registry beyond the base image
# (no `# syntax=` frontend line, no cache or secret mounts).
#
# No system FFmpeg: the PyAV wheels bundle it, as the Pillow wheels bundle libjpeg/libwebp and the
# psycopg[binary] wheels bundle libpq, so the runtime stage installs no Debian packages at all.
# No secrets are baked in: URLs and passwords come from the environment (see docker-compose.yml).
#
# It runs as 10001:10001 by default and as any other UID/GID (`docker run --user 4242:4343`,
# compose's FRAMEFLEET_UID/_GID): nothing at run time writes outside /data/out and /tmp, and
# nothing needs a passwd or group entry for the user. /data/out must be writable by that user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with framefleet and its dependencies, nothing else ---------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH

# binutils: `strip`, for the debug information in the dependencies' extension modules (below).
# Only this stage installs Debian packages; the runtime stages install none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/* \
 && python -m venv /opt/venv

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the code does not reinstall them.
# --only-binary: PyAV, NumPy and Pillow must come from wheels; never compile FFmpeg bindings here.
# EXTRAS: the optional dependencies to include, comma-separated (`--build-arg EXTRAS=` for none).
# parquet (pyarrow; the image is 542 MB with it, 379 MB without): `--export parquet` runs in
# whichever process completes a job, a worker or the watcher, so they must all write Parquet.
ARG EXTRAS=parquet
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e.strip() for e in os.environ['EXTRAS'].split(',') if e.strip()]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
        > /tmp/requirements.txt \
 && pip install --only-binary=av,numpy,pillow,pyarrow -r /tmp/requirements.txt

# Then the package itself (a regular, non-editable install: the runtime needs no source tree),
# and out with what the runtime never uses (~100 MB): the installers (nothing is installed at
# run time; the flower stage uses the base image's pip), the dependencies' own test suites, type
# stubs, Cython and C sources and headers, and the debug information of the extension modules
# (Cython builds keep it: 36 of their 61 MB). The libraries that auditwheel vendored (*.libs/,
# FFmpeg, OpenBLAS) ship stripped and are left alone. Bytecode stays: the runtime writes none
# (PYTHONDONTWRITEBYTECODE), so without it every process start would compile its imports.
COPY README.md ./
COPY framefleet ./framefleet
RUN pip install --no-deps . \
 && pip uninstall --yes --quiet pip setuptools \
 && site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && find "$site" -depth -type d -name tests -exec rm -rf {} + \
 && find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.c' \
        -o -name '*.h' \) -delete \
 && find /opt/venv -type f -name '*.so' ! -path '*.libs/*' -exec strip --strip-debug {} + \
 && rm -rf "$site/numpy/distutils" "$site/numpy/f2py" "$site/numpy/_core/include" \
        "$site/_distutils_hack" "$site/pkg_resources" /opt/venv/bin/f2py /opt/venv/bin/Activate.ps1 \
 && python -c "import av, numpy, PIL.Image, sqlalchemy, psycopg, celery, framefleet.cli" \
 && case ",$EXTRAS," in *,parquet,*) python -c "import pyarrow.parquet" ;; esac \
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

# No image-level HEALTHCHECK: the roles differ (a one-shot migration, a watcher, a worker).
# docker-compose.yml gives the worker one (`framefleet health`, its heartbeat file); Redis and
# PostgreSQL carry their own.
ENTRYPOINT ["framefleet"]
CMD ["--help"]

# --- flower: the runtime plus Flower, only for `docker compose --profile flower` -----------------
# The venv has no pip of its own: the base image's pip installs into it (`--python`).
FROM base AS flower
USER root
RUN pip --python /opt/venv/bin/python install --only-binary=:all: "flower>=2.0,<3"
USER 10001:10001
EXPOSE 5555
ENTRYPOINT ["celery", "-A", "framefleet.worker"]
CMD ["flower", "--port=5555"]

# --- runtime: the default target (last stage), identical to base ---------------------------------
FROM base AS runtime
