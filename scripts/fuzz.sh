#!/usr/bin/env bash
# Runs every fuzz target of the repository for a while and prints its
# throughput: scripts/fuzz.sh [duration per target, default 60s] [workers,
# default: all cores] [name filter, a regexp on "package/FuzzName"].
#
# -fuzzminimizetime bounds the time the fuzzer spends minimizing each new
# interesting input (Go's default is 60 s). Inputs whose coverage is not
# reproducible (a cache hit or a sync.Pool reuse in the standard library
# changes the path) are never minimized and would otherwise stall a worker
# for the whole minute.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-60s}"
workers="${2:-$(nproc)}"
filter="${3:-.}"
failed=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  [[ "$pkg/$name" =~ $filter ]] || continue
  log="$(mktemp)"
  if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$dur" -fuzzminimizetime=5s -parallel="$workers" "$pkg" >"$log" 2>&1; then
    status=ok
  else
    status=FAIL
    failed=1
  fi
  last="$(grep -E 'execs: [0-9]+' "$log" | tail -1 || true)"
  execs="$(sed -E 's/.*execs: ([0-9]+).*/\1/' <<<"$last")"
  secs="$(sed -E 's/.*elapsed: (([0-9]+)m)?([0-9]+)s.*/\2 \3/' <<<"$last" | awk '{print ($2 == "" ? $1 : $1*60+$2)}')"
  rate=$(( ${execs:-0} / (${secs:-1} > 0 ? ${secs:-1} : 1) ))
  printf '%-5s %-22s %-24s %10s execs %6s/s\n' "$status" "$pkg" "$name" "${execs:-0}" "$rate"
  if [ "$status" = FAIL ]; then grep -v '^fuzz: elapsed' "$log" | head -40; fi
  rm -f "$log"
done < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed -E 's|^\./||; s|:func |:|')
exit "$failed"
