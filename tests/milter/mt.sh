# mt.sh -- shared by the milter-level tests (tests/integration/t_milter_*.sh,
# sourced after tap.sh and harness.sh): run one miltertest(8) script from
# tests/milter/ and turn its lines into TAP results.
# mt_run SCRIPT [-D name=value]...: run a miltertest script; its "ok - " /
# "not ok - " lines become TAP results, "# " lines diagnostics; it must
# end with "done" and exit 0.  MT_VERBOSE=-vv shows the milter protocol.
mt_run() {
    local script=$1 out rc line done=0
    shift
    out=$(miltertest ${MT_VERBOSE-} -s "$abs_top_srcdir/tests/milter/$script" \
        -D lib="$abs_top_srcdir/tests/milter/mtlib.lua" "$@" 2>"$H_DIR/$script.stderr")
    rc=$?
    while IFS= read -r line; do
        case $line in
        "ok - "*) tap_ok "${line#ok - }" ;;
        "not ok - "*) tap_fail "${line#not ok - }" ;;
        "# "*) echo "$line" ;;
        done) done=1 ;;
        *) tap_diag "$script: $line" ;;
        esac
    done <<<"$out"
    if [ $rc = 0 ] && [ $done = 1 ]; then tap_ok "$script ran to its end"; else
        tap_fail "$script ran to its end (miltertest exit $rc)"
        sed "s/^/# $script: /" "$H_DIR/$script.stderr"
    fi
}

