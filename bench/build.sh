# build.sh -- sourced by the bench scripts: bench_build PROGS... finds or
# makes the build a benchmark runs (sets B and exports abs_top_srcdir and
# abs_top_builddir).  Uses $bdir when set (--build-dir); with --smoke
# ($smoke = 1) the test build $abs_top_builddir; else builds with -O2 in
# build-bench/.  PROGS are the extra programs to make (make check's).
# Needs SRC, smoke, bdir, say and die from the caller.
bench_build() {
    local progs=$*
    if [ -z "$bdir" ] && [ "$smoke" = 1 ] && [ -n "${abs_top_builddir-}" ]; then bdir=$abs_top_builddir; fi
    if [ -z "$bdir" ]; then
        bdir=$SRC/build-bench
        say "building with -O2 in $bdir"
        ( cd "$SRC" && { [ -x configure ] || ./autogen.sh >/dev/null 2>&1; } &&
          mkdir -p "$bdir" && cd "$bdir" &&
          { [ -f Makefile ] || ../configure -q CFLAGS=-O2; } &&
          make -s -j2 >/dev/null && make -s -j2 $progs >/dev/null ) || die "build in $bdir failed"
    fi
    B=$(cd "$bdir" && pwd) || die "no build dir $bdir"
    export abs_top_srcdir=$SRC abs_top_builddir=$B
}

# bench_need PROGRAM...: each built in $B, or the run stops.
bench_need() {
    local p
    for p in "$@"; do
        [ -x "$B/$p" ] || die "$B/$p not built (make -C $B check builds the bench programs)"
    done
}
