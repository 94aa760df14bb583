#!/usr/bin/env bash
# Container smoke test: build the image, run it in production mode as a platform team would (read-only
# root, tmpfs /tmp, a PostgreSQL beside it), and check
#   1. /health/live answers 200 and the image's HEALTHCHECK (`zgw-identificatie health`) says healthy,
#   2. the processes run as uid 10001 / gid 10001,
#   3. no gunicorn control-socket error and no traceback in the log,
#   4. `zgw-identificatie worker` from the same image is reported healthy by the same HEALTHCHECK,
#   5. SIGTERM (docker stop) ends both with exit code 0,
#   6. check-config with an unreachable zaaksysteem exits 3 with a message, not a traceback.
#
#   scripts/container_smoke.sh                       # docker, or podman when there is no docker
#   CONTAINER_ENGINE=podman scripts/container_smoke.sh
#   PYTHON_IMAGE=… NODE_IMAGE=… POSTGRES_IMAGE=… scripts/container_smoke.sh   # stand-ins or mirrors
#
# Without a reachable container engine it prints "skipped: …" and exits 0; when a base image cannot be
# pulled likewise, unless CI=true (then exit 1). Any failed check: exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_IMAGE=${PYTHON_IMAGE:-python:3.11-slim-trixie}
NODE_IMAGE=${NODE_IMAGE:-node:24-trixie-slim}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-postgres:17-trixie}
TAG=${SMOKE_TAG:-zgw-identificatie:smoke}
RUN_ID=zgwid-smoke-$$
NET=$RUN_ID-net

skip() {
  echo "skipped: $*"
  if [[ "${CI:-}" == "true" && "${1:-}" != "no container engine"* ]]; then exit 1; fi
  exit 0
}
fail() { echo "FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

engine=${CONTAINER_ENGINE:-}
if [[ -z "$engine" ]]; then
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then engine=$candidate; break; fi
  done
fi
if [[ -z "$engine" ]] || ! "$engine" info >/dev/null 2>&1; then
  skip "no container engine (no docker or podman that answers 'info'; a docker client without a daemon does not count)"
fi

for image in "$PYTHON_IMAGE" "$NODE_IMAGE" "$POSTGRES_IMAGE"; do
  "$engine" image inspect "$image" >/dev/null 2>&1 || "$engine" pull -q "$image" >/dev/null 2>&1 \
    || skip "base image $image is not available (no registry access?); pass a stand-in with PYTHON_IMAGE/NODE_IMAGE/POSTGRES_IMAGE"
done

work=$(mktemp -d)
cleanup() {
  "$engine" rm -f "$RUN_ID-web" "$RUN_ID-worker" "$RUN_ID-db" >/dev/null 2>&1 || true
  "$engine" network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build ($engine, $PYTHON_IMAGE, $NODE_IMAGE)"
"$engine" build --build-arg PYTHON_IMAGE="$PYTHON_IMAGE" --build-arg NODE_IMAGE="$NODE_IMAGE" -t "$TAG" . \
  || fail "the image did not build"
size=$("$engine" image inspect --format '{{.Size}}' "$TAG")
echo "image size: $((size / 1024 / 1024)) MB"
"$engine" run --rm --entrypoint sh "$TAG" -c 'test ! -e /wheels && ! command -v gcc' || fail "build leftovers in the image"
ok "no /wheels, no compiler"

echo "== PostgreSQL and the production settings"
"$engine" network create "$NET" >/dev/null
pgpass=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$engine" run -d --name "$RUN_ID-db" --network "$NET" --network-alias db \
  -e POSTGRES_USER=zgwid -e POSTGRES_DB=zgwid -e POSTGRES_PASSWORD="$pgpass" "$POSTGRES_IMAGE" >/dev/null
for _ in $(seq 60); do "$engine" exec "$RUN_ID-db" pg_isready -q -U zgwid -d zgwid && break; sleep 1; done
"$engine" exec "$RUN_ID-db" pg_isready -q -U zgwid -d zgwid || fail "PostgreSQL did not start"

# A throw-away key pair stands in for the PKIoverheid certificate and for DigiD's signing certificate.
mkdir -p "$work/secrets"
"$engine" run --rm --entrypoint python -v "$work/secrets:/out" --user "$(id -u):$(id -g)" "$TAG" -c '
import datetime as d
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zgwid-smoke")])
now = d.datetime.now(d.UTC)
cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(
    x509.random_serial_number()).not_valid_before(now).not_valid_after(now + d.timedelta(days=1)).sign(key, hashes.SHA256())
open("/out/sp.key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
open("/out/sp.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
' || fail "could not make the test key pair"
chmod 0644 "$work/secrets/sp.key" "$work/secrets/sp.crt"  # readable by uid 10001 (a throw-away key)
enc_key=$("$engine" run --rm "$TAG" zgw-identificatie generate-key)
rand() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
cat >"$work/env" <<EOF
ZGWID_BASE_URL=https://zgwid-smoke.example
ZGWID_DATABASE_URL=postgresql+psycopg://zgwid:$pgpass@db:5432/zgwid
ZGWID_SECRET_KEY=$(rand)
ZGWID_CODE_KEY=$(rand)
ZGWID_AUDIT_HASH_KEY=$(rand)
ZGWID_ENCRYPTION_KEYS=$enc_key
ZGWID_WORKER_IN_PROCESS=false
ZGWID_DIGID_SIMULATOR=false
ZGWID_DIGID_IDP_ENTITY_ID=https://digid.invalid/saml/idp/metadata
ZGWID_DIGID_IDP_SSO_URL=https://digid.invalid/saml/idp/request_authentication
ZGWID_DIGID_IDP_ARS_URL=https://digid.invalid/saml/idp/resolve_artifact
ZGWID_DIGID_SP_KEY_FILE=/run/secrets/sp.key
ZGWID_DIGID_SP_CERT_FILE=/run/secrets/sp.crt
ZGWID_DIGID_IDP_CERT_FILES=/run/secrets/sp.crt
ZGWID_SEAL_KEY_FILE=/run/secrets/sp.key
ZGWID_SEAL_CERT_FILE=/run/secrets/sp.crt
ZGWID_ZGW_SANDBOX=false
ZGWID_ZGW_ZAKEN_URL=http://zaaksysteem.invalid/zaken/api/v1/
ZGWID_ZGW_DOCUMENTEN_URL=http://zaaksysteem.invalid/documenten/api/v1/
ZGWID_ZGW_CATALOGI_URL=http://zaaksysteem.invalid/catalogi/api/v1/
ZGWID_ZGW_SECRET=$(rand)
ZGWID_ZGW_TIMEOUT=2
EOF
common=(--network "$NET" --env-file "$work/env" --read-only --tmpfs /tmp -v "$work/secrets:/run/secrets:ro")

echo "== serve on port 8080 (not the default 8000: the health check must follow --bind)"
"$engine" run -d --name "$RUN_ID-web" "${common[@]}" -p 127.0.0.1::8080 "$TAG" \
  zgw-identificatie serve --bind 0.0.0.0:8080 --workers 2 >/dev/null
live=""
for _ in $(seq 60); do
  live=$("$engine" exec "$RUN_ID-web" python -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/health/live', timeout=3).status)" 2>/dev/null || true)
  [[ "$live" == "200" ]] && break
  [[ "$("$engine" inspect --format '{{.State.Running}}' "$RUN_ID-web")" == "true" ]] || break
  sleep 1
done
[[ "$live" == "200" ]] || { "$engine" logs "$RUN_ID-web" >&2; fail "/health/live did not answer 200"; }
ok "/health/live 200"
"$engine" exec "$RUN_ID-web" zgw-identificatie health || fail "the HEALTHCHECK command says unhealthy for serve --bind :8080"
ok "HEALTHCHECK follows --bind"
ids=$("$engine" exec "$RUN_ID-web" sh -c 'id -u; id -g' | tr '\n' ' ')
[[ "$ids" == "10001 10001 " ]] || fail "runs as uid/gid $ids, not 10001 10001"
ok "uid 10001, gid 10001"

echo "== worker from the same image"
"$engine" run -d --name "$RUN_ID-worker" "${common[@]}" "$TAG" zgw-identificatie worker >/dev/null
healthy=""
for _ in $(seq 30); do
  "$engine" exec "$RUN_ID-worker" zgw-identificatie health >/dev/null 2>&1 && { healthy=yes; break; }
  sleep 1
done
[[ -n "$healthy" ]] || { "$engine" logs "$RUN_ID-worker" >&2; fail "the worker is not reported healthy"; }
ok "worker healthy (heartbeat)"

echo "== SIGTERM"
for name in web worker; do
  "$engine" stop -t 30 "$RUN_ID-$name" >/dev/null
  code=$("$engine" inspect --format '{{.State.ExitCode}}' "$RUN_ID-$name")
  [[ "$code" == "0" ]] || { "$engine" logs "$RUN_ID-$name" >&2; fail "$name exited with $code after SIGTERM"; }
  if "$engine" logs "$RUN_ID-$name" 2>&1 | grep -E "Control server error|Traceback|Permission denied"; then
    fail "$name logged an error (above)"
  fi
  ok "$name stopped cleanly on SIGTERM"
done

echo "== check-config with the zaaksysteem unreachable"
set +e
out=$("$engine" run --rm "${common[@]}" "$TAG" zgw-identificatie check-config 2>&1)
code=$?
set -e
[[ "$code" == "3" && "$out" == *"zaaksysteem unreachable"* && "$out" != *Traceback* ]] \
  || fail "check-config: exit $code: $out"
ok "check-config: exit 3, $(echo "$out" | head -n 1)"

echo "container smoke test passed"
