# Readiness waits shared by scripts/demo and the benchmarks (sourced, not run). The sourcing
# script defines `die MESSAGE` first.

# True while the process is running (not a zombie: `kill -0` succeeds on those).
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# usage: wait_until NAME PID LOG CMD... : polls CMD until it succeeds, for up to a minute (a busy
# machine starts things slowly). If NAME (process PID) exits first, or a minute passes, dies
# with the last lines of its LOG.
wait_until() {
  local name=$1 pid=$2 log=$3 i
  shift 3
  for ((i = 0; i < 1200; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    alive "$pid" || die "$name exited during startup; the end of its log ($log):
$(tail -n 20 "$log" 2>&1)"
    sleep 0.05
  done
  die "$name not ready after a minute; the end of its log ($log):
$(tail -n 20 "$log" 2>&1)"
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
