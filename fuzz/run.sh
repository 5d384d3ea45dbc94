#!/usr/bin/env bash
# fuzz/run.sh -- build postlink's libFuzzer targets into build-fuzz/ (clang,
# -fsanitize=fuzzer,address,undefined; see fuzz/Makefile) and run each for a
# bounded time, starting from its committed seed corpus fuzz/corpus/NAME.
#
#   fuzz/run.sh                  every target, $FUZZ_SECONDS (default 15) s each
#   fuzz/run.sh 600              every target, 600 s each
#   fuzz/run.sh lmtp [600]       one target
#   fuzz/run.sh --list           the target names
#
# Each target leaves build-fuzz/fuzz_NAME.log and build-fuzz/fuzz_NAME.trs
# (":test-result: PASS|FAIL|SKIP", counted by ./test.sh).  Inputs that found
# new coverage are kept in build-fuzz/corpus/NAME for the next run, merged
# down to the ones that matter when there are more than 500 (the committed
# corpus is only read).  A crash, sanitizer report, leak or hang fails the target and
# leaves the input in build-fuzz/crashes/NAME-crash-<sha1> (or -leak-,
# -timeout-, -oom-); replay it with  build-fuzz/fuzz_NAME FILE.
# Exits non-zero if any target failed or could not be built.
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
OUT=${FUZZ_OUT:-$TOP/build-fuzz}
TARGETS="header address lmtp policy conf tag presence_request presence_answer milter smtp_reply"
TARGETS="$TARGETS sdp phone kwscan uidl pop3 probe imap"
TARGETS="$TARGETS psub push_req"
secs=${FUZZ_SECONDS:-15}
sel=$TARGETS

is_num() { case $1 in ''|*[!0-9]*) return 1;; esac; }
case ${1:-} in
--list) echo "$TARGETS"; exit 0 ;;
'') ;;
*)  if is_num "$1"; then secs=$1
    elif [[ " $TARGETS " == *" $1 "* ]]; then sel=$1; [ $# -ge 2 ] && secs=$2
    else echo "fuzz/run.sh: unknown target '$1' (one of: $TARGETS)" >&2; exit 2
    fi ;;
esac
is_num "$secs" && [ "$secs" -gt 0 ] || { echo "fuzz/run.sh: bad time '$secs'" >&2; exit 2; }

# Longest input per target: what its parser could meet, plus a margin.
max_len() {
    case $1 in
    lmtp) echo 65536 ;;
    milter) echo 70000 ;;           # past one 64 KB body chunk             # past a 2048-byte command line and the 16 KB test message cap
    policy) echo 70000 ;;           # past the 64 KB request limit
    header|conf) echo 16384 ;;
    tag|address) echo 4096 ;;
    presence_request) echo 1024 ;;  # the server reads 511 bytes
    presence_answer) echo 256 ;;    # the client reads 63
    sdp) echo 20000 ;;              # past the 16 KB SDP limit
    phone) echo 2048 ;;
    kwscan) echo 4096 ;;
    uidl|probe) echo 8192 ;;
    pop3) echo 16384 ;;             # a few responses of up to 1024-byte lines
    imap) echo 40000 ;;             # past the 16 KB text limit of one response
    smtp_reply) echo 16384 ;;       # a few replies of up to 2048-byte lines
    psub) echo 8192 ;;              # past the 4096-byte registration limit
    push_req) echo 4096 ;;          # a request line and fields within the 32 KB connection memory
    esac
}

trs() {                         # trs NAME PASS|FAIL|SKIP
    printf ':test-result: %s\n:global-test-result: %s\n:recheck: %s\n:copy-in-global-log: %s\n' \
        "$2" "$2" "$([ "$2" = PASS ] && echo no || echo yes)" "$([ "$2" = PASS ] && echo no || echo yes)" \
        > "$OUT/fuzz_$1.trs"
}

mkdir -p "$OUT/crashes"
for t in $sel; do rm -f "$OUT/fuzz_$t.trs"; done

if ! command -v clang >/dev/null; then
    echo "fuzz/run.sh: clang not found (Debian: clang and libclang-rt-14-dev, see scripts/install-deps.sh)" >&2
    for t in $sel; do trs "$t" SKIP; done
    exit 1
fi

# config.h: the main build's, or a configure run of our own.
if [ -f "$TOP/build/config.h" ]; then
    conf_dir=$TOP/build
else
    conf_dir=$OUT/conf
    if [ ! -f "$conf_dir/config.h" ]; then
        [ -x "$TOP/configure" ] || ./autogen.sh >/dev/null 2>&1
        mkdir -p "$conf_dir" && (cd "$conf_dir" && "$TOP/configure" -q >/dev/null) ||
            { echo "fuzz/run.sh: configure failed" >&2; for t in $sel; do trs "$t" FAIL; done; exit 1; }
    fi
fi

echo "fuzz: building $(echo $sel | wc -w) target(s) in $OUT"
if ! make -s -j"${FUZZ_JOBS:-2}" -f "$TOP/fuzz/Makefile" TOP="$TOP" OUT="$OUT" CONFIG_DIR="$conf_dir" \
        $(for t in $sel; do echo "$OUT/fuzz_$t"; done) > "$OUT/build.log" 2>&1; then
    cat "$OUT/build.log" >&2
    echo "fuzz/run.sh: build failed" >&2
    for t in $sel; do trs "$t" FAIL; done
    exit 1
fi

failed=0
for t in $sel; do
    dict=$TOP/fuzz/dict/$t.dict
    mkdir -p "$OUT/corpus/$t"
    # -close_fd_mask=2: the code under test logs every refusal to stderr;
    # libFuzzer and the sanitizers still report on their own copy of it.
    "$OUT/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -close_fd_mask=2 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes/$t-" $([ -f "$dict" ] && echo "-dict=$dict") \
        "$OUT/corpus/$t" "$TOP/fuzz/corpus/$t" > "$OUT/fuzz_$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz_$t.log" | tail -1)
    if [ $rc = 0 ]; then
        trs "$t" PASS
        # Keep the kept corpus small: replaying thousands of inputs would
        # eat the next short run.  -merge=1 keeps those that add coverage.
        if [ "$(ls "$OUT/corpus/$t" | wc -l)" -gt 500 ]; then
            rm -rf "$OUT/corpus/$t.new" && mkdir "$OUT/corpus/$t.new" &&
            "$OUT/fuzz_$t" -merge=1 -timeout=10 -max_len="$(max_len "$t")" -close_fd_mask=2 \
                "$OUT/corpus/$t.new" "$OUT/corpus/$t" > "$OUT/fuzz_$t.merge.log" 2>&1 &&
            rm -rf "$OUT/corpus/$t" && mv "$OUT/corpus/$t.new" "$OUT/corpus/$t"
            rm -rf "$OUT/corpus/$t.new"
        fi
        echo "fuzz_$t: PASS (${runs:-?} inputs in $secs s, corpus $(ls "$OUT/corpus/$t" | wc -l) + $(ls "$TOP/fuzz/corpus/$t" | wc -l) committed)"
    else
        trs "$t" FAIL
        failed=$((failed + 1))
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$OUT/fuzz_$t.log" | tail -1)
        echo "fuzz_$t: FAIL (exit $rc); log: $OUT/fuzz_$t.log"
        grep -m1 -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$OUT/fuzz_$t.log" | sed 's/^/    /'
        if [ -n "$art" ]; then
            echo "    crashing input: $art"
            echo "    replay: $OUT/fuzz_$t $art"
        fi
    fi
done
[ $failed = 0 ]
