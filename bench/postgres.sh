# bench/postgres.sh: the rows of `bench/run --backend postgres` (issue 13),
# sourced by bench/run after its set-up (options, tools, counterd, the work
# dir, process control, run_wrk, the table helpers). Not run on its own.
#
# One throwaway PostgreSQL 15 server (bench/pg_server.py: fsync on,
# synchronous_commit on) on the work dir's disk serves every PostgreSQL row:
#   - pgbench, `UPDATE counters SET value = value + 1 WHERE name = ...
#     RETURNING value` on one row and on 1,000 rows (the references);
#   - counterd --backend postgres, 1 replica, then 3 replicas on the same
#     database, with bench/wrk/increment.lua (the same names);
# and, before it starts, counterd on the file backend with the same script
# and names. Each figure is wrk's (pgbench's) throughput with p50/p99;
# WAL flushes per acknowledged write come from pg_stat_wal.wal_sync around
# each row, divided by the acknowledged writes (counterd_mutations_total
# summed over the replicas, which live for one row; pgbench's processed
# transactions, after its warm-up).
# See docs/BENCHMARKS.md, "PostgreSQL".
# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034,SC2004  # bench/run's variables, functions, arrays

pg_settings=(shared_buffers=128MB max_connections=200)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the file backend, same script and names ----------------------------------
log "counterd (file backend): hot and spread increments"
start_counterd "$run_dir/file"
base="http://127.0.0.1:$cd_port"
run_wrk file_hot_1 1 "$base" increment.lua 1 x
run_wrk file_hot_64 64 "$base" increment.lua 1 x
run_wrk file_spread_64 64 "$base" increment.lua 1000 's%04d' 1
stop_counterd

# --- the PostgreSQL server -----------------------------------------------------
pg_base="$work/pg"
mkdir -p "$pg_base"
chmod 755 "$pg_base"  # the server's own user (when we are root) must reach it
log "PostgreSQL 15: a throwaway cluster under $pg_base (${pg_settings[*]})"
pg_args=()
for s in "${pg_settings[@]}"; do pg_args+=(--setting "$s"); done
coproc PGSRV { exec python3 "$repo/bench/pg_server.py" --dir "$pg_base" "${pg_args[@]}"; }
pg_srv_pid=$PGSRV_PID
started_pids+=("$pg_srv_pid")
# Closing its input stops the server and removes its files; give it the
# time (an immediate stop and a wait for every server process), also when
# the bench ends early, before bench/run's cleanup would kill it.
stop_pg_server() {
  [[ -n "${PGSRV[1]:-}" ]] || return 0
  local fd=${PGSRV[1]}
  exec {fd}>&-
  for _ in $(seq 600); do kill -0 "$pg_srv_pid" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$pg_srv_pid"
}
trap 'stop_pg_server; cleanup' EXIT
pg_line=""
read -r -t 180 pg_line <&"${PGSRV[0]}" || true
[[ "$pg_line" == port=* ]] || die "the PostgreSQL server did not start"
pg_port=$(sed -E 's/.*port=([0-9]+).*/\1/' <<<"$pg_line")
pg_socket=$(sed -E 's/.*socket=([^ ]+).*/\1/' <<<"$pg_line")

pg_sql() {  # sql [db]
  "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -h "$pg_socket" -p "$pg_port" -U postgres \
    -d "${2:-postgres}" -c "$1"
}
pg_version=$(pg_sql "SHOW server_version" | awk '{print $1}')
pg_sql "CREATE DATABASE counterd_bench" >/dev/null
pg_sql "CREATE DATABASE pgbench_ref" >/dev/null
# The reference table: the names counterd's rows hit, fillfactor as
# counterd's own table (HOT updates).
pg_sql "CREATE TABLE counters (name text COLLATE \"C\" PRIMARY KEY, value bigint NOT NULL)
          WITH (fillfactor = 70);
        INSERT INTO counters SELECT 'x', 0 UNION ALL
          SELECT 's' || lpad(i::text, 4, '0'), 0 FROM generate_series(0, 999) i" \
  pgbench_ref >/dev/null
pg_sql "VACUUM ANALYZE counters" pgbench_ref >/dev/null
pg_url="postgresql://postgres@127.0.0.1:$pg_port/counterd_bench"

# WAL syncs so far, once every process has reported its own: a client
# backend does when it exits, the background processes (WAL writer,
# checkpointer) every second or so, so read until two readings a second
# apart agree.
wal_syncs() {
  local a b
  a=$(pg_sql "SELECT wal_sync FROM pg_stat_wal")
  for _ in $(seq 30); do
    sleep 1
    b=$(pg_sql "SELECT wal_sync FROM pg_stat_wal")
    [[ "$a" == "$b" ]] && break
    a=$b
  done
  echo "$b"
}

# The replicas' acknowledged writes and COMMITs that wrote
# (counterd_mutations_total, counterd_fsyncs_total), summed.
cd_ports=()
replicas_metric() {  # name
  local total=0 p v
  for p in "${cd_ports[@]}"; do
    v=$(curl -fsS "http://127.0.0.1:$p/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v + 0}')
    total=$((total + v))
  done
  echo "$total"
}

# WAL flushes per acknowledged write of a row: pg_stat_wal.wal_sync read
# before it (after a CHECKPOINT, so that none falls inside by schedule) and
# after it. A backend publishes its WAL statistics when it exits, and while
# it lives only now and then: the idle connections of a running counterd
# were seen holding theirs for minutes. So every reading is taken with no
# client connected (pgbench has exited; the counterd replicas of a row live
# for that row only).
declare -A wal_per_write=() writes_per_commit=()
wal_start() {
  pg_sql "CHECKPOINT" >/dev/null
  wal_before=$(wal_syncs)
}
wal_end() {  # key acknowledged_writes [commits]
  local w m=$2 c=${3:-}
  w=$(($(wal_syncs) - wal_before))
  wal_per_write[$1]=$(awk -v w="$w" -v m="$m" 'BEGIN {printf "%.4f", (m > 0 ? w / m : 0)}')
  if [[ -n "$c" ]]; then
    writes_per_commit[$1]=$(awk -v c="$c" -v m="$m" 'BEGIN {printf "%.1f", (c > 0 ? m / c : 0)}')
  fi
  log "$1: $w WAL syncs for $m acknowledged writes (${wal_per_write[$1]} per write)"
}

# p50 and p99 (ms) of pgbench's per-transaction log lines (field 3: the
# latency in µs).
log_percentiles() {  # files...
  cat "$@" | awk '{print $3}' | sort -n | awk '{a[NR] = $1} END {
    if (NR == 0) { print "0 0"; exit }
    i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
    i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
    printf "%.4f %.4f\n", a[i50] / 1000, a[i99] / 1000 }'
}

# pgbench with |clients| clients (threads as wrk's), prepared statements,
# over loopback TCP like counterd's connections; warm-up and repetitions as
# run_wrk; records the medians under |key| and the WAL flushes per write.
run_pgbench() {  # key clients script
  local key=$1 clients=$2 script=$3 threads
  threads=$(client_threads "$clients")
  local cmd=("$PG_BIN/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -n -M prepared
    -c "$clients" -j "$threads" -f "$script")
  if ((warmup > 0)); then "${cmd[@]}" -T "$warmup" pgbench_ref >/dev/null 2>&1; fi
  wal_start
  local r rs=() a=() b=() e=0 said d processed=0
  for ((r = 1; r <= reps; r++)); do
    d=$(mktemp -d "$run_dir/pgbench.XXXXXX")
    said=$("${cmd[@]}" -T "$seconds" -l --log-prefix "$d/log" pgbench_ref 2>&1) ||
      die "pgbench failed for $key: $said"
    local n tps failed
    n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$said")
    failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' <<<"$said")
    tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$said")
    [[ -n "$n" && -n "$tps" ]] || die "pgbench printed no result for $key: $said"
    processed=$((processed + n))
    e=$((e + ${failed:-0}))
    rs+=("$tps")
    read -r pct50 pct99 < <(log_percentiles "$d"/log*)
    a+=("$pct50")
    b+=("$pct99")
    rm -rf "$d"
  done
  wal_end "$key" "$processed"
  keep_row "$key" "$e" tps transactions
}

# wrk against several counterd replicas at once: the connections split
# evenly, one wrk process (one thread) per replica, all started together,
# each starting |count| / |replicas| names further (increment.lua's OFFSET:
# they do not walk the spread names in step); throughput summed, latencies
# pooled from each process's quantiles (summary.lua's BENCHQ line) into one
# p50/p99.
pooled_percentiles() {  # lines "N p:us p:us ..." on stdin -> "p50_ms p99_ms"
  python3 -c '
import sys
pts, total = [], 0
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    n = int(parts[0]); total += n
    for q in parts[1:]:
        p, v = q.split(":")
        pts.append((float(v), n * (1.0 if float(p) < 90 else 0.1) / 100))
pts.sort()
def quantile(x):
    acc = 0.0
    for v, m in pts:
        acc += m
        if acc >= x * total:
            return v
    return pts[-1][0] if pts else 0
print("%.4f %.4f" % (quantile(0.50) / 1000, quantile(0.99) / 1000))'
}
run_wrk_multi() {  # key conns script COUNT FORMAT STEP  (URLs: $replica_urls)
  local key=$1 conns=$2 script=$3
  shift 3
  local n=${#replica_urls[@]} i
  local -a per=()
  for ((i = 0; i < n; i++)); do per+=($((conns / n + (i < conns % n ? 1 : 0)))); done
  run_all() {  # duration [script args...] -> $run_dir/multi.<replica>
    local dur=$1 pids=() i
    shift
    for ((i = 0; i < n; i++)); do
      wrk -t1 -c"${per[$i]}" -d"${dur}s" --timeout 10s --latency \
        -s "$repo/bench/wrk/$script" "${replica_urls[$i]}" -- "$@" $((i * $1 / n)) \
        >"$run_dir/multi.$i" &
      pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
  }
  if ((warmup > 0)); then run_all "$warmup" "$@"; fi
  local r rs=() a=() b=() e=0
  for ((r = 1; r <= reps; r++)); do
    run_all "$seconds" "$@"
    local total=0 line qs=""
    for ((i = 0; i < n; i++)); do
      line=$(grep '^BENCH ' "$run_dir/multi.$i" || true)
      [[ -n "$line" ]] || die "wrk printed no summary for $key (replica $i)"
      local -A f=()
      local kv
      for kv in ${line#BENCH }; do f[${kv%%=*}]=${kv#*=}; done
      total=$(awk -v t="$total" -v n="${f[requests]}" -v d="${f[duration_us]}" \
        'BEGIN {printf "%.1f", t + n * 1e6 / d}')
      e=$((e + f[status_errors] + f[socket_errors]))
      qs+="$(grep '^BENCHQ ' "$run_dir/multi.$i" | sed 's/^BENCHQ //')"$'\n'
    done
    rs+=("$total")
    read -r pct50 pct99 < <(pooled_percentiles <<<"$qs")
    a+=("$pct50")
    b+=("$pct99")
  done
  keep_row "$key" "$e" req/s requests
}

start_replicas() {  # n
  local i
  cd_ports=() cd_pids=() replica_urls=()
  for ((i = 0; i < $1; i++)); do
    start_counterd "$run_dir/pg-replica-$i" --backend postgres --postgres-url "$pg_url"
    cd_ports+=("$cd_port")
    cd_pids+=("$cd_pid")
    replica_urls+=("http://127.0.0.1:$cd_port")
  done
}
stop_replicas() {
  local p
  for p in "${cd_pids[@]}"; do stop_pid "$p"; done
  cd_pids=()
}

# A row on |n| counterd replicas started for it (see wal_start): the WAL
# flushes from before they start to after they stop, over the writes they
# acknowledged in their lives (the warm-up included, on both sides).
pg_row() {  # key n conns [script args...]
  local key=$1 n=$2 conns=$3 m c
  shift 3
  wal_start
  start_replicas "$n"
  if ((n == 1)); then
    run_wrk "$key" "$conns" "${replica_urls[0]}" increment.lua "$@"
  else
    run_wrk_multi "$key" "$conns" increment.lua "$@"
  fi
  m=$(replicas_metric counterd_mutations_total)
  c=$(replicas_metric counterd_fsyncs_total)
  stop_replicas
  wal_end "$key" "$m" "$c"
}

# --- pgbench: the references ----------------------------------------------------
log "pgbench: UPDATE ... RETURNING on one row and on 1,000 rows"
cat >"$run_dir/hot.sql" <<'EOF'
UPDATE counters SET value = value + 1 WHERE name = 'x' RETURNING value;
EOF
cat >"$run_dir/spread.sql" <<'EOF'
\set i random(0, 999)
UPDATE counters SET value = value + 1 WHERE name = 's' || lpad(:i::text, 4, '0') RETURNING value;
EOF
run_pgbench pgb_hot_1 1 "$run_dir/hot.sql"
run_pgbench pgb_hot_64 64 "$run_dir/hot.sql"
run_pgbench pgb_spread_64 64 "$run_dir/spread.sql"

# --- counterd on PostgreSQL: one replica, then three on the same database ----
log "counterd --backend postgres: 1 replica"
pg_row pg1_hot_1 1 1 1 x
pg_row pg1_hot_64 1 64 1 x
pg_row pg1_spread_64 1 64 1000 's%04d' 1
# Every name of the spread script is a counter now (plus x): the rows hit
# what they were meant to.
counted() { pg_sql "SELECT count(*) FROM counterd_counters" counterd_bench; }
[[ "$(counted)" == 1001 ]] || die "after the spread row the database holds $(counted) counters, expected 1001"

log "counterd --backend postgres: 3 replicas on the same database"
pg_row pg3_hot_64 3 64 1 x
pg_row pg3_spread_64 3 64 1000 's%04d' 1
# The replicas created nothing twice and lost no creation: still 1,001 rows.
[[ "$(counted)" == 1001 ]] || die "the 3-replica rows left $(counted) counters, expected 1001"

stop_pg_server

# ================================================================= table
r_hot=$(ratio "${rps[pg1_hot_64]}" "${rps[pgb_hot_64]}")
r_spread=$(ratio "${rps[pg1_spread_64]}" "${rps[pgb_spread_64]}")
r_hot1=$(ratio "${rps[pg1_hot_1]}" "${rps[pgb_hot_1]}")
r_rep_hot=$(ratio "${rps[pg3_hot_64]}" "${rps[pg1_hot_64]}")
r_rep_spread=$(ratio "${rps[pg3_spread_64]}" "${rps[pg1_spread_64]}")
r_file_hot=$(ratio "${rps[pg1_hot_64]}" "${rps[file_hot_64]}")
r_file_spread=$(ratio "${rps[pg1_spread_64]}" "${rps[file_spread_64]}")
r_file_hot1=$(ratio "${rps[pg1_hot_1]}" "${rps[file_hot_1]}")
wal() {  # key -> "0.0123 WAL flushes/write (81.3 writes/COMMIT)"
  local extra=""
  [[ -n "${writes_per_commit[$1]:-}" ]] && extra=" (${writes_per_commit[$1]} writes per COMMIT)"
  printf '%s%s' "${wal_per_write[$1]}" "$extra"
}

table=$(
  cat <<EOF
## counterd on PostgreSQL — $( ((smoke)) && echo "SMOKE run (figures not meaningful)" || echo "full run" )

- Date: $(date -u '+%Y-%m-%d %H:%M UTC') · commit $commit · $counterd_version
- Machine: $ncpu cores ($cpu_model), kernel $(uname -r); load average before the run: $load_before
- Disk: $disk_desc; PostgreSQL data under \`$pg_base\`
- PostgreSQL $pg_version, one throwaway server for every PostgreSQL row: fsync on, synchronous_commit on, ${pg_settings[*]}, other settings default; clients over loopback TCP
- Rows: ${seconds} s each, median of $reps$( ((warmup)) && echo ", after a ${warmup} s warm-up" ) · wrk $wrk_version with \`bench/wrk/increment.lua\` (client threads = min(connections, $ncpu); with 3 replicas, one wrk process of one thread per replica, connections split 22/21/21, latencies pooled) · counterd --threads $counterd_threads, default pool (4 connections per replica)
- Reference: pgbench $pg_version \`-M prepared -c C -j min(C, $ncpu)\`, \`UPDATE counters SET value = value + 1 WHERE name = … RETURNING value\` on the row \`x\` (hot) or a random one of 1,000 (spread); latencies from its per-transaction log
- WAL flushes: \`pg_stat_wal.wal_sync\` (every WAL fdatasync of the server, background ones included) from before each row to after it, a CHECKPOINT first, read with no client connected; per acknowledged write: counterd_mutations_total of the row's replicas, which live for that row only (warm-up included), or pgbench's processed transactions (after its warm-up)
$( ((smoke)) && echo "- Smoke run: rows are too short to be stable; the targets are shown, never enforced." )

| # | Measurement | counterd on PostgreSQL | Reference | Ratio | Target | Met |
|---|---|---|---|---|---|---|
| P1 | Hot counter, 64 connections | $(figure pg1_hot_64) | pgbench, one row, 64 clients: $(figure pgb_hot_64 tps) | ${r_hot}x | ≥ 10x | $(met "$r_hot" ">=" 10) |
| P2 | 1,000 counters spread, 64 connections | $(figure pg1_spread_64) | pgbench, 1,000 rows, 64 clients: $(figure pgb_spread_64 tps) | ${r_spread}x | ≥ 1.5x | $(met "$r_spread" ">=" 1.5) |
| P3 | Hot counter, 1 connection | $(figure pg1_hot_1) | pgbench, one row, 1 client: $(figure pgb_hot_1 tps) | ${r_hot1}x | — | |
| P4 | 3 replicas on the same database, hot counter, 64 connections | $(figure pg3_hot_64) | 1 replica (P1): $(fmt_rate "${rps[pg1_hot_64]}") req/s | ${r_rep_hot}x | — | |
| P4 | 3 replicas on the same database, 1,000 counters spread, 64 connections | $(figure pg3_spread_64) | 1 replica (P2): $(fmt_rate "${rps[pg1_spread_64]}") req/s | ${r_rep_spread}x | — | |
| P5 | Postgres vs file backend: hot counter, 64 connections | $(fmt_rate "${rps[pg1_hot_64]}") req/s (P1) | file backend: $(figure file_hot_64) | ${r_file_hot}x | — | |
| P5 | Postgres vs file backend: 1,000 counters spread, 64 connections | $(fmt_rate "${rps[pg1_spread_64]}") req/s (P2) | file backend: $(figure file_spread_64) | ${r_file_spread}x | — | |
| P5 | Postgres vs file backend: hot counter, 1 connection | $(fmt_rate "${rps[pg1_hot_1]}") req/s (P3) | file backend: $(figure file_hot_1) | ${r_file_hot1}x | — | |
| P6 | WAL flushes per acknowledged write: hot, 64 connections | $(wal pg1_hot_64) | pgbench: $(wal pgb_hot_64) | — | — | |
| P6 | … 1,000 counters spread, 64 connections | $(wal pg1_spread_64) | pgbench: $(wal pgb_spread_64) | — | — | |
| P6 | … hot, 1 connection | $(wal pg1_hot_1) | pgbench: $(wal pgb_hot_1) | — | — | |
| P6 | … 3 replicas: hot; spread (64 connections) | $(wal pg3_hot_64); $(wal pg3_spread_64) | — | — | — | |
EOF
)
printf '%s\n' "$table"
printf '%s\n' "$table" >"$out"
log "table written to ${out#"$repo"/}"
((failures == 0)) || die "$failures rows had failed requests"
