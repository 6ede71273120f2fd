# The development configurations (dev/idgate.toml, dev/nginx.conf) and the copy of the shipped
# snippets, for scripts/demo and the benchmarks (sourced, not run). The sourcing script sets ROOT
# (the repository) and defines `die MESSAGE`. tests/common/dev.rs does the same for the tests.

# usage: render TEMPLATE NAME=VALUE... : dev/TEMPLATE with its fields filled, on stdout (see
# scripts/lib/render.py for the rules).
render() {
  local template=$1
  shift
  python3 "$ROOT/scripts/lib/render.py" "$ROOT/dev/$template" "$@" || die "cannot render dev/$template"
}

# usage: dev_nginx_dir DIR IDGATE [DECISIONS] : an Nginx prefix in DIR (logs/, tmp/) with a copy of
# the shipped snippets in DIR/snippets, their includes pointing at the copies, the upstream
# reaching idgate at IDGATE (ip:port or unix:PATH; the shipped `server unix:/run/idgate/idgate.sock …`
# line's address replaced) and the decision microcache's files in DECISIONS (default: DIR/tmp/decisions; the
# benchmarks give a directory on a tmpfs, as the shipped /run is).
dev_nginx_dir() {
  local dir=$1 idgate=$2 decisions=${3:-$1/tmp/decisions} f
  mkdir -p "$dir/snippets" "$dir/logs" "$dir/tmp"
  for f in "$ROOT"/nginx/idgate-*.conf; do
    sed "s#/etc/nginx/snippets/idgate/#$dir/snippets/#g" "$f" >"$dir/snippets/$(basename "$f")"
  done
  [ "$(grep -c '^    server unix:/run/idgate/idgate\.sock ' "$ROOT/nginx/idgate-upstream.conf")" = 1 ] ||
    die "nginx/idgate-upstream.conf must have one 'server unix:/run/idgate/idgate.sock ...' line"
  sed -i "s#^    server unix:/run/idgate/idgate\.sock #    server $idgate #" "$dir/snippets/idgate-upstream.conf"
  sed -i "s#/run/nginx-idgate-decisions#$decisions#" "$dir/snippets/idgate-microcache.conf"
}

# Builds the release binaries every benchmark runs (the daemon, the floor server, the cold-path
# program) in one cargo invocation, so that the first script builds them and the others find
# them built. Built apart, the examples' dev-dependencies turn on other features of shared
# crates, and idgate would be built twice (3½ minutes each on the 2-core machine). So every
# part measures the daemon built with those features too (reqwest's cookie store, the OTLP
# messages' generated types), which its code paths do not use.
# usage: build_bench_binaries [CARGO ARGS...]
build_bench_binaries() {
  cargo build --release --bin idgate --example floor --example cold "$@" >&2
}
