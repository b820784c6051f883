# syntax=docker/dockerfile:1
# Dagster user code: the gRPC code server (port 4000) and, with another command, every run pod (K8sRunLauncher).
# Build from the repository root:  docker build -f docker/user-code.Dockerfile -t ingestion-patterns/user-code .
# Every image installs the same locked wheel set (uv.lock); they differ only in what they run.

# Pinned slim base (exact patch release); override with --build-arg BASE_IMAGE=... (e.g. a digest or a mirror).
ARG BASE_IMAGE=python:3.12.12-slim-trixie

# checkov:skip=CKV_DOCKER_7: FROM uses ARG BASE_IMAGE, whose default above is a pinned patch release
FROM ${BASE_IMAGE} AS builder
# uv comes from PyPI (pinned), so the build needs nothing but the base image and the package index.
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-default-groups --no-install-project
# Then the project itself, installed as a regular (non-editable) wheel: the source tree is not shipped.
COPY app/ app/
RUN uv sync --frozen --no-dev --no-default-groups --no-editable

FROM ${BASE_IMAGE} AS runtime
# No compiler, no uv, no source: only the interpreter from the base and the prebuilt virtualenv.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /opt/dagster/dagster_home /data \
    && chown app:app /opt/dagster/dagster_home /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /home/app
# Numeric user so Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 10001:10001
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["dagster", "api", "grpc-health-check", "--port", "4000"]
# No ENTRYPOINT: Kubernetes sets args (K8sRunLauncher runs `dagster api execute_run ...` as args).
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", "--module-name", "ingestion_patterns.definitions"]
