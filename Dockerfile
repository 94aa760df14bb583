# zgw-identificatie: the web service (gunicorn via `zgw-identificatie serve`); the same image runs
# `zgw-identificatie worker` and `zgw-identificatie purge` with another command. Configuration comes
# from ZGWID_* environment variables or a TOML file at ZGWID_CONFIG (docs/OPERATIONS.md).
#
#   docker build -t zgw-identificatie .
#   docker run --read-only --tmpfs /tmp -p 8000:8000 --env-file production.env zgw-identificatie
#   docker run --read-only --tmpfs /tmp --env-file production.env zgw-identificatie zgw-identificatie worker
#   compose.yaml starts service, worker, PostgreSQL and Redis together.
#
# Reproducible: every Python package comes from requirements.lock (pip constraints, the versions the
# test suite ran with), every npm package from package-lock.json. The base images are build arguments
# so a platform team can pin them by digest (--build-arg PYTHON_IMAGE=python:3.11-slim-trixie@sha256:…)
# or use its own mirror. scripts/container_smoke.sh builds and checks the image.

ARG PYTHON_IMAGE=python:3.11-slim-trixie
ARG NODE_IMAGE=node:24-trixie-slim

# --- 1. front-end assets: NL Design System CSS and fonts from npm (package-lock.json pins them) ---------
FROM ${NODE_IMAGE} AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- 2. the virtual environment: the project and its locked dependencies, from wheels only -----------
# No compilers and no -dev packages: PyPI has self-contained wheels of xmlsec, lxml and psycopg-binary
# for x86_64 and aarch64 glibc (they link libxmlsec1/libxml2 statically), and --only-binary makes the
# build fail loudly instead of compiling when a wheel is missing. (On another platform add, for
# Debian trixie: gcc pkg-config libxml2-dev libxmlsec1-dev libxslt1-dev here and libxmlsec1t64-openssl
# in the runtime stage, and drop --only-binary.)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.lock pyproject.toml README.md babel.cfg ./
COPY src ./src
COPY scripts/build_assets.py ./scripts/build_assets.py
COPY --from=assets /build/node_modules ./node_modules
# build_assets.py copies the vendor CSS/fonts into web/static/vendor and compiles the .po catalogues to
# .mo; both are package data, so they must exist before the project is installed (not editable).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: -c requirements.lock babel \
 && /opt/venv/bin/python scripts/build_assets.py \
 && /opt/venv/bin/pip install --only-binary=:all: -c requirements.lock . \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && /opt/venv/bin/python -c "import xmlsec, lxml.etree, onelogin.saml2.utils, psycopg, reportlab, gunicorn; print('native modules OK, gunicorn', gunicorn.__version__)"

# --- 3. runtime: the base image, one user, the virtual environment; nothing else -----------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    ZGWID_ENV=production ZGWID_INSTANCE_PATH=/var/lib/zgw-identificatie
# Numeric uid/gid 10001 (Kubernetes' runAsNonRoot accepts a numeric USER without runAsUser). The home
# directory does not exist; nothing needs one (gunicorn runs with --no-control-socket).
RUN groupadd --system --gid 10001 zgwid \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin zgwid \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/zgw-identificatie
# One layer with exactly the installed packages: no wheel files, no pip cache, no compilers.
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/zgw-identificatie
EXPOSE 8000
# Read-only root (docker run --read-only, Kubernetes readOnlyRootFilesystem): mount a tmpfs at /tmp.
# gunicorn keeps its worker heartbeat files there and `zgw-identificatie worker` its own heartbeat.
# Nothing else is written: production uses PostgreSQL, and the instance folder only holds the demo's
# SQLite file and simulator keys.
#
# `zgw-identificatie health` looks at PID 1: for `serve` (gunicorn) it asks /health/live on the port of
# its --bind, for `worker` it checks that the worker loop ran within the last 300 s, for one-shot
# commands (purge, check-config) there is nothing to check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["zgw-identificatie", "health"]
# exec form: gunicorn (exec'd by `serve`) is PID 1 and gets SIGTERM for a graceful stop.
CMD ["zgw-identificatie", "serve", "--bind", "0.0.0.0:8000", "--workers", "2"]
