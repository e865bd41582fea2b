#!/bin/sh
# ratios.sh: run the crypto benchmarks and print, for every group, the
# median ns/op of each variant and its ratio to the group's raw baseline.
#
#   benchmarks/ratios.sh                 run (ROUNDS rounds) and summarize
#   benchmarks/ratios.sh FILE...         summarize existing `go test -bench` output
#
# Environment:
#   ROUNDS     rounds of the whole suite (default 10). The test binary is built
#              once (`go test -c`) and each round runs it with -count 1, so a
#              wrapper and its raw baseline run next to each other in every
#              round instead of all rounds of one before all rounds of the
#              other; the median is over rounds.
#   BENCHTIME  -benchtime per benchmark and round (default 0.3s); the defaults
#              take about 7 minutes on 2 cores
#   BENCH      -bench regexp (default: the crypto benchmarks only; the VM and
#              block benchmarks are left out)
#   OUT        where to keep the raw output (default: a temporary file)
#   LIMIT      the ratio target for wrapper variants (default 1.10)
#
# Names are <group>/<variant>, where the variant starts at the first path
# element that is "wrapper", "raw" or "reference"; each variant is compared
# with <group>/raw three ways: ratio of medians; "paired", the median over
# rounds of the ratio of the two samples of the same round (they ran seconds
# apart, so load from other processes that comes and goes cancels out); and
# ratio of minimums (the runs least disturbed). Where the group has one, it is
# also compared with <group>/raw/alloc (ratio of medians). A wrapper variant
# above LIMIT by all three is marked MISS, by one or two "noisy".
set -eu

ROUNDS=${ROUNDS:-10}
BENCHTIME=${BENCHTIME:-0.3s}
BENCH=${BENCH:-'^Benchmark(GenerateIdentity|EncapsulateDecapsulate|SignVerify|DeriveSessionID|Encrypt|Decrypt|EncryptToRecipient|DecryptFromSender|Seal|Open)$'}
LIMIT=${LIMIT:-1.10}

summarize() {
	awk -v limit="$LIMIT" '
	/^Benchmark/ && / ns\/op/ {
		name = $1
		sub(/-[0-9]+$/, "", name) # GOMAXPROCS suffix
		ns = ""; bop = ""; aop = ""
		for (i = 3; i < NF; i++) {
			if ($(i+1) == "ns/op") ns = $i
			if ($(i+1) == "B/op") bop = $i
			if ($(i+1) == "allocs/op") aop = $i
		}
		if (ns == "") next
		if (!(name in cnt)) { order[++nnames] = name; cnt[name] = 0 }
		c = ++cnt[name]
		val[name, c] = ns + 0
		bytes[name] = bop; allocs[name] = aop
	}
	# pmedian: the median over rounds of name_i / base_i, each sample divided
	# by the baseline sample of the same round (they ran seconds apart, so
	# load that comes and goes cancels out).
	function pmedian(name, base,    n, i, j, t, a) {
		n = cnt[name]
		if (cnt[base] < n) n = cnt[base]
		for (i = 1; i <= n; i++) a[i] = val[name, i] / val[base, i]
		return msort(a, n)
	}
	function median(name,    n, i, a) {
		n = cnt[name]
		for (i = 1; i <= n; i++) a[i] = val[name, i]
		med1 = msort(a, n)
		mn[name] = a[1]; mx[name] = a[n]
		return med1
	}
	# msort sorts a[1..n] and returns its median.
	function msort(a, n,    i, j, t) {
		for (i = 2; i <= n; i++) {
			t = a[i]
			for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]
			a[j+1] = t
		}
		if (n % 2) return a[(n+1)/2]
		return (a[n/2] + a[n/2+1]) / 2
	}
	function fmtns(x) {
		if (x >= 100000) return sprintf("%.0f", x)
		if (x >= 100) return sprintf("%.0f", x)
		return sprintf("%.1f", x)
	}
	END {
		for (k = 1; k <= nnames; k++) {
			name = order[k]
			med[name] = median(name)
			np = split(name, p, "/")
			group = p[1]; variant = ""
			for (i = 2; i <= np; i++) {
				if (variant == "" && (p[i] == "wrapper" || p[i] == "raw" || p[i] == "reference")) variant = p[i]
				else if (variant == "") group = group "/" p[i]
				else variant = variant "/" p[i]
			}
			if (variant == "") { variant = "-"; }
			grp[name] = group; var[name] = variant
		}
		printf "%-44s %-17s %12s %12s %12s %9s %6s %7s %7s %7s %7s\n", "group", "variant", "median ns/op", "min", "max", "B/op", "allocs", "x raw", "paired", "min/min", "x alloc"
		for (k = 1; k <= nnames; k++) {
			name = order[k]
			base = grp[name] "/raw"
			ratio = ""; rpair = ""; rmin = ""; ralloc = ""; mark = ""
			if ((grp[name] "/raw/alloc") in med) ralloc = sprintf("%.3f", med[name] / med[grp[name] "/raw/alloc"])
			if ((base in med) && med[base] > 0) {
				r = med[name] / med[base]
				r2 = mn[name] / mn[base]
				r3 = pmedian(name, base)
				ratio = sprintf("%.3f", r)
				rpair = sprintf("%.3f", r3)
				rmin = sprintf("%.3f", r2)
				if (var[name] ~ /^wrapper/) {
					over = (r > limit + 0) + (r2 > limit + 0) + (r3 > limit + 0)
					if (over == 3) { mark = "  MISS"; misses++ }
					else if (over > 0) { mark = "  noisy"; noisy++ }
				}
			}
			printf "%-44s %-17s %12s %12s %12s %9s %6s %7s %7s %7s %7s%s\n", grp[name], var[name], fmtns(med[name]), fmtns(mn[name]), fmtns(mx[name]), bytes[name], allocs[name], ratio, rpair, rmin, ralloc, mark
		}
		printf "\n%d sample(s) per benchmark. x raw: median / median of <group>/raw; paired: median over rounds of\n", cnt[order[1]]
		printf "sample / raw sample of the same round; min/min: fastest / fastest;\n"
		printf "x alloc: median / median of <group>/raw/alloc (raw with a fresh output buffer per call).\n"
		printf "wrapper variants above %sx raw by all three measures (MISS): %d; by one or two (noisy): %d\n", limit, misses + 0, noisy + 0
	}' "$@"
}

# The whole script is read before it runs (main is defined first), so that
# editing it during a long run does not affect the run.
main() {
	if [ $# -gt 0 ]; then
		summarize "$@"
		return 0
	fi

	cd "$(dirname "$0")"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	out=${OUT:-$tmp/bench.txt}
	: >"$out"
	go test -c -o "$tmp/benchmarks.test" .

	echo "# $(date -u '+%Y-%m-%dT%H:%M:%SZ') $(go version) GOMAXPROCS=${GOMAXPROCS:-$(nproc 2>/dev/null || echo ?)} rounds=$ROUNDS benchtime=$BENCHTIME" >&2
	i=1
	while [ "$i" -le "$ROUNDS" ]; do
		echo "# round $i/$ROUNDS" >&2
		# Equivalent to: go test -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -count 1 -benchmem ./benchmarks/
		"$tmp/benchmarks.test" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" \
			-test.count 1 -test.benchmem -test.timeout 30m >>"$out"
		i=$((i + 1))
	done
	summarize "$out"
}

main "$@"
exit
