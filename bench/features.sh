# bench/features.sh: the feature rows of bench/run (issues 10 and 12),
# sourced by bench/run after its own rows (it uses bench/run's process
# control, run_wrk and, in features_table, the table helpers). Not run on
# its own. Every row is 64 keep-alive connections, like bench/run's.
#
#   10  TLS: GET and durable increment over HTTPS (TLS 1.3, one ECDSA P-256
#       certificate) vs nginx serving the same certificate, and vs counterd
#       without TLS (bench/run's rows 1 and 2).
#   10  Auth: GET and durable increment with --auth-tokens-file and a
#       bearer token on every request vs the same rows without.
#   12  Bounded increments ({"by":1,"max":...}, never refused) vs the same
#       body without the bound.
#   12  A batch of 10 increments (POST /batch) vs 10 single increments of the
#       same 10 counters: increments per second.
#   12  Watch fan-out: 1,000 watchers of one hot counter (bench/watch_fanout)
#       while wrk increments it: events delivered per second, and the write
#       rate vs the same instance with no watchers.
# shellcheck disable=SC2154  # bench/run's variables and functions

feature_watchers=1000

# --- one plain instance: bounded, batch, watch --------------------------------
log "counterd (features): bounded increments, batches, watch fan-out"
# 1,000 watchers and wrk's 64 connections come from one address: raise the
# caps (watch streams count toward them).
start_counterd "$run_dir/features" --max-connections 4096 \
  --max-connections-per-client 4096 --max-watchers "$feature_watchers"
base="http://127.0.0.1:$cd_port"
run_wrk f_plain_64 64 "$base/counters/q/increment" body.lua '{"by":1}'
run_wrk f_bounded_64 64 "$base/counters/q/increment" body.lua \
  '{"by":1,"min":0,"max":9000000000000000000}'

batch_ops=""
for i in $(seq 0 9); do
  batch_ops+="${batch_ops:+,}{\"op\":\"increment\",\"name\":\"b$i\",\"by\":1}"
done
run_wrk f_batch10_64 64 "$base/batch" body.lua "{\"operations\":[$batch_ops]}"
run_wrk f_single10_64 64 "$base" increment.lua 10 'b%d' 1

# Watch fan-out. The counter exists first, so every watcher's first event
# is its current state; watch_fanout prints "ready" once all 1,000 have it.
run_wrk f_nowatch_64 64 "$base/counters/w/increment" post.lua
"$tools/watch_fanout" --port "$cd_port" --connections "$feature_watchers" \
  --path /counters/w/watch >"$run_dir/fanout.txt" &
fanout_pid=$!
started_pids+=("$fanout_pid")
for _ in $(seq 1200); do
  grep -q '^ready' "$run_dir/fanout.txt" && break
  kill -0 "$fanout_pid" 2>/dev/null || die "watch_fanout exited: $(cat "$run_dir/fanout.txt")"
  sleep 0.05
done
fanout_ready=$(grep '^ready' "$run_dir/fanout.txt" || true)
[[ "$fanout_ready" == "ready connected=$feature_watchers refused=0" ]] ||
  die "watch_fanout: expected $feature_watchers connected watchers, got: ${fanout_ready:-no ready line}"
[[ "$(metric counterd_watchers)" == "$feature_watchers" ]] ||
  die "counterd reports $(metric counterd_watchers) watchers, expected $feature_watchers"
run_wrk f_watch_64 64 "$base/counters/w/increment" post.lua
stop_pid "$fanout_pid"
fanout_line=$(grep '^watch ' "$run_dir/fanout.txt" || true)
declare -A fan=()
for kv in ${fanout_line#watch }; do fan[${kv%%=*}]=${kv#*=}; done
[[ "${fan[open]:-}" == "$feature_watchers" ]] ||
  die "watchers were dropped during the row: ${fanout_line:-no result line}"
fanout_eps=$(awk -v e="${fan[events]}" -v t="${fan[elapsed_ms]}" \
  'BEGIN {printf "%.1f", (t > 0 ? e * 1000 / t : 0)}')
fanout_per_watcher=$(awk -v e="$fanout_eps" -v n="$feature_watchers" 'BEGIN {printf "%.1f", e / n}')
log "watch fan-out: ${fan[events]} events in ${fan[elapsed_ms]} ms to $feature_watchers watchers"
stop_counterd

# --- auth: a token file, a bearer token on every request ----------------------
log "counterd (auth): --auth-tokens-file, bearer token on every request"
bench_token="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
token_file="$run_dir/tokens.json"
cat >"$token_file" <<EOF
{"tokens": [{"name": "bench", "sha256": "$(printf '%s' "$bench_token" | sha256sum | cut -d' ' -f1)",
             "scopes": ["read", "write", "metrics"]}]}
EOF
start_counterd "$run_dir/auth" --auth-tokens-file "$token_file"
base="http://127.0.0.1:$cd_port"
curl -fsS -X PUT -H "Authorization: Bearer $bench_token" -H 'Content-Type: application/json' \
  -d '{"value":0}' "$base/counters/x" >/dev/null
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/counters/x")" == 401 ]] ||
  die "counterd with a token file answered a request without a token"
wrk_extra=(-H "Authorization: Bearer $bench_token")
run_wrk auth_get_64 64 "$base/counters/x" get.lua
run_wrk auth_inc_64 64 "$base/counters/x/increment" post.lua
wrk_extra=()
stop_counterd

# --- TLS: counterd and nginx with the same certificate -------------------------
log "TLS: counterd and nginx, one ECDSA P-256 certificate"
tls_dir="$run_dir/tls"
mkdir -p "$tls_dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null
start_counterd "$run_dir/tls-data" --tls-cert-file "$tls_dir/cert.pem" \
  --tls-key-file "$tls_dir/key.pem"
base="https://127.0.0.1:$cd_port"
curl -fsS --cacert "$tls_dir/cert.pem" -X PUT -H 'Content-Type: application/json' \
  -d '{"value":0}' "$base/counters/x" >/dev/null
tls_body=$(curl -fsS --cacert "$tls_dir/cert.pem" "$base/counters/x")
tls_session=$(openssl s_client -connect "127.0.0.1:$cd_port" -CAfile "$tls_dir/cert.pem" \
  </dev/null 2>/dev/null | awk '/^New, / {print $2, $NF}' | head -1)
run_wrk tls_get_64 64 "$base/counters/x" get.lua
run_wrk tls_inc_64 64 "$base/counters/x/increment" post.lua
stop_counterd
start_nginx "$tls_body" "$tls_dir/cert.pem" "$tls_dir/key.pem"
[[ "$(curl -fsS --cacert "$tls_dir/cert.pem" "https://127.0.0.1:$nginx_port/counters/x")" == "$tls_body" ]] ||
  die "nginx (TLS) does not serve the fixed body"
run_wrk nginx_tls_get_64 64 "https://127.0.0.1:$nginx_port/counters/x" get.lua
run_wrk nginx_tls_post_64 64 "https://127.0.0.1:$nginx_port/counters/x" post.lua
stop_pid "$nginx_pid" QUIT

# The second table; called by bench/run once its table helpers exist.
features_table() {
  local r_tls_get r_tls_inc r_tls_get_plain r_tls_inc_plain r_auth_get r_auth_inc
  local r_bounded r_batch r_watch batch_incs single_incs
  r_tls_get=$(ratio "${rps[tls_get_64]}" "${rps[nginx_tls_get_64]}")
  r_tls_inc=$(ratio "${rps[tls_inc_64]}" "${rps[nginx_tls_post_64]}")
  r_tls_get_plain=$(ratio "${rps[tls_get_64]}" "${rps[cd_get_64]}")
  r_tls_inc_plain=$(ratio "${rps[tls_inc_64]}" "${rps[cd_inc_64]}")
  r_auth_get=$(ratio "${rps[auth_get_64]}" "${rps[cd_get_64]}")
  r_auth_inc=$(ratio "${rps[auth_inc_64]}" "${rps[cd_inc_64]}")
  r_bounded=$(ratio "${rps[f_bounded_64]}" "${rps[f_plain_64]}")
  batch_incs=$(awk -v r="${rps[f_batch10_64]}" 'BEGIN {printf "%.1f", r * 10}')
  single_incs=${rps[f_single10_64]}
  r_batch=$(ratio "$batch_incs" "$single_incs")
  r_watch=$(ratio "${rps[f_watch_64]}" "${rps[f_nowatch_64]}")
  cat <<EOF

## Features: TLS and auth (issue 10), bounds, batches and watch (issue 12)

- 64 keep-alive connections per row; the same counterd binary and settings as above.
- TLS: $tls_session negotiated by \`openssl s_client\` against counterd; one ECDSA P-256 certificate for counterd and nginx (1 worker, \`ssl_protocols TLSv1.2 TLSv1.3\`, fixed body of the same bytes; for the increment row, nginx answers the same POST with that body).

| Measurement | counterd | Reference | Ratio |
|---|---|---|---|
| GET over TLS | $(figure tls_get_64) | nginx over TLS: $(figure nginx_tls_get_64) | ${r_tls_get}x |
| … vs counterd without TLS | | GET without TLS (row 1): $(fmt_rate "${rps[cd_get_64]}") req/s | ${r_tls_get_plain}x |
| Durable increment over TLS | $(figure tls_inc_64) | nginx over TLS, same POST: $(figure nginx_tls_post_64) | ${r_tls_inc}x |
| … vs counterd without TLS | | durable increment without TLS (row 2): $(fmt_rate "${rps[cd_inc_64]}") req/s | ${r_tls_inc_plain}x |
| GET with a token file + bearer token | $(figure auth_get_64) | without auth (row 1): $(fmt_rate "${rps[cd_get_64]}") req/s | ${r_auth_get}x |
| Durable increment with a token file + bearer token | $(figure auth_inc_64) | without auth (row 2): $(fmt_rate "${rps[cd_inc_64]}") req/s | ${r_auth_inc}x |
| Bounded increment \`{"by":1,"min":0,"max":9e18}\` | $(figure f_bounded_64) | \`{"by":1}\`: $(figure f_plain_64) | ${r_bounded}x |
| Batch of 10 increments (\`POST /batch\`) | $(fmt_rate "$batch_incs") increments/s ($(figure f_batch10_64 batches/s)) | 10 single increments, same counters: $(figure f_single10_64 increments/s) | ${r_batch}x |
| Watch fan-out: $feature_watchers watchers of one hot counter | $(fmt_rate "$fanout_eps") events/s delivered ($fanout_per_watcher per watcher), ${fan[closed]} streams ended | — | — |
| … write rate while they watch | $(figure f_watch_64) | no watchers, same instance: $(figure f_nowatch_64) | ${r_watch}x |
EOF
}
