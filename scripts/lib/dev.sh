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

# usage: dev_nginx_dir DIR IDGATE : an Nginx prefix in DIR (logs/, tmp/) with a copy of the shipped
# snippets in DIR/snippets, their includes pointing at the copies, the upstream reaching idgate at
# IDGATE (ip:port; the shipped `server 127.0.0.1:4280 …` line's address replaced) and the decision
# microcache's files in DIR/tmp.
dev_nginx_dir() {
  local dir=$1 idgate=$2 f
  mkdir -p "$dir/snippets" "$dir/logs" "$dir/tmp"
  for f in "$ROOT"/nginx/idgate-*.conf; do
    sed "s#/etc/nginx/snippets/idgate/#$dir/snippets/#g" "$f" >"$dir/snippets/$(basename "$f")"
  done
  [ "$(grep -c '^    server 127\.0\.0\.1:4280 ' "$ROOT/nginx/idgate-upstream.conf")" = 1 ] ||
    die "nginx/idgate-upstream.conf must have one 'server 127.0.0.1:4280 ...' line"
  sed -i "s#^    server 127\.0\.0\.1:4280 #    server $idgate #" "$dir/snippets/idgate-upstream.conf"
  sed -i "s#/run/nginx-idgate-decisions#$dir/tmp/decisions#" "$dir/snippets/idgate-microcache.conf"
}
