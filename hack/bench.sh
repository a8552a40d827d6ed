#!/usr/bin/env bash
# Measures the inventory against its baseline in the same run and prints
# the benchstat table and each benchmark's peak memory. The figures go in
# docs/benchmarks.md.
#
#   hack/bench.sh [COUNT]          inventory: 10,000 certificates (default 10 runs)
#   hack/bench.sh webhook [COUNT]  revocation webhook with 1,000,000 entries
#                                  against a constant handler (default 6 runs)
#   hack/bench.sh exporter [COUNT] exporter scrapes (node of 1,000 certificates;
#                                  real apiserver with 10,000 issued CSRs and
#                                  10,000 ledger entries, root; the cluster one
#                                  also fed from watches) against a constant
#                                  metrics handler (default 6)
#   hack/bench.sh kubestore [COUNT] revoke --backend kubernetes against a bare
#                                  create, on a real apiserver holding 100,000
#                                  RevokedCredentials, and the webhook's heap for
#                                  them (root; default 6 runs; KUBEPKI_BENCH_SCALE)
#   hack/bench.sh cluster [COUNT]  kubepki audit cluster on a large cluster
#                                  loaded into the real apiserver (root; default 6
#                                  runs; KUBEPKI_BENCH_SCALE=10 for a tenth)
#   hack/bench.sh authn [COUNT]    kube-apiserver's claim validation per token with
#                                  revoked JWTs in its AuthenticationConfiguration,
#                                  against the file's own rules (default 6 runs)
#   hack/bench.sh rotate [COUNT]   kubepki rotate plan --ca cluster against a bare
#                                  LIST of the same objects, on a real apiserver
#                                  with 10,000 Secrets and 2,000 namespaces (root;
#                                  default 6 runs; KUBEPKI_BENCH_SCALE)
#   hack/bench.sh report [COUNT]   text and HTML reports of 40,000 findings: render
#                                  time, lines, page size, and the page's load in
#                                  headless Chromium (default 6 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=inventory
case "${1:-}" in
cluster | webhook | exporter | kubestore | report | authn | rotate)
	mode=$1
	shift
	;;
esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
benchstat=$(go env GOPATH)/bin/benchstat

if [ $mode = webhook ]; then
	go test ./internal/webhook -run '^$' -bench '^BenchmarkWebhook$' -benchtime 5x -count "${1:-6}" | tee "$out/bench.txt"
	"$benchstat" "$out/bench.txt"
	exit 0
fi

if [ $mode = authn ]; then
	go test ./internal/revocation -run '^$' -bench '^BenchmarkClaimRules$' -count "${1:-6}" | tee "$out/bench.txt"
	"$benchstat" "$out/bench.txt"
	exit 0
fi

if [ $mode = rotate ]; then
	# One process: the cluster is loaded once; the two benchmarks
	# interleave with -count.
	go test ./internal/rotation -run '^$' -bench '^BenchmarkRotatePlan$' -benchtime 5x -count "${1:-6}" -timeout 60m | tee "$out/bench.txt"
	"$benchstat" -col /.name "$out/bench.txt" 2>/dev/null || "$benchstat" "$out/bench.txt"
	med() {
		awk -v b="$1" '$1 ~ "^BenchmarkRotatePlan/" b "(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") print $i }' "$out/bench.txt" |
			sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
	}
	awk -v b="$(med BareList)" -v p="$(med Plan)" 'BEGIN {
		printf "rotate plan / bare LIST wall time = %.2f (bare %.0f ms, plan %.0f ms)\n", p / b, b / 1e6, p / 1e6 }'
	exit 0
fi

if [ $mode = report ]; then
	# Render time of the 40,000 findings of package large; the figures
	# (lines, page size, load in Chromium) come from the tests that check them.
	go test ./internal/render/text ./internal/render/html -run '^$' -bench '^BenchmarkLargeReport$' -count "${1:-6}" -benchmem | tee "$out/bench.txt"
	"$benchstat" "$out/bench.txt"
	go test ./internal/render/text ./internal/render/html -run '^(TestLargeReport|TestLargeReportInChromium)$' -count 1 -v | grep -E '(text|html|browser)_test.go'
	exit 0
fi

if [ $mode = kubestore ]; then
	# One process: the 100,000 entries are loaded once.
	go test ./internal/revocation/kubestore -run '^$' -bench '^BenchmarkRevoke$' -benchtime 200x -count "${1:-6}" -timeout 60m | tee "$out/bench.txt"
	"$benchstat" "$out/bench.txt"
	med() {
		awk -v b="$1" -v u="$2" '$1 ~ "^BenchmarkRevoke/" b "(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }' "$out/bench.txt" |
			sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
	}
	awk -v p="$(med Paired revoke/create)" -v c="$(med Create ns/op)" -v r="$(med Revoke ns/op)" -v l="$(med ListAll list-s)" -v h="$(med WatchHeap heap-MiB)" -v s="$(med WatchHeap sync-s)" 'BEGIN {
		printf "revoke / bare create, paired = %.2f (alone: create %.2f ms, revoke %.2f ms); listing every entry, the old cost of each revocation: %.1f s; webhook heap for the list %.0f MiB, synced in %.1f s\n", p, c / 1e6, r / 1e6, l, h, s }'
	exit 0
fi

if [ $mode = exporter ]; then
	# One process: the cluster of 10,000 CSRs is loaded once, and each
	# target's three scrapes run one after the other in every round.
	go test ./internal/audit -run '^$' -bench '^BenchmarkExporter$' -benchtime 10x -count "${1:-6}" -timeout 60m | tee "$out/bench.txt"
	"$benchstat" "$out/bench.txt"
	med() {
		awk -v b="$1" '$1 ~ "^BenchmarkExporter/" b "(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") print $i }' "$out/bench.txt" |
			sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
	}
	for t in Node1000 Cluster10000; do
		c=$(med "$t/Constant")
		[ -n "$c" ] || continue
		awk -v t="$t" -v c="$c" -v p="$(med "$t/Periodic")" -v a="$(med "$t/AtScrape")" 'BEGIN {
			printf "%s: periodic / constant = %.2f, at-scrape / constant = %.1f (constant %.1f ms, periodic %.1f ms, at scrape %.1f ms)\n", t, p / c, a / c, c / 1e6, p / 1e6, a / 1e6 }'
		w=$(med "$t/Watched")
		[ -n "$w" ] || continue
		unit() {
			awk -v b="$t/Watched" -v u="$1" '$1 ~ "^BenchmarkExporter/" b "(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }' "$out/bench.txt" |
				sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
		}
		awk -v t="$t" -v c="$c" -v w="$w" -v h="$(unit watch-heap-MiB)" -v s="$(unit watch-sync-s)" 'BEGIN {
			printf "%s: watched / constant = %.2f (watched %.1f ms); the watch held %.0f MiB of heap, synced in %.1f s\n", t, w / c, w / 1e6, h, s }'
	done
	exit 0
fi

if [ $mode = cluster ]; then
	count=${1:-6}
	# One process: loading the cluster takes minutes, so it is done once
	# and both benchmarks run against it.
	go test ./internal/audit -run '^$' -bench '^BenchmarkCluster$' -benchtime 5x -count "$count" -benchmem -timeout 60m | tee "$out/bench.txt"
	"$benchstat" -col /.name "$out/bench.txt" 2>/dev/null || "$benchstat" "$out/bench.txt"
	med() {
		awk -v b="$1" -v u="$2" '$1 ~ "^BenchmarkCluster/" b "(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }' "$out/bench.txt" |
			sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
	}
	awk -v b="$(med BareList ns/op)" -v a="$(med Audit ns/op)" -v hb="$(med BareList peak-heap-MiB)" -v ha="$(med Audit peak-heap-MiB)" 'BEGIN {
		printf "audit / bare LIST wall time = %.2f (bare %.2f s, audit %.2f s); peak Go heap: bare %.0f MiB, audit %.0f MiB\n", a / b, b / 1e9, a / 1e9, hb, ha }'
	exit 0
fi
count=${1:-10}

go test -c -o "$out/audit.test" ./internal/audit
# Interleave the two benchmarks so machine noise hits both alike.
for i in $(seq "$count"); do
	"$out/audit.test" -test.run '^$' -test.bench '^(BenchmarkInventory|BenchmarkBareParse)$' -test.benchmem -test.count 1
done >"$out/bench.txt"
"$benchstat" "$out/bench.txt"

# Throughput of the inventory as a fraction of the bare loop's, from the
# medians of ns/cert.
median() {
	awk -v b="$1" '$1 ~ "^Benchmark" b "(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == "ns/cert") print $i }' "$out/bench.txt" |
		sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
}
bare=$(median BareParse)
inv=$(median Inventory)
awk -v b="$bare" -v i="$inv" 'BEGIN { printf "inventory throughput / bare loop throughput = %.2f (bare %.0f ns/cert, inventory %.0f ns/cert)\n", b / i, b, i }'

command -v /usr/bin/time >/dev/null || { echo "install the 'time' package to measure peak memory" >&2; exit 0; }
for b in BareParse Inventory; do
	/usr/bin/time -f "peak RSS Benchmark$b: %M KiB" \
		"$out/audit.test" -test.run '^$' -test.bench "^Benchmark$b\$" -test.benchtime 3x >/dev/null
done
