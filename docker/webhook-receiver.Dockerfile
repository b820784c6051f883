# syntax=docker/dockerfile:1
# Webhook receiver: aiohttp under gunicorn (`ingest webhook-receiver`), port 8080.
# Build from the repository root:  docker build -f docker/webhook-receiver.Dockerfile -t ingestion-patterns/webhook-receiver .
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
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /home/app
# Numeric user so Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:8080/health\", timeout=4)"]
# No ENTRYPOINT: Kubernetes sets args (K8sRunLauncher runs `dagster api execute_run ...` as args).
CMD ["ingest", "webhook-receiver", "--host", "0.0.0.0", "--port", "8080"]
