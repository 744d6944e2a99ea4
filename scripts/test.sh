#!/usr/bin/env bash
# Runs every berth test on this machine, installing what the tests need first (Debian packages, PostgreSQL).
# Usage: scripts/test.sh            (the README's test command; CI calls it through .ci/run)
#        BERTH_TEST_SKIP_POSTGRES=1 scripts/test.sh   (SQLite only, when no PostgreSQL can be had)
#        BERTH_TEST_SKIP_REAL_CLIENTS=1 scripts/test.sh   (no skopeo/podman/oras-py: those tests skip)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- PostgreSQL: the second metadata backend every storage test runs against --------------------------------
pg_admin_url() {
  # A server on 127.0.0.1:5432 that lets the postgres user in (trust), or one we give a role with a password.
  if psql "postgres://postgres@127.0.0.1:5432/postgres" -tAc 'select 1' >/dev/null 2>&1; then
    echo "postgres://postgres@127.0.0.1:5432/postgres"; return 0
  fi
  if psql "postgres://berth:berth@127.0.0.1:5432/postgres" -tAc 'select 1' >/dev/null 2>&1; then
    echo "postgres://berth:berth@127.0.0.1:5432/postgres"; return 0
  fi
  return 1
}

ensure_postgres() {
  if [ "${BERTH_TEST_SKIP_POSTGRES:-}" = 1 ]; then log "skipping PostgreSQL (BERTH_TEST_SKIP_POSTGRES=1)"; return 0; fi
  if [ -n "${BERTH_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  command -v psql >/dev/null || apt_install postgresql-client
  if url=$(pg_admin_url); then export BERTH_TEST_POSTGRES_URL=$url; return 0; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
  fi
  local version; version=$(ls /etc/postgresql | sort -V | tail -1)
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
    for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  if ! url=$(pg_admin_url); then
    # Password authentication on TCP (Debian's default): create a role for the tests through the socket.
    as_root su postgres -c "psql -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'berth') THEN CREATE ROLE berth LOGIN CREATEDB PASSWORD 'berth'; END IF; END \\\$\\\$;\""
    url=$(pg_admin_url) || { echo "PostgreSQL is running but refuses the test role" >&2; exit 1; }
  fi
  export BERTH_TEST_POSTGRES_URL=$url
}

# --- Real registry clients: skopeo and podman (Debian), oras-py (PyPI) in a venv under the target dir ----------
# The tests in crates/server/tests/it/real_clients.rs fail instead of skipping when BERTH_REQUIRE_REAL_CLIENTS=1.
ensure_real_clients() {
  if [ "${BERTH_TEST_SKIP_REAL_CLIENTS:-}" = 1 ]; then
    log "skipping the real-client tests (BERTH_TEST_SKIP_REAL_CLIENTS=1)"; return 0
  fi
  apt_install skopeo podman
  local venv; venv="$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)/real-clients-venv"
  # oras-py for the registry tests; azure-identity (ManagedIdentityCredential) for the workload endpoint tests.
  if ! "$venv/bin/python" -c 'import oras.client, azure.identity' >/dev/null 2>&1; then
    log "installing oras-py (PyPI oras) and azure-identity into $venv"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check oras azure-identity
  fi
  export BERTH_TEST_PYTHON="$venv/bin/python"
  export BERTH_REQUIRE_REAL_CLIENTS=1
}

ensure_postgres
log "PostgreSQL for tests: ${BERTH_TEST_POSTGRES_URL:-skipped}"
ensure_real_clients
log "real clients: $(skopeo --version 2>/dev/null || echo 'no skopeo'), $(podman --version 2>/dev/null || echo 'no podman'), oras-py $("${BERTH_TEST_PYTHON:-python3}" -c 'import oras.version; print(oras.version.__version__)' 2>/dev/null || echo missing)"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

mkdir -p target
log "cargo test"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}

# Scratch PostgreSQL databases made by this run are dropped at the end (best effort).
if [ -n "${BERTH_TEST_POSTGRES_URL:-}" ]; then
  psql "$BERTH_TEST_POSTGRES_URL" -tAc "select datname from pg_database where datname like 'berth_test_%'" 2>/dev/null |
    while read -r db; do psql "$BERTH_TEST_POSTGRES_URL" -qc "drop database if exists $db" >/dev/null 2>&1 || true; done
fi

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo "${passed} passed, ${failed} failed"
exit "$status"
