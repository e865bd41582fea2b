#!/bin/sh
# vm.sh: run BenchmarkVMSendMessage several times and print every run and the
# medians of its figures. One run varies by several percent on a shared
# 2-core machine (other load moves both the chain and the verification
# bound), so the figures to quote are medians over rounds.
#
#   benchmarks/vm.sh                 run (ROUNDS rounds) and summarize
#   benchmarks/vm.sh FILE...         summarize existing `go test -bench` output
#
# Environment:
#   ROUNDS     runs (default 10); the test binary is built once
#   N          messages per run, the -benchtime count (default 20000)
#   OUT        where to keep the raw output (default: a temporary file)
set -eu

ROUNDS=${ROUNDS:-10}
N=${N:-20000}

summarize() {
	awk '
	/^BenchmarkVMSendMessage/ {
		runs++
		for (i = 3; i < NF; i++) {
			unit = $(i + 1)
			if (unit == "msgs/s" || unit == "verify/s" || unit == "%bound" || unit == "cpu-µs/msg" || unit == "validator-msgs/s" || unit == "msgs/block") {
				v[unit, runs] = $i
			}
		}
	}
	function median(unit,    n, i, j, t, a) {
		n = 0
		for (i = 1; i <= runs; i++) a[++n] = v[unit, i] + 0
		for (i = 1; i <= n; i++)
			for (j = i + 1; j <= n; j++)
				if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		if (n % 2) return a[(n + 1) / 2]
		return (a[n / 2] + a[n / 2 + 1]) / 2
	}
	END {
		if (runs == 0) { print "no BenchmarkVMSendMessage lines"; exit 1 }
		printf "%-4s %10s %10s %8s %11s %10s %11s\n", "run", "msgs/s", "verify/s", "%bound", "cpu-µs/msg", "msgs/block", "validator"
		for (i = 1; i <= runs; i++)
			printf "%-4d %10.0f %10.0f %8.2f %11.2f %10.1f %11.0f\n", i, v["msgs/s", i], v["verify/s", i], v["%bound", i], v["cpu-µs/msg", i], v["msgs/block", i], v["validator-msgs/s", i]
		printf "%-4s %10.0f %10.0f %8.2f %11.2f %10.1f %11.0f\n", "med", median("msgs/s"), median("verify/s"), median("%bound"), median("cpu-µs/msg"), median("msgs/block"), median("validator-msgs/s")
		above = 0
		for (i = 1; i <= runs; i++) if (v["%bound", i] >= 40) above++
		printf "%d of %d runs at or above 40%% of the verification bound\n", above, runs
	}' "$@"
}

if [ "$#" -gt 0 ]; then
	summarize "$@"
	exit
fi

cd "$(dirname "$0")/.."
bin=$(mktemp -d)/bench.test
out=${OUT:-$(mktemp)}
go test -c -o "$bin" ./benchmarks
: >"$out"
i=1
while [ "$i" -le "$ROUNDS" ]; do
	"$bin" -test.run '^$' -test.bench '^BenchmarkVMSendMessage$' -test.benchtime "${N}x" | grep '^Benchmark' >>"$out"
	i=$((i + 1))
done
summarize "$out"
echo "raw output: $out"
