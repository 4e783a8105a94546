#!/usr/bin/env bash
# TOTP step-ups under HTTP load (docs/benchmarks.md, issue 18): the release server on loopback, users seeded
# through its admin API, wrk sending each (user, code) pair once; prints step-ups/s, p50/p99 latency and the
# server's CPU time per step-up (read from /proc).
#
#   scripts/load/totp-step-ups.sh                      # SQLite (a file), one server
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REPLICAS=2 scripts/load/totp-step-ups.sh
#
# Knobs: USERS (27000: three codes each), DURATION (10 s), CONNECTIONS (16, split over the replicas), THREADS
# (2 per wrk), REPLICAS (1; more need DATABASE_URL on PostgreSQL), PROFILE=1 (perf record of the first server
# during the load; the report goes to target/load-profile.txt, the samples to target/load-perf.data;
# PERF_CALL_GRAPH=dwarf for whole call stacks instead of frame pointers), BIN_DIR (a directory holding a `stepup-server`
# and a `load_seed` built earlier, say from another commit, to measure instead of building this checkout's).
# The run must end inside one 30 s TOTP step.
set -euo pipefail
cd "$(dirname "$0")/../.."

users="${USERS:-27000}"
duration="${DURATION:-10}"
connections="${CONNECTIONS:-16}"
threads="${THREADS:-2}"
replicas="${REPLICAS:-1}"
environment=dev
admin_token="load-admin-token"

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk (Debian package)"
    (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null
fi

if [ -n "${BIN_DIR:-}" ]; then
    server_bin="$BIN_DIR/stepup-server"
    seed_bin="$BIN_DIR/load_seed"
else
    echo "== building the release server and the seeder"
    cargo build --release -q -p stepup-server --bin stepup-server --example load_seed
    server_bin=target/release/stepup-server
    seed_bin=target/release/examples/load_seed
fi

work="$(mktemp -d)"
database_url="${DATABASE_URL:-sqlite://$work/load.db}"
if [ "$replicas" -gt 1 ] && [[ "$database_url" != postgres* ]]; then
    echo "REPLICAS > 1 needs DATABASE_URL on PostgreSQL" >&2
    exit 1
fi
if [[ "$database_url" == postgres* ]]; then
    # A schema of its own, dropped afterwards.
    schema="stepup_load_$$"
    psql -q "$database_url" -c "CREATE SCHEMA $schema" >/dev/null
    database_url="$database_url?options=-c%20search_path%3D$schema"
fi
# Replicas share sealed secrets: one key-encryption key for all of them.
export STEPUP_KEY_ENCRYPTION_KEY="$("$server_bin" generate-key)"
export STEPUP_ADMIN_TOKEN="$admin_token"

pids=()
bases=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "${schema:-}" ]; then psql -q "${DATABASE_URL}" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

for i in $(seq 1 "$replicas"); do
    "$server_bin" serve --dev --listen 127.0.0.1:0 --database-url "$database_url" \
        --log-format json >"$work/server$i.out" 2>"$work/server$i.log" &
    pids+=("$!")
    for _ in $(seq 1 100); do
        base="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/server$i.out" | head -1 || true)"
        [ -n "$base" ] && break
        sleep 0.1
    done
    [ -n "$base" ] || { echo "server $i did not start:"; cat "$work/server$i.log"; exit 1; } >&2
    bases+=("$base")
done

echo "== seeding $users users with an authenticator app (through ${bases[0]})"
"$seed_bin" "${bases[0]}" "$admin_token" "$environment" "$users" "$work/requests.txt"

# Each replica gets every n-th request and its share of the connections.
for i in $(seq 1 "$replicas"); do
    awk -v n="$replicas" -v i="$i" 'NR % n == i % n' "$work/requests.txt" >"$work/requests$i.txt"
done
per_replica=$((connections / replicas))
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -a before
for i in "${!pids[@]}"; do before[$i]="$(ticks "${pids[$i]}")"; done
# PostgreSQL's own CPU: every postgres process on this machine (its backends serve the replicas).
postgres_ticks() {
    local total=0 pid
    for pid in $(pgrep -x postgres || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
postgres_before="$(postgres_ticks)"

echo "== $duration s of load: $connections connections over $replicas server(s)"
wrk_pids=()
for i in $(seq 1 "$replicas"); do
    wrk -t"$threads" -c"$per_replica" -d"${duration}s" --latency -s scripts/load/totp.lua "${bases[$((i - 1))]}" \
        -- "$work/requests$i.txt" "$threads" "$environment" >"$work/wrk$i.out" &
    wrk_pids+=("$!")
done
if [ "${PROFILE:-0}" = 1 ]; then
    perf record -q -F 499 --call-graph "${PERF_CALL_GRAPH:-fp}" -p "${pids[0]}" -o target/load-perf.data -- sleep "$((duration - 2))" >/dev/null 2>&1 &
    perf_pid="$!"
fi
for pid in "${wrk_pids[@]}"; do wait "$pid"; done
if [ -n "${perf_pid:-}" ]; then
    wait "$perf_pid" || true
    perf report -q -i target/load-perf.data --stdio --no-children --sort symbol --percent-limit 0.7 -g none \
        >target/load-profile.txt 2>/dev/null || true
    # The same samples by thread: tokio's workers against sqlx-sqlite's connection threads.
    perf report -q -i target/load-perf.data --stdio --no-children --sort comm -g none \
        >target/load-profile-threads.txt 2>/dev/null || true
    echo "== profile: target/load-profile.txt, by thread: target/load-profile-threads.txt"
fi

cpu_ticks=0
for i in "${!pids[@]}"; do cpu_ticks=$((cpu_ticks + $(ticks "${pids[$i]}") - before[$i])); done
postgres_cpu=$(($(postgres_ticks) - postgres_before))
hz="$(getconf CLK_TCK)"

total=0
refused=0
for i in $(seq 1 "$replicas"); do
    out="$work/wrk$i.out"
    n="$(awk '/requests in/ {print $1}' "$out")"
    bad="$(awk '/Non-2xx or 3xx responses/ {print $5}' "$out")"
    total=$((total + n))
    refused=$((refused + ${bad:-0}))
    echo "-- replica $i"
    grep -E "Latency Distribution|50%|90%|99%|requests in|Requests/sec|Non-2xx|Socket errors" "$out" | sed 's/^/   /'
done
ok=$((total - refused))
awk -v ok="$ok" -v refused="$refused" -v d="$duration" -v t="$cpu_ticks" -v hz="$hz" -v r="$replicas" 'BEGIN {
    printf "step-ups: %d accepted, %d refused in %d s = %.0f step-ups/s over %d server(s)\n", ok, refused, d, ok / d, r
    if (ok > 0) printf "server CPU: %.2f s = %.0f us per step-up (%.0f %% of one core)\n", t / hz, t / hz * 1e6 / ok, t / hz / d * 100
}'
if [[ "$database_url" == postgres* ]]; then
    awk -v ok="$ok" -v t="$postgres_cpu" -v hz="$hz" 'BEGIN {
        if (ok > 0) printf "PostgreSQL CPU: %.2f s = %.0f us per step-up\n", t / hz, t / hz * 1e6 / ok
    }'
fi
