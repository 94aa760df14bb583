# zgw-identificatie: the web service (gunicorn via `zgw-identificatie serve`); the same image runs
# `zgw-identificatie worker` and `zgw-identificatie purge` with another command. Configuration comes
# from ZGWID_* environment variables or a TOML file at ZGWID_CONFIG (docs/OPERATIONS.md).
#
#   docker build -t zgw-identificatie .
#   docker run -p 8000:8000 --env-file production.env zgw-identificatie
#   docker run --env-file production.env zgw-identificatie zgw-identificatie worker

# --- 1. front-end assets: NL Design System CSS and fonts from npm (package-lock.json pins them) ---------
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- 2. Python wheels: the project and every dependency --------------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers and headers only matter where PyPI has no wheel (xmlsec/lxml on an unusual platform); on
# x86_64 and aarch64 glibc the xmlsec, lxml and psycopg-binary wheels are self-contained.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libxml2-dev libxmlsec1-dev libxslt1-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md babel.cfg ./
COPY src ./src
COPY scripts/build_assets.py ./scripts/build_assets.py
COPY --from=assets /build/node_modules ./node_modules
# build_assets.py copies the vendor CSS/fonts into web/static/vendor and compiles the .po catalogues to .mo;
# both are package data, so they must exist before the wheel is built.
RUN pip install babel \
 && python scripts/build_assets.py \
 && pip wheel --wheel-dir /wheels .

# --- 3. runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZGWID_ENV=production ZGWID_INSTANCE_PATH=/var/lib/zgw-identificatie
# libxmlsec1-openssl (pulls libxmlsec1, libxml2, libxslt1.1): needed only when pip had to compile xmlsec
# from source in the build stage; the PyPI wheels link them statically. curl is not installed: the
# HEALTHCHECK uses Python.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxmlsec1-openssl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 zgwid \
 && useradd --system --uid 10001 --gid zgwid --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin zgwid \
 && install -d -o zgwid -g zgwid -m 0750 /var/lib/zgw-identificatie
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels zgw-identificatie \
 && rm -rf /wheels \
 && python -c "import xmlsec, lxml.etree, onelogin.saml2.utils, psycopg, reportlab; print('native modules OK')"
USER zgwid:zgwid
WORKDIR /var/lib/zgw-identificatie
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status == 200 else 1)"]
# exec form: gunicorn (exec'd by `serve`) is PID 1 and gets SIGTERM for a graceful stop.
CMD ["zgw-identificatie", "serve", "--bind", "0.0.0.0:8000", "--workers", "2"]
