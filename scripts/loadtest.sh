#!/usr/bin/env bash
# Measures avatarproxy against nginx serving the same bytes from a file, on
# this machine, and prints one table. Everything listens on 127.0.0.1 only;
# everything started here is stopped by PID on exit.
#
#   scripts/loadtest.sh                  # every scenario (about 13 minutes on 2 cores)
#   scripts/loadtest.sh hit 304          # some of: hit 304 large disk s3 render memory
#
# Settings (environment): DURATION=10 (seconds per wrk run), ROUNDS=3
# (alternating avatarproxy/nginx rounds; the table shows medians, and the
# median and range of the rounds' own ratios), CONNS=64,
# THREADS=2, DURABLE_CHATS=2000 (chats per durable-hit run), MEMORY_CHATS=50000,
# MEMORY_MB=128 (budget of the bounded-memory run), MEMORY_LIMIT_MIB=192,
# NGINX_WORKERS=auto (nginx's worker_processes), PROXY_GOMAXPROCS (unset:
# Go's default, one per CPU). PROXY_GOMAXPROCS=4 NGINX_WORKERS=4 gives both
# servers two threads per core on 2 cores (README, "Sharing cores").
# NEAR_NS=120: cmd/coreprobe's one-way time between the cores below which a
# hit round counts as run on near cores (README, "Where the host puts the
# cores").
#
# Installs nginx and wrk (Debian packages) when missing. The s3 scenario needs
# the MinIO server that scripts/test.sh installs; without it the row is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
DURABLE_CHATS=${DURABLE_CHATS:-2000}
MEMORY_CHATS=${MEMORY_CHATS:-50000}
MEMORY_MB=${MEMORY_MB:-128}
MEMORY_LIMIT_MIB=${MEMORY_LIMIT_MIB:-192}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
PROXY_GOMAXPROCS=${PROXY_GOMAXPROCS:-}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(hit 304 large disk s3 render memory)
for s in "${SCENARIOS[@]}"; do
  case $s in hit | 304 | large | disk | s3 | render | memory) ;; *)
    echo "unknown scenario $s (want: hit 304 large disk s3 render memory)" >&2
    exit 2
    ;;
  esac
done
want() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }
say() { printf '%s\n' "loadtest: $*" >&2; }

# --- tools ------------------------------------------------------------------
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "nginx and wrk are needed: sudo apt-get install -y nginx wrk" >&2; exit 1; }
  say "installing nginx and wrk (Debian packages)"
  apt-get update -qq >/dev/null
  # nginx's package starts the system service (on :80, all addresses); this
  # script runs its own nginx on 127.0.0.1, so the service is stopped again.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx wrk >/dev/null
  if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
MINIO=${AVATAR_MINIO_BIN:-$(command -v minio || echo "$(go env GOPATH)/bin/minio")}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/avatarproxy-loadtest.XXXXXX")
chmod 755 "$WORK" # nginx workers run as nobody and must read $WORK/www
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building into $WORK"
go build -o "$WORK/avatarproxy" .
go build -o "$WORK/loadgen" ./cmd/loadgen
go build -o "$WORK/coreprobe" ./cmd/coreprobe
LG=$WORK/loadgen

# On a VM the host may place the cores near each other or far apart, and
# move them every few minutes; a cache line between them then takes about
# 50 or about 230 ns here. Each hit round is probed before and after, and
# its ratio is also given per state (NEAR_NS splits the two).
NEAR_NS=${NEAR_NS:-120}
core_ns() { "$WORK/coreprobe" 2>/dev/null | sed -n 's/.* ns=//p' || true; }

# stop PID: SIGTERM and wait, so a durable tier flushes its queue.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local p keep=()
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# wait_http URL: until it answers (10 s at most).
wait_http() {
  for _ in $(seq 100); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# start_proxy PORT LOG [AVATAR_X=y ...]: avatarproxy in the background; sets PROXY_PID.
start_proxy() {
  local port=$1 log=$2
  shift 2
  env ${PROXY_GOMAXPROCS:+GOMAXPROCS=$PROXY_GOMAXPROCS} AVATAR_LISTEN="127.0.0.1:$port" AVATAR_LOG_LEVEL=warn AVATAR_ALLOW_UNSIGNED=true "$@" \
    "$WORK/avatarproxy" >"$log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_http "http://127.0.0.1:$port/healthz" || { cat "$log" >&2; exit 1; }
}

# The fake gateway and CDN of cmd/loadgen: every chat has an avatar, no
# picture generation per chat.
FAKE_ENV=()
start_fake() {
  [ ${#FAKE_ENV[@]} -eq 0 ] || return 0
  "$LG" fake -env "$WORK/fake.env" 2>"$WORK/fake.log" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -f "$WORK/fake.env" ] && break; sleep 0.1; done
  mapfile -t FAKE_ENV <"$WORK/fake.env"
  FAKE_ENV+=(AVATAR_UPSTREAM_RPS=1000 AVATAR_UPSTREAM_CONCURRENCY=64)
}

mapfile -t PORTS < <("$LG" ports -n 8)
P_PROXY=${PORTS[0]} P_NGINX=${PORTS[1]} P_S3=${PORTS[2]} P_S3C=${PORTS[3]} P_QUIET=${PORTS[4]} P_NGLOG=${PORTS[5]}
P_NGCOPY=${PORTS[6]} P_NGCOPYLOG=${PORTS[7]}
PROXY=http://127.0.0.1:$P_PROXY
QUIET=http://127.0.0.1:$P_QUIET
NGX=http://127.0.0.1:$P_NGINX
NGXLOG=http://127.0.0.1:$P_NGLOG
NGXCOPY=http://127.0.0.1:$P_NGCOPY
NGXCOPYLOG=http://127.0.0.1:$P_NGCOPYLOG

# --- nginx, its own config ----------------------------------------------------
mkdir -p "$WORK/www/avatar" "$WORK/www/d" "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 100000000;
  open_file_cache max=10000 inactive=60s;
  open_file_cache_valid 60s;
  types { image/jpeg jpg; }
  default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$P_NGINX;
    root $WORK/www;
    add_header Cache-Control "public, max-age=86400";
  }
  # The same with an access log, buffered as a busy site would set it, to
  # compare with avatarproxy's default (a line per request, buffered).
  server {
    listen 127.0.0.1:$P_NGLOG;
    root $WORK/www;
    add_header Cache-Control "public, max-age=86400";
    access_log $WORK/nginx/access.log combined buffer=64k flush=1s;
  }
  # The same two with sendfile off: nginx then reads the file into its
  # buffer and sends headers and body in one writev. For a file of a few KB
  # on loopback that is its fastest setting here (README, "Memory hits
  # against nginx"), so the hit rows are also measured against it.
  server {
    listen 127.0.0.1:$P_NGCOPY;
    root $WORK/www;
    sendfile off;
    add_header Cache-Control "public, max-age=86400";
  }
  server {
    listen 127.0.0.1:$P_NGCOPYLOG;
    root $WORK/www;
    sendfile off;
    add_header Cache-Control "public, max-age=86400";
    access_log $WORK/nginx/access-copy.log combined buffer=64k flush=1s;
  }
}
EOF
NGINX_STARTED=
start_nginx() {
  [ -z "$NGINX_STARTED" ] || return 0
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
  PIDS+=($!)
  NGINX_STARTED=1
  # Any answer will do (/ itself is a 403): it listens.
  for _ in $(seq 50); do curl -s -o /dev/null "$NGX/" && return 0; sleep 0.1; done
  cat "$WORK/nginx/error.log" >&2
  exit 1
}

# --- measuring ----------------------------------------------------------------
# to_ms VALUE: wrk's "812.00us" / "3.30ms" / "1.20s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
    else printf "?" }'
}

# wrk_run URL [header]: prints "rps p50_ms p99_ms bad" for one wrk run.
wrk_run() {
  local out args=(-t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency)
  [ -z "${2:-}" ] || args+=(-H "$2")
  out=$(wrk "${args[@]}" "$1")
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print "socket-errors"}' <<<"$out" | paste -sd, -)
  echo "$rps $p50 $p99 ${bad:-0}"
}

# lg_field LINE KEY: one key=value field of a loadgen run line.
lg_field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {sub(/^[^=]*=/, ""); print}'; }

# median of numbers on stdin.
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "?"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

ROWS=()
NOTES=()
# row NAME PROXY_FILE NGINX_FILE: a table row from files of "rps p50 p99" lines.
row() {
  local name=$1 pf=$2 nf=$3 prps pp50 pp99 nrps np50 np99 ratio span
  prps=$(awk '{print $1}' "$pf" | median)
  pp50=$(awk '{print $2}' "$pf" | median)
  pp99=$(awk '{print $3}' "$pf" | median)
  if [ -n "$nf" ]; then
    nrps=$(awk '{print $1}' "$nf" | median)
    np50=$(awk '{print $2}' "$nf" | median)
    np99=$(awk '{print $3}' "$nf" | median)
    # The ratio of each round's two runs, which ran back to back: the
    # machine's drift between rounds cancels out of these, not out of the
    # ratio of the two medians. The table gives their median and range.
    awk 'NR == FNR {p[FNR] = $1; next} $1 > 0 {printf "%.3f\n", p[FNR] / $1}' "$pf" "$nf" >"$WORK/ratios"
    ratio=$(median <"$WORK/ratios" | awk '$1 != "?" {printf "%.2fx", $1}')
    span=$(sort -g "$WORK/ratios" | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) printf "%.2f-%.2f", lo, hi}')
  else
    nrps=- np50=- np99=- ratio=- span=-
  fi
  ROWS+=("$(printf '%-34s %10s %8s %8s | %10s %8s %8s | %6s %10s' "$name" "$prps" "$pp50" "$pp99" "$nrps" "$np50" "$np99" "${ratio:--}" "${span:--}")")
}

# states NAME PROXY_FILE NGINX_FILE STATE_FILE: a note with the rounds' ratio
# on near cores and on far ones (STATE_FILE: "ns_before ns_after" a round).
states() {
  local name=$1 pf=$2 nf=$3 sf=$4
  # A line a round: where the cores were through it, and its ratio.
  paste -d' ' "$pf" "$nf" "$sf" | awk -v t="$NEAR_NS" '$5 > 0 {
    b = $(NF - 1); a = $NF
    s = (b == "-" || a == "-") ? "unknown" : (b < t && a < t) ? "near" : (b >= t && a >= t) ? "far" : "changed"
    printf "%s %.3f\n", s, $1 / $5 }' >"$WORK/states"
  NOTES+=("$name, by the host's placement of the cores (coreprobe before/after each round: $(awk '{printf "%s/%s ", $1, $2}' "$sf")ns): near (< $NEAR_NS ns) $(state_ratio near), far $(state_ratio far), the rest changed during the round")
}
# state_ratio STATE: the median ratio of the rounds in STATE, with their count.
state_ratio() {
  local n
  n=$(awk -v s="$1" '$1 == s' "$WORK/states" | wc -l)
  if [ "$n" -eq 0 ]; then printf 'no round'; return; fi
  printf '%.2fx in %d round%s' "$(awk -v s="$1" '$1 == s {print $2}' "$WORK/states" | median)" "$n" "$([ "$n" -eq 1 ] || echo s)"
}

# --- hit and 304: the demo, one avatar, wrk -----------------------------------
if want hit || want 304; then
  say "memory hit and 304: avatarproxy --demo vs nginx, ${ROUNDS}x${DURATION}s each, wrk -t$THREADS -c$CONNS"
  # The default settings (access log on, to a file here), and the same
  # without the access log, to show what a log line per request costs.
  start_proxy "$P_PROXY" "$WORK/demo.log" AVATAR_DEMO=true AVATAR_STORAGE=none
  HIT_PID=$PROXY_PID
  start_proxy "$P_QUIET" "$WORK/demo-quiet.log" AVATAR_DEMO=true AVATAR_STORAGE=none AVATAR_ACCESS_LOG=false
  QUIET_PID=$PROXY_PID
  PATH1="/avatar/79001234561@c.us.jpg?size=128"
  curl -fs -o /dev/null "$PROXY$PATH1" # the miss that fills the cache
  curl -fs -o /dev/null "$QUIET$PATH1"
  curl -fs -o /dev/null "$QUIET$PATH1"
  curl -fs -D "$WORK/hit.h" -o "$WORK/www/avatar/79001234561@c.us.jpg" "$PROXY$PATH1"
  grep -qi '^cache-status: avatarproxy; hit' "$WORK/hit.h" || { say "second request was not a memory hit"; cat "$WORK/hit.h" >&2; exit 1; }
  PETAG=$(awk -F': ' 'tolower($1) == "etag" {print $2}' "$WORK/hit.h" | tr -d '\r')
  start_nginx
  for u in "$NGX" "$NGXCOPY"; do
    cmp -s <(curl -fs "$u/avatar/79001234561@c.us.jpg") <(curl -fs "$PROXY$PATH1") || { say "nginx ($u) and avatarproxy bytes differ"; exit 1; }
  done
  NETAG=$(curl -fsI "$NGX/avatar/79001234561@c.us.jpg" | awk -F': ' 'tolower($1) == "etag" {print $2}' | tr -d '\r')
  BYTES=$(stat -c %s "$WORK/www/avatar/79001234561@c.us.jpg")
  NOTES+=("hit/304: one 128 px JPEG of $BYTES bytes, identical bytes from both; medians of $ROUNDS alternating ${DURATION}s wrk runs; access logs (avatarproxy's default; nginx's combined format, buffer=64k) go to files; \"nginx copying\": nginx with sendfile off, its fastest setting for this file here")
  FILES=(hit.p hit.nl hit.ncl hit.q hit.n hit.nc 304.p 304.nl)
  for f in "${FILES[@]}" hit.state; do : >"$WORK/$f"; done
  for r in $(seq "$ROUNDS"); do
    before=$(core_ns)
    # Alternate who goes first, so drift on a shared machine hits both.
    order=(p nl ncl q n nc)
    [ $((r % 2)) = 1 ] || order=(nc n q ncl nl p)
    for who in "${order[@]}"; do
      case $who in
      p)
        if want hit; then wrk_run "$PROXY$PATH1" >>"$WORK/hit.p"; fi
        if want 304; then wrk_run "$PROXY$PATH1" "If-None-Match: $PETAG" >>"$WORK/304.p"; fi
        ;;
      nl)
        if want hit; then wrk_run "$NGXLOG/avatar/79001234561@c.us.jpg" >>"$WORK/hit.nl"; fi
        if want 304; then wrk_run "$NGXLOG/avatar/79001234561@c.us.jpg" "If-None-Match: $NETAG" >>"$WORK/304.nl"; fi
        ;;
      ncl) if want hit; then wrk_run "$NGXCOPYLOG/avatar/79001234561@c.us.jpg" >>"$WORK/hit.ncl"; fi ;;
      q) if want hit; then wrk_run "$QUIET$PATH1" >>"$WORK/hit.q"; fi ;;
      n) if want hit; then wrk_run "$NGX/avatar/79001234561@c.us.jpg" >>"$WORK/hit.n"; fi ;;
      nc) if want hit; then wrk_run "$NGXCOPY/avatar/79001234561@c.us.jpg" >>"$WORK/hit.nc"; fi ;;
      esac
    done
    after=$(core_ns)
    echo "${before:--} ${after:--}" >>"$WORK/hit.state"
    say "round $r: $(for f in "${FILES[@]}"; do [ -s "$WORK/$f" ] && printf '%s %s r/s p99 %s ms; ' "$f" "$(tail -1 "$WORK/$f" | awk '{print $1}')" "$(tail -1 "$WORK/$f" | awk '{print $3}')"; done)cores ${before:--}/${after:--} ns"
  done
  if want hit; then
    row "memory hit, access log on" "$WORK/hit.p" "$WORK/hit.nl"
    row "memory hit, access log off" "$WORK/hit.q" "$WORK/hit.n"
    row "memory hit, log on, nginx copying" "$WORK/hit.p" "$WORK/hit.ncl"
    row "memory hit, log off, nginx copying" "$WORK/hit.q" "$WORK/hit.nc"
    states "memory hit, access log on" "$WORK/hit.p" "$WORK/hit.nl" "$WORK/hit.state"
    states "memory hit, log on, nginx copying" "$WORK/hit.p" "$WORK/hit.ncl" "$WORK/hit.state"
  fi
  if want 304; then row "revalidation (304), access log on" "$WORK/304.p" "$WORK/304.nl"; fi
  for f in "${FILES[@]}"; do
    if [ -s "$WORK/$f" ] && awk '$4 != "0" {bad = 1} END {exit !bad}' "$WORK/$f"; then
      NOTES+=("WARNING: $f had non-2xx/3xx answers or socket errors: $(awk '{print $4}' "$WORK/$f" | paste -sd' ')")
    fi
  done
  stop "$HIT_PID"
  stop "$QUIET_PID"
fi

# --- a larger memory hit: past fasthttp's default 4 KiB write buffer ----------
if want large; then
  say "memory hit, 256 px: avatarproxy --demo vs nginx (both logging), ${ROUNDS}x${DURATION}s each"
  start_proxy "$P_PROXY" "$WORK/large.log" AVATAR_DEMO=true AVATAR_STORAGE=none
  LARGE_PID=$PROXY_PID
  PATH2="/avatar/120363043968066561@g.us.jpg?size=256"
  curl -fs -o /dev/null "$PROXY$PATH2"
  curl -fs -o "$WORK/www/avatar/120363043968066561@g.us.jpg" "$PROXY$PATH2"
  start_nginx
  cmp -s <(curl -fs "$NGXLOG/avatar/120363043968066561@g.us.jpg") <(curl -fs "$PROXY$PATH2") || { say "nginx and avatarproxy bytes differ"; exit 1; }
  LBYTES=$(stat -c %s "$WORK/www/avatar/120363043968066561@g.us.jpg")
  : >"$WORK/large.p" && : >"$WORK/large.nl"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      wrk_run "$PROXY$PATH2" >>"$WORK/large.p"
      wrk_run "$NGXLOG/avatar/120363043968066561@g.us.jpg" >>"$WORK/large.nl"
    else
      wrk_run "$NGXLOG/avatar/120363043968066561@g.us.jpg" >>"$WORK/large.nl"
      wrk_run "$PROXY$PATH2" >>"$WORK/large.p"
    fi
    say "round $r: large.p $(tail -1 "$WORK/large.p" | awk '{print $1}') r/s; large.nl $(tail -1 "$WORK/large.nl" | awk '{print $1}') r/s"
  done
  row "memory hit, 256 px ($LBYTES bytes), access log on" "$WORK/large.p" "$WORK/large.nl"
  stop "$LARGE_PID"
fi

# --- durable hits: a fresh process on a warm tier, each chat once -------------
# durable NAME STORAGE_ENV...: warms DURABLE_CHATS chats through one process,
# then, per round, a fresh process answers each chat once from the tier.
COLD_DONE=
durable() {
  local name=$1 tag=$2
  shift 2
  start_fake
  start_nginx
  local url="$PROXY/avatar/{n}@c.us.jpg?size=128" line
  say "$name: warming $DURABLE_CHATS chats (cold misses through the fake gateway and CDN)"
  start_proxy "$P_PROXY" "$WORK/$tag-warm.log" "${FAKE_ENV[@]}" "$@"
  line=$("$LG" run -url "$url" -count "$DURABLE_CHATS" -c 16)
  [ -f "$WORK/one.jpg" ] || curl -fs -o "$WORK/one.jpg" "$PROXY/avatar/79100000000@c.us.jpg?size=128"
  if [ -z "$COLD_DONE" ]; then
    echo "$(lg_field "$line" rps) $(lg_field "$line" p50_ms) $(lg_field "$line" p99_ms)" >"$WORK/cold.p"
    COLD_DONE=1
  fi
  stop "$PROXY_PID" # SIGTERM: the write-behind queue is flushed
  # nginx: the same bytes in DURABLE_CHATS distinct files.
  if [ ! -f "$WORK/www/d/.done" ]; then
    for ((i = 0; i < DURABLE_CHATS; i++)); do cp "$WORK/one.jpg" "$WORK/www/d/$((79100000000 + i))@c.us.jpg"; done
    touch "$WORK/www/d/.done"
  fi
  : >"$WORK/$tag.p" && : >"$WORK/$tag.n"
  for r in $(seq "$ROUNDS"); do
    start_proxy "$P_PROXY" "$WORK/$tag-$r.log" "${FAKE_ENV[@]}" "$@"
    line=$("$LG" run -url "$url" -count "$DURABLE_CHATS" -c "$CONNS")
    stop "$PROXY_PID"
    echo "$(lg_field "$line" rps) $(lg_field "$line" p50_ms) $(lg_field "$line" p99_ms)" >>"$WORK/$tag.p"
    local mix
    mix=$(lg_field "$line" cache)
    [ "$mix" = "hit;detail=storage:$DURABLE_CHATS" ] || NOTES+=("WARNING: $name round $r was not all storage hits: $mix")
    line=$("$LG" run -url "$NGX/d/{n}@c.us.jpg" -count "$DURABLE_CHATS" -c "$CONNS")
    echo "$(lg_field "$line" rps) $(lg_field "$line" p50_ms) $(lg_field "$line" p99_ms)" >>"$WORK/$tag.n"
    say "$name round $r done"
  done
  row "$name" "$WORK/$tag.p" "$WORK/$tag.n"
}

if want disk; then
  durable "durable hit, disk (+render)" disk AVATAR_STORAGE=disk AVATAR_DISK_DIR="$WORK/disk"
  NOTES+=("durable: $DURABLE_CHATS distinct chats, each requested once per round by cmd/loadgen (Go client, -c $CONNS) from a fresh process; nginx: the same bytes in $DURABLE_CHATS files, same client")
  row "cold miss (gateway+CDN+render, c=16)" "$WORK/cold.p" ""
fi
if want s3; then
  if [ -x "$MINIO" ]; then
    S3_KEY=lt$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    S3_SECRET=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -p "$WORK/minio/data" "$WORK/minio/home"
    env -i PATH="$PATH" HOME="$WORK/minio/home" MINIO_ROOT_USER="$S3_KEY" MINIO_ROOT_PASSWORD="$S3_SECRET" \
      MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
      "$MINIO" server --address "127.0.0.1:$P_S3" --console-address "127.0.0.1:$P_S3C" --anonymous \
      "$WORK/minio/data" >"$WORK/minio.log" 2>&1 &
    MINIO_PID=$!
    PIDS+=("$MINIO_PID")
    wait_http "http://127.0.0.1:$P_S3/minio/health/ready" || { cat "$WORK/minio.log" >&2; exit 1; }
    for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$P_S3/minio/health/cluster" && break; sleep 0.1; done
    durable "durable hit, MinIO (+render)" s3 AVATAR_STORAGE=s3 AVATAR_S3_ENDPOINT="127.0.0.1:$P_S3" \
      AVATAR_S3_SECURE=false AVATAR_S3_ACCESS_KEY="$S3_KEY" AVATAR_S3_SECRET_KEY="$S3_SECRET" AVATAR_S3_BUCKET=loadtest
    stop "$MINIO_PID"
  else
    NOTES+=("s3 skipped: no MinIO server at $MINIO (scripts/test.sh installs it)")
  fi
fi

# --- cold render: the resize package's own benchmark --------------------------
if want render; then
  say "render: BenchmarkRender640to128, 5 runs"
  go test -run '^$' -bench '^BenchmarkRender640to128$' -benchtime=100x -count=5 ./resize >"$WORK/render.txt"
  awk '/^BenchmarkRender640to128/ {for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") printf "%.0f %.2f %.2f\n", 1e9 / $i, $i / 1e6, $i / 1e6}' \
    "$WORK/render.txt" >"$WORK/render.p"
  row "cold render 640->128 (1 core)" "$WORK/render.p" ""
  NOTES+=("render: resize.BenchmarkRender640to128 (decode+resize+encode, one goroutine); req/s column is 1/median, p50/p99 columns are the median ms/op")
fi

# --- bounded memory: many distinct avatars ------------------------------------
MEM_LINE=
if want memory; then
  start_fake
  say "memory: $MEMORY_CHATS distinct avatars with AVATAR_MEMORY_MB=$MEMORY_MB (several minutes: each is a cold miss)"
  start_proxy "$P_PROXY" "$WORK/memory.log" "${FAKE_ENV[@]}" AVATAR_STORAGE=none AVATAR_MEMORY_MB="$MEMORY_MB"
  line=$("$LG" run -url "$PROXY/avatar/{n}@c.us.jpg?size=128" -first 79200000000 -count "$MEMORY_CHATS" -c 16 -pid "$PROXY_PID" -progress 30s)
  stop "$PROXY_PID"
  HWM=$(lg_field "$line" vmhwm_mib)
  VERDICT=$(awk -v h="$HWM" -v l="$MEMORY_LIMIT_MIB" 'BEGIN {print (h < l) ? "PASS" : "FAIL"}')
  MEM_LINE="bounded memory: $MEMORY_CHATS distinct avatars, AVATAR_MEMORY_MB=$MEMORY_MB: peak RSS (VmHWM) $HWM MiB, limit $MEMORY_LIMIT_MIB MiB: $VERDICT ($(lg_field "$line" rps) req/s of cold misses, codes $(lg_field "$line" codes))"
fi

# --- the table ----------------------------------------------------------------
echo
printf '%-34s %10s %8s %8s | %10s %8s %8s | %6s %10s\n' "scenario" "proxy r/s" "p50 ms" "p99 ms" "nginx r/s" "p50 ms" "p99 ms" "ratio" "rounds"
printf '%s\n' "$(printf '%.0s-' $(seq 115))"
for r in "${ROWS[@]}"; do printf '%s\n' "$r"; done
[ -z "$MEM_LINE" ] || printf '%s\n' "$MEM_LINE"
echo
echo "$(nproc) cores, $(uname -r), avatarproxy GOMAXPROCS=${PROXY_GOMAXPROCS:-${GOMAXPROCS:-default}}, $("$NGINX" -v 2>&1 | sed 's/.*: //') worker_processes $NGINX_WORKERS, wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}'), $(go version | awk '{print $3}')"
echo "- ratio: the median of the rounds' own ratios (avatarproxy / nginx, the two runs back to back); rounds: their lowest and highest"
for n in "${NOTES[@]}"; do echo "- $n"; done
