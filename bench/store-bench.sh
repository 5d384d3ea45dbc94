#!/usr/bin/env bash
# store-bench.sh -- transactions per second of the shared store: one writer
# and three concurrent writers, with synchronous commits (what postlink uses
# before it says "accepted") against DB_TXN_WRITE_NOSYNC and DB_TXN_NOSYNC
# side by side, printed as ratios to the synchronous run.  Each transaction
# is store_writer's: read-modify-write of a shared counter plus two puts.
#
# usage: bench/store-bench.sh [BUILD_DIR] [TXNS_PER_WRITER]   (defaults: build 5000)
#        bench/store-bench.sh --smoke   (tiny run, checks the output shape)
set -eu
cd "$(dirname "$0")/.."
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
B=${1:-build}
N=${2:-5000}
[ $smoke = 1 ] && N=200
W=$B/tests/unit/store_writer
[ -x "$W" ] || { echo "store-bench: build $W first (make -C $B check)" >&2; exit 1; }

run() {                        # run MODE WRITERS -> transactions per second
    local mode=$1 writers=$2 d i
    d=$(mktemp -d /tmp/postlink-bench.XXXXXX)
    "$W" -h "$d" -i init -n 1 >/dev/null 2>&1
    # each writer prints "<committed> <seconds of its commit loop>"
    for i in $(seq 1 "$writers"); do "$W" -h "$d" -i "$i" -n "$N" -m "$mode" -q 2>/dev/null & done \
        > "$d.out"
    wait
    awk '{ n += $1; if ($2 > t) t = $2 } END { printf "%.0f\n", n / t }' "$d.out"
    rm -rf "$d" "$d.out"
}

printf '%-14s %8s %12s %8s\n' mode writers txn/s ratio
for writers in 1 3; do
    base=$(run sync "$writers")
    for mode in sync write_nosync nosync; do
        if [ $mode = sync ]; then v=$base; else v=$(run $mode "$writers"); fi
        printf '%-14s %8d %12d %8.2f\n' $mode "$writers" "$v" "$(echo "$v $base" | awk '{print $1/$2}')"
    done
done
