# Helpers shared by the benchmarks (sourced, not run). The sourcing script sets ROOT (the
# repository) and WORK (its work directory) and defines `die` and `say` first.
#
# Every process started with `spawn` is the script's child, listed in CHILDREN; `stop_children`
# (call it from the EXIT trap, or earlier to stop them all) stops each by PID and empties the
# list, so that a later call cannot signal a PID the system has since given to another process.

CHILDREN=()

# Starts "$@" in the background with stdout/stderr to $WORK/NAME.{out,err}; sets CHILD to its
# PID (the program itself: `exec` in the subshell, so that killing the PID stops the program).
# usage: spawn NAME DIR CMD...
spawn() {
  local name=$1 dir=$2
  shift 2
  # The log files exist before the child does: the background subshell opens its redirections
  # only once it runs, and a reader polling them at once would find nothing to read.
  : >"$WORK/$name.out"
  : >"$WORK/$name.err"
  (cd "$dir" && exec "$@") >"$WORK/$name.out" 2>"$WORK/$name.err" &
  CHILD=$!
  CHILDREN+=("$CHILD")
}

stop_children() {
  local pid
  for pid in "${CHILDREN[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${CHILDREN[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  CHILDREN=()
  rm -f "$PORTS_GIVEN"
  # Only cache files live there, and the Nginxes that wrote them have stopped.
  if [ -n "${MEMORY_WORK:-}" ]; then rm -rf "$MEMORY_WORK"; fi
}

# The decision microcache's files belong on a tmpfs: the shipped snippet keeps them under /run,
# and says to. On a disk's file system (here /tmp is ext4), each half second's new cache file,
# written while the requests in flight all miss together, stalled them: with the files in the
# work directory, M's p99 added was 1.97 ms against 1.04 ms on a tmpfs, higher in each of five
# alternating rounds (scripts/bench-peer with both side by side, 2026-12-05).
# usage: bench_nginx_dir DIR IDGATE : dev_nginx_dir's Nginx prefix in DIR, with the decision
# microcache's files in a directory of their own on a tmpfs, under MEMORY_WORK (made on first
# use, in the calling shell, not a subshell; removed by stop_children), which Nginx's workers
# (nobody, when the bench runs as root) may pass through to their own files.
bench_nginx_dir() {
  if [ -z "${MEMORY_WORK:-}" ]; then
    [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] ||
      die "/dev/shm is not a tmpfs: the decision microcache's files need one"
    MEMORY_WORK="$(mktemp -d /dev/shm/idgate-bench.XXXXXX)" || die "cannot make a directory in /dev/shm"
    chmod 711 "$MEMORY_WORK"
  fi
  dev_nginx_dir "$1" "$2" "$MEMORY_WORK/decisions-$(basename "$1")"
}

# shellcheck source=scripts/lib/ready.sh
source "$(dirname "${BASH_SOURCE[0]}")/ready.sh"
# shellcheck source=scripts/lib/dev.sh
source "$(dirname "${BASH_SOURCE[0]}")/dev.sh"

# The machine's CPU time so far, from /proc/stat's first line, in ticks: "STEAL TOTAL". Steal is
# time a virtual CPU was ready to run while the hypervisor ran something else: a part measured
# with much of it was slowed down by the machine's other tenants, not by what it measures.
cpu_times() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t }' /proc/stat; }
# usage: steal_since "STEAL TOTAL" : the percentage of the CPU time stolen since that cpu_times.
steal_since() {
  local s0 t0 s1 t1
  read -r s0 t0 <<<"$1"
  read -r s1 t1 <<<"$(cpu_times)"
  awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }'
}

# usage: start_floor NAME : starts the floor server (examples/floor.rs, built by
# build_bench_binaries: a daemon that allows every request at once) on an ephemeral port; sets
# FLOOR_ADDR to its address and CHILD to its PID.
start_floor() {
  local name=$1 i
  spawn "$name" "$WORK" "${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/floor" --listen 127.0.0.1:0
  local pid=$CHILD
  for ((i = 0; i < 200; i++)); do
    FLOOR_ADDR="$(sed -n 's/^listening on //p' "$WORK/$name.out")"
    [ -n "$FLOOR_ADDR" ] && return 0
    alive "$pid" || die "$name exited during startup: $(cat "$WORK/$name.err")"
    sleep 0.05
  done
  die "$name did not print 'listening on ADDR' within 10 s"
}

# usage: wait_ready NAME PID CMD... : wait_until with NAME's stderr ($WORK/NAME.err) as its log.
wait_ready() {
  local name=$1 pid=$2
  shift 2
  wait_until "$name" "$pid" "$WORK/$name.err" "$@"
}

# A loopback port free now, and not handed out before in this run: the kernel may give a port
# it just gave again, and a server that cannot bind would leave another one answering for it.
# Call it as `VAR="$(free_port)"`: the ports handed out are remembered in a file, since a
# command substitution runs in a subshell.
PORTS_GIVEN="$(mktemp "${TMPDIR:-/tmp}/idgate-bench-ports.XXXXXX")"
free_port() {
  local port i
  for ((i = 0; i < 50; i++)); do
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    if ! grep -qx "$port" "$PORTS_GIVEN"; then
      echo "$port" >>"$PORTS_GIVEN"
      echo "$port"
      return 0
    fi
  done
  echo "free_port: no new free port after 50 tries" >&2
  return 1
}

# Converts wrk's latency ("812.00us", "1.23ms", "2.01s") to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000
    else if (v ~ /ms$/) n += 0
    else if (v ~ /m$/) n *= 60000
    else if (v ~ /s$/) n *= 1000
    printf "%.3f", n
  }'
}

# CPU time (user + system, in clock ticks) used so far by the given processes and their
# children (an Nginx master's workers, Apache's). /proc/PID/stat counts all threads of a process.
CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() {
  local pid total=0 ticks
  if (($# == 0)); then
    echo 0
    return
  fi
  for pid in "$@" $(ps -o pid= --ppid "$(IFS=,; echo "$*")"); do
    ticks="$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null)" || continue
    total=$((total + ticks))
  done
  echo "$total"
}

# usage: median FORMAT VALUES...
median() {
  local format=$1
  shift
  printf '%s\n' "$@" | sort -g |
    awk -v f="$format" '{ v[NR] = $1 } END { printf f, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# CPU time (user + system, in clock ticks) used so far by one process alone (all its threads).
cpu_ticks_of() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
