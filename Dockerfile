# syntax=docker/dockerfile:1
# The image of one Tandem service, chosen by build arguments; build from the repository root:
#   docker build --build-arg SERVICE=router --build-arg PORT=8002 -t tandem/router:dev .
# Services and ports: api-gateway 8000, ingest 8001, router 8002, sla-monitor 8003, alerts 8004.

ARG SERVICE=api-gateway
ARG PORT=8000

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: resolve the locked dependencies, then install the service -----------------
# Builder and runtime use the same base, so the virtualenv's links to the interpreter hold.
FROM python:3.11-slim-bookworm AS builder
ARG SERVICE
COPY --from=uv /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src

# Dependencies first, from the lockfile and the workspace's pyproject files only (all
# members, so uv sees the whole workspace the lock was made for): this layer is rebuilt when
# dependencies change, not on every source edit.
COPY uv.lock pyproject.toml ./
COPY shared/pyproject.toml shared/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/router/pyproject.toml services/router/
COPY services/sla-monitor/pyproject.toml services/sla-monitor/
COPY services/alerts/pyproject.toml services/alerts/
COPY services/api-gateway/pyproject.toml services/api-gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "tandem-${SERVICE}"

# Then the sources of this service and of the shared library, installed as wheels (not
# editable) so the runtime stage needs nothing but the virtualenv.
COPY shared/src shared/src
COPY services/${SERVICE}/src services/${SERVICE}/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "tandem-${SERVICE}" \
 && rm -f /app/.venv/bin/tandem-local \
 && ln -s "tandem-${SERVICE}" /app/.venv/bin/tandem-service
# (the laptop stack's launcher has no place in an image; tandem-service names this image's entry)

# ---- runtime: the virtualenv on a clean slim base, as an unprivileged user ---------------
FROM python:3.11-slim-bookworm AS runtime
ARG SERVICE
ARG PORT
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tandem-${SERVICE}" \
      org.opencontainers.image.description="Tandem ${SERVICE} service." \
      org.opencontainers.image.version="${VERSION}"

RUN groupadd --system --gid 10001 tandem \
 && useradd --system --uid 10001 --gid tandem --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin tandem

COPY --from=builder --chown=root:root /app/.venv /app/.venv

# Bytecode is compiled at build time; the root filesystem may be read-only at run time.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TANDEM_ENV=prod \
    TANDEM_HTTP__HOST=0.0.0.0 \
    TANDEM_HTTP__PORT=${PORT} \
    TANDEM_CONFIG_DIR=/etc/tandem

USER 10001:10001
WORKDIR /app
EXPOSE ${PORT}

# No curl in slim images: python's urllib raises (exit 1) on an error status or no answer.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['TANDEM_HTTP__PORT']}/healthz\", timeout=4)"]

ENTRYPOINT ["tandem-service"]
CMD ["serve"]
