# lib.sh -- what the Postfix benchmarks share, sourced from the top of the
# tree: their arguments ([--smoke] [BUILD_DIR] [N]; --smoke means N=10)
# and the programs they need.
#   bench_args NAME PROGRAM... "$@"  sets B (build dir), N, M (pl-mailout),
#   exports abs_top_srcdir/abs_top_builddir, and exits when a PROGRAM
#   (relative to the build dir) is missing.
bench_args() {
    local name=$1 progs=() smoke=0 f
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do progs+=("$1"); shift; done
    shift
    if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
    B=$(cd "${1:-build}" && pwd) || exit 1
    N=${2:-300}
    [ $smoke = 1 ] && N=10
    export abs_top_srcdir=$PWD abs_top_builddir=$B
    M=$B/tests/tools/pl-mailout
    for f in tests/tools/pl-mailout "${progs[@]}"; do
        [ -x "$B/$f" ] || { echo "$name: build $B/$f first (make -C $B check)" >&2; exit 1; }
    done
}
