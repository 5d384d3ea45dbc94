#!/usr/bin/env bash
# milters.sh -- bench/run milters: what the milter chain costs, measured side
# by side on one private Postfix 3.7 (tests/harness) relaying to smtp-sink
# on 127.0.0.1.  Every configuration (bare Postfix, do-nothing libmilter
# milters, each postlink milter, all of them as contrib/ wires them, the
# combined process, the routing filter postlink-route alone and in the
# chain, OpenDKIM signing) has its own smtpd listener with its
# own smtpd_milters; R rounds each run every configuration and message
# shape once, in a rotated order.  A run is timed from the first connect
# until smtp-sink has received its last message; CPU comes from cgroup v1
# cpuacct (Postfix, the milters, load client + sink), or /proc as a
# fallback.  Ratios are per round against that round's bare run of the same
# shape and listener.  Results: bench/results/latest.{md,json}.
#
# usage: bench/run milters [--rounds R] [--n N] [--smoke] [--only cfg,cfg]
#                          [--build-dir DIR] [--out DIR]
#   --n N        messages per run for the 2 KB shapes (default 800; 100 KB: N/4)
#   --smoke      1 round, 20 messages, output in a temp dir; uses
#                $abs_top_builddir (the test suite's build) when set
#   --only       these configurations (and the bare ones they compare to)
#   --build-dir  an existing build to use instead of building build-bench/
#   --out DIR    write latest.md and latest.json there (default
#                bench/results/, or a new temp dir with --smoke)
#   --queue-tmpfs  Postfix's queue on a tmpfs: no queue-file fsync, so the
#                run is CPU-bound and the disk's latency is not in the
#                ratios (postlink's store stays on disk)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
rounds=5 n=800 smoke=0 only="" bdir="" n_set=0 OUT="" qtmpfs=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift ;;
    --n) n=$2; n_set=1; shift ;;
    --smoke) smoke=1 ;;
    --only) only=$2; shift ;;
    --build-dir) bdir=$2; shift ;;
    --out) OUT=$2; shift ;;
    --queue-tmpfs) qtmpfs=1 ;;
    *) echo "bench/run milters: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done
case "$rounds$n" in *[!0-9]*) echo "bench/run milters: --rounds and --n take numbers" >&2; exit 64 ;; esac
[ "$rounds" -ge 1 ] && [ "$n" -ge 1 ] || { echo "bench/run milters: --rounds and --n must be >= 1" >&2; exit 64; }
if [ $smoke = 1 ]; then
    rounds=1
    [ $n_set = 1 ] || n=20
fi
n_big=$(( n / 4 > 0 ? n / 4 : 1 ))
[ $smoke = 1 ] && [ $n_set = 0 ] && n_big=$n

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (private Postfix, cgroups, packages)"

# ---- what to install and build -----------------------------------------
if [ $smoke = 0 ]; then
    need=""
    command -v opendkim >/dev/null || need="$need opendkim"
    command -v opendkim-genkey >/dev/null || need="$need opendkim-tools"
    if [ -n "$need" ]; then
        say "installing$need"
        [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; rc_made=1; }
        DEBIAN_FRONTEND=noninteractive apt-get -y -q install $need >/dev/null || say "apt-get install$need failed"
        [ "${rc_made-}" = 1 ] && rm -f /usr/sbin/policy-rc.d
    fi
fi
[ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/smtp-sink ] || die "smtp-source/smtp-sink missing (package postfix)"
BENCH_PROGS="bench/ref_milter bench/pl-smtp-load tests/sink/postlink-sink"
. "$SRC/bench/build.sh"
bench_build $BENCH_PROGS
bench_need $BENCH_PROGS milters/sync/postlink-sync milters/tag/postlink-tag milters/route/postlink-route \
    agents/sync/postlink-syncd ctl/postlinkctl

# ---- the configurations --------------------------------------------------
# name|listener|milters ("" = none; names of milter sockets below)
CONFIGS="bare|mx|
ref1|mx|ref1
ref2|mx|ref1 ref2
sync|mx|sync
tag|mx|tag
all|mx|tag sync
all-combined|mx|combined
all-libmilter|mx|tag-lm sync-lm
all-combined-libmilter|mx|combined-lm
route|mx|route
route-kw|mx|route-kw
all-route|mx|tag route sync
all-route-combined|mx|combined-route
all-mirror-combined|mx|combined-mirror
opendkim|mx|opendkim
sub-bare|sub|
sub-all|sub|tag sync
sub-all-combined|sub|combined"
MX_SHAPES="2k real2k real100k"
SUB_SHAPES="real2k real100k"
if [ -n "$only" ]; then
    sel=""
    for c in ${only//,/ }; do
        grep -q "^$c|" <<<"$CONFIGS" || die "--only: no configuration '$c'"
        case $c in sub-*) sel="$sel sub-bare" ;; *) sel="$sel bare" ;; esac
        sel="$sel $c"
    done
    CONFIGS=$(while IFS='|' read -r c l m; do case " $sel " in *" $c "*) echo "$c|$l|$m" ;; esac; done <<<"$CONFIGS")
fi

# ---- the private servers --------------------------------------------------
. "$SRC/tests/harness/harness.sh"
. "$SRC/tests/harness/sync.sh"
. "$SRC/tests/harness/xmpp.sh"
h_init || exit 1
CG_ROOT=/sys/fs/cgroup/cpuacct CG_GROUPS="postfix milters load" CPU_SRC=""
cg_cleanup() {
    local g p
    [ "$CPU_SRC" = cgroup ] || return 0
    for g in $CG_GROUPS; do
        [ -d "$CG_ROOT/plbench-$$-$g" ] || continue
        while read -r p; do echo "$p" >"$CG_ROOT/cgroup.procs" 2>/dev/null; done <"$CG_ROOT/plbench-$$-$g/cgroup.procs"
        rmdir "$CG_ROOT/plbench-$$-$g" 2>/dev/null || say "could not remove cgroup $CG_ROOT/plbench-$$-$g"
    done
}
QT=""
q_cleanup() { [ -n "$QT" ] || return 0; umount "$QT" 2>/dev/null && rmdir "$QT"; }
bm_on_exit() { local rc=$?; (exit $rc); h__on_exit; cg_cleanup; q_cleanup; return $rc; }
trap bm_on_exit EXIT
D=$H_DIR/bench
mkdir -p "$D/msg"

# CPU accounting: one cgroup per group, or the pids' /proc counters.
# (PL_BENCH_CPU=proc forces the fallback.)
if [ "${PL_BENCH_CPU-}" != proc ] && [ -w "$CG_ROOT" ] && mkdir "$CG_ROOT/plbench-$$-postfix" 2>/dev/null; then
    CPU_SRC=cgroup
    mkdir "$CG_ROOT/plbench-$$-milters" "$CG_ROOT/plbench-$$-load" || die "cannot make cgroups"
else
    CPU_SRC=proc
    say "cgroup v1 cpuacct not used: CPU from /proc/PID/stat (live processes + reaped children; load = smtp-sink only)"
fi
declare -A CG_PIDS
cg_add() {   # cg_add GROUP PID...: the processes (and their children) count for GROUP
    local g=$1 p
    shift
    for p in $(h__descendants "$@"); do
        CG_PIDS[$g]="${CG_PIDS[$g]-} $p"
        [ "$CPU_SRC" = cgroup ] && echo "$p" >"$CG_ROOT/plbench-$$-$g/cgroup.procs" 2>/dev/null
    done
    return 0
}
cg_ticks() { # cg_ticks GROUP: "USER SYSTEM" clock ticks used so far by GROUP (cgroup only)
    if [ "$CPU_SRC" = cgroup ]; then
        awk '{ v[$1] = $2 } END { print v["user"] + 0, v["system"] + 0 }' "$CG_ROOT/plbench-$$-$1/cpuacct.stat"
    else
        echo "0 0"
    fi
}
cg_ns() {    # cg_ns GROUP: CPU nanoseconds used so far by GROUP
    if [ "$CPU_SRC" = cgroup ]; then
        cat "$CG_ROOT/plbench-$$-$1/cpuacct.usage"
        return
    fi
    local p s f t=0 hz
    hz=$(getconf CLK_TCK)
    for p in $(h__descendants ${CG_PIDS[$1]-}); do
        read -r s 2>/dev/null <"/proc/$p/stat" || continue
        s=${s##*) }; f=($s)
        t=$(( t + f[11] + f[12] + f[13] + f[14] ))
    done
    echo $(( t * 1000000000 / hz ))
}
# the load client joins the load cgroup before it starts
in_load() { if [ "$CPU_SRC" = cgroup ]; then sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG_ROOT/plbench-$$-load" "$@"; else "$@"; fi; }

H_USERS="alice bob"
h_start_sink && h_start_dovecot || exit 1      # postlink-sink: the set-up checks
SS_PORT=$(h_free_port) || exit 1
h_spawn smtp-sink "$D/smtp-sink.out" smtp-sink -c -u nobody "127.0.0.1:$SS_PORT" 1024
SS_PID=$H_LAST_PID
h_wait_port "$SS_PORT" 10 "$SS_PID" || die "smtp-sink did not start"
cg_add load "$SS_PID"

# postlink's store and postlink.conf (both capabilities), no XMPP server:
# no benchmark message carries a valid tag, so none asks for presence.
export POSTLINK_XMPP_DOMAIN=chat.$POSTLINK_DOMAIN HX_MUC_DOMAIN=conference.chat.$POSTLINK_DOMAIN
POSTLINK_XMPP_PORT=$(h_free_port) || exit 1
export POSTLINK_XMPP_PORT
hs_setup && hx_setup || exit 1
ALICE=alice@$POSTLINK_DOMAIN
"$POSTLINKCTL" messenger link "$ALICE" "alice@$POSTLINK_XMPP_DOMAIN" >/dev/null || die "messenger link failed"

# postlink-route (capability 3).  Every benchmark recipient is relayed over
# smtp ({rcpt_mailer} smtp: to smtp-sink), so postlink-route does its whole
# work: keeps header and body, reads its tables in the store per message.
# The shared store has empty routing tables (route, all-route,
# all-route-combined: mail with no number).  route-kw has a store of its
# own with 50 keywords and 10 map rows, none matching a benchmark
# message: with keywords, the content rules decode the message with GMime.
# Clients on 127.0.0.1 are strangers (as on an MX): numbers only by map
# and keyword.  No FILTER in milter_header_checks: a message that got a
# number would reach the sink with X-Postlink-Route (checked below).
cat >>"$POSTLINK_CONF" <<CONF
route_milter_socket = unix:$H_SYNC/route-milter.sock
route_country_code = 81
route_trusted_networks = 127.0.0.99
CONF
KW=$D/route-kw
mkdir -p "$KW" && chmod 0711 "$KW"
sed "s|^db_home = .*|db_home = $KW/db|" "$POSTLINK_CONF" >"$KW/postlink.conf"
"$POSTLINKCTL" -c "$KW/postlink.conf" init >"$KW/init.log" 2>&1 || { cat "$KW/init.log" >&2; die "init of route-kw's store failed"; }
for i in $(seq -w 1 50); do
    "$POSTLINKCTL" -c "$KW/postlink.conf" route keyword add "Projekt Quokka-$i" "050-1234-56$i" >/dev/null ||
        die "route keyword add failed"
done
for i in $(seq -w 1 10); do
    "$POSTLINKCTL" -c "$KW/postlink.conf" route map add "partner-$i.example" "050-1234-57$i" >/dev/null ||
        die "route map add failed"
done
nkw=$("$POSTLINKCTL" -c "$KW/postlink.conf" route keyword list | grep -c .)
nmap=$("$POSTLINKCTL" -c "$KW/postlink.conf" route map list | grep -c .)
[ "$nkw.$nmap" = 50.10 ] || die "route-kw's tables: $nkw keywords and $nmap map rows, not 50 and 10"

# The milters: name -> socket, and how to start each one.
declare -A SOCK START SKIP
S=$H_SYNC
SOCK[ref1]=$D/ref1.sock SOCK[ref2]=$D/ref2.sock
SOCK[sync]=$S/sync-milter.sock SOCK[tag]=$S/tag-milter.sock
SOCK[sync-lm]=$S/sync-lm.sock SOCK[tag-lm]=$S/tag-lm.sock
SOCK[combined]=$S/combined.sock SOCK[combined-lm]=$S/combined-lm.sock
SOCK[opendkim]=$D/opendkim.sock
SOCK[route]=$H_SYNC/route-milter.sock SOCK[route-kw]=$KW/route-milter.sock
SOCK[combined-route]=$S/combined-route.sock SOCK[combined-mirror]=$S/combined-mirror.sock
SYNC=$B/milters/sync/postlink-sync TAG=$B/milters/tag/postlink-tag COMB=$B/milters/combined/postlink-milter
ROUTE=$B/milters/route/postlink-route
START[ref1]="$B/bench/ref_milter unix:${SOCK[ref1]}"
START[ref2]="$B/bench/ref_milter unix:${SOCK[ref2]}"
START[sync-lm]="$SYNC -f -o milter_engine=libmilter -o sync_milter_socket=unix:${SOCK[sync-lm]}"
START[tag-lm]="$TAG -f -o milter_engine=libmilter -o tag_milter_socket=unix:${SOCK[tag-lm]}"
START[combined]="$COMB -f -o milter_socket=unix:${SOCK[combined]} -o milter_filters=tag,sync"
START[combined-lm]="$COMB -f -o milter_engine=libmilter -o milter_socket=unix:${SOCK[combined-lm]} -o milter_filters=tag,sync"
START[opendkim]="opendkim -f -x $D/opendkim.conf"
START[route]="$ROUTE -f"
START[route-kw]="$ROUTE -f -c $KW/postlink.conf -o route_milter_socket=unix:${SOCK[route-kw]}"
START[combined-route]="$COMB -f -o milter_socket=unix:${SOCK[combined-route]} -o milter_filters=tag,route,sync"
# the mirror filter (capability 2) in front: on a listener other than the
# mirror's it only removes X-Postlink-Mirror fields strangers wrote
START[combined-mirror]="$COMB -f -o milter_socket=unix:${SOCK[combined-mirror]} -o milter_filters=mirror,tag,sync"
if [ ! -x "$COMB" ]; then
    SKIP[combined-route]="skipped: BUILD/milters/combined/postlink-milter not built"
elif ! "$COMB" -n -o milter_socket=unix:${SOCK[combined-route]} -o milter_filters=tag,route,sync >"$D/combined-route-check.log" 2>&1; then
    SKIP[combined-route]="skipped: postlink-milter -n -o milter_filters=tag,route,sync fails: $(grep -m1 error "$D/combined-route-check.log" | cut -c1-120)"
fi
if [ ! -x "$COMB" ]; then
    SKIP[combined]="skipped: BUILD/milters/combined/postlink-milter not built"
    SKIP[combined-lm]=${SKIP[combined]}
elif ! "$COMB" -n -o milter_socket=unix:${SOCK[combined]} -o milter_filters=tag,sync >"$D/combined-check.log" 2>&1; then
    SKIP[combined]="skipped: postlink-milter -n -o milter_socket=... -o milter_filters=tag,sync fails: $(grep -m1 error "$D/combined-check.log" | cut -c1-120)"
    SKIP[combined-lm]=${SKIP[combined]}
fi
if ! "$SYNC" -n -o milter_engine=libmilter >"$D/engine-check.log" 2>&1; then
    SKIP[sync-lm]="skipped: postlink.conf parameter milter_engine unknown (postlink-sync -n fails)"
    SKIP[tag-lm]=${SKIP[sync-lm]}
    [ -n "${SKIP[combined-lm]-}" ] || SKIP[combined-lm]=${SKIP[sync-lm]}
fi
DKIM_DOM=bench.example
if command -v opendkim >/dev/null && command -v opendkim-genkey >/dev/null; then
    mkdir -p "$D/dkim"
    opendkim-genkey -b 2048 -d "$DKIM_DOM" -s bench -D "$D/dkim" >/dev/null 2>&1 || die "opendkim-genkey failed"
    chmod 0600 "$D/dkim/bench.private"
    cat >"$D/opendkim.conf" <<EOF
# OpenDKIM for bench/run milters: signs mail from $DKIM_DOM (2048-bit RSA)
Mode s
Domain $DKIM_DOM
Selector bench
KeyFile $D/dkim/bench.private
Socket local:${SOCK[opendkim]}
UMask 000
Syslog no
Canonicalization relaxed/simple
InternalHosts 127.0.0.1
# the key lives in a temp dir under /tmp (world-writable, sticky)
RequireSafeKeys no
EOF
else
    SKIP[opendkim]="skipped: opendkim not installed (apt-get install opendkim opendkim-tools)"
fi
cfg_skip() {   # cfg_skip MILTERS: why a configuration cannot run, or nothing
    local m
    for m in $1; do [ -n "${SKIP[$m]-}" ] && { echo "${SKIP[$m]}"; return; }; done
}

# One smtpd listener per configuration, on its own port.
declare -A PORT
# No parameter may be given twice in main.cf: postlogd logs the "overriding
# earlier entry" warning through itself and hangs.  So the harness's relayhost
# (H_SINK_PORT) becomes smtp-sink, and this replaces what hs_setup/hx_setup
# put in H_POSTFIX_MAIN_EXTRA.
CHECK_PORT=$H_SINK_PORT H_SINK_PORT=$SS_PORT
H_POSTFIX_MAIN_EXTRA="# bench/run milters: every listener names its own milters; the MX mail for
# $POSTLINK_DOMAIN and the submitted mail go to smtp-sink, the set-up checks
# (check.invalid) to postlink-sink.
smtpd_milters =
milter_protocol = 6
milter_connect_timeout = 5s
# a listener's smtpd processes stay between its runs (a round can take
# longer than the default 100 s), so no run pays their start-up alone
max_idle = 1200s
relay_domains = check.invalid
transport_maps = inline:{ sync.postlink.invalid=lmtp:unix:$H_SYNC/syncd.sock, $POSTLINK_DOMAIN=smtp:[127.0.0.1]:$SS_PORT, check.invalid=smtp:[127.0.0.1]:$CHECK_PORT }"
while IFS='|' read -r c l m; do
    PORT[$c]=$(h_free_port) || exit 1
    ml=""
    for x in $m; do ml="$ml${ml:+,}unix:${SOCK[$x]}"; done
    if [ "$l" = mx ]; then
        opts="-o smtpd_sasl_auth_enable=no"
    else
        opts="-o smtpd_sasl_auth_enable=yes -o smtpd_tls_security_level=none -o smtpd_tls_auth_only=no
  -o smtpd_sasl_security_options=noanonymous -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
    fi
    H_POSTFIX_MASTER_EXTRA="$H_POSTFIX_MASTER_EXTRA
127.0.0.1:${PORT[$c]} inet n - n - - smtpd
  -o syslog_name=postfix/b-$c -o smtpd_milters=$ml $opts"
done <<<"$CONFIGS"
if [ $qtmpfs = 1 ]; then
    QT=$(mktemp -d /tmp/postlink-bench-queue.XXXXXX)
    mount -t tmpfs -o size=512m,mode=0755 tmpfs "$QT" || die "cannot mount a tmpfs for the queue"
    mkdir -p "$H_DIR/postfix" && ln -s "$QT" "$H_DIR/postfix/queue"
    say "Postfix's queue on a tmpfs ($QT)"
fi
h_start_postfix || exit 1
PF_PID=$(tr -dc 0-9 <"$H_DIR/postfix/queue/pid/master.pid")
cg_add postfix "$PF_PID"

# Start every milter a selected configuration needs.
hs_start || exit 1
hx_start_tag || exit 1
cg_add milters "$HS_MILTER_PID" "$HX_TAG_PID"
needed=$(while IFS='|' read -r c l m; do echo $m; done <<<"$CONFIGS" | tr ' ' '\n' | sort -u)
for x in $needed; do
    case $x in sync | tag) continue ;; esac
    [ -n "${SKIP[$x]-}" ] && continue
    rm -f "${SOCK[$x]}"
    h_spawn "milter-$x" "$D/$x.log" ${START[$x]}
    pid=$H_LAST_PID
    hs__wait_socket "${SOCK[$x]}" "$pid" || { tail -n 5 "$D/$x.log" >&2; die "milter $x did not start"; }
    cg_add milters "$pid"
done

# The message shapes: smtp-source's own (2k) and the realistic list mail.
SENDER=list-author@$DKIM_DOM RCPT=alice@$POSTLINK_DOMAIN OUTRCPT=friend@elsewhere.example
bash "$SRC/bench/msg.sh" 2048 "$SENDER" "$RCPT" >"$D/msg/mx-real2k.eml"
bash "$SRC/bench/msg.sh" 102400 "$SENDER" "$RCPT" >"$D/msg/mx-real100k.eml"
bash "$SRC/bench/msg.sh" 2048 "$ALICE" "$OUTRCPT" >"$D/msg/sub-real2k.eml"
bash "$SRC/bench/msg.sh" 102400 "$ALICE" "$OUTRCPT" >"$D/msg/sub-real100k.eml"
LOAD=$B/bench/pl-smtp-load

# ---- set-up checks: the milters do their work ------------------------------
NOTES=()
check_msg() {   # check_msg CFG WHAT [!]PATTERN LISTENER-ARGS...: one message to postlink-sink
    local c=$1 what=$2 pat=$3 before f
    shift 3
    [ -n "${PORT[$c]-}" ] && [ -z "$(cfg_skip "$(cfg_milters "$c")")" ] || return 0
    before=$(h_count_sink_files)
    if [ "$1" = smtp-source ]; then
        set -- smtp-source -m 1 -l 2048 -f "$SENDER" -t verify@check.invalid
    else
        set -- "$LOAD" -s 1 -m 1 "$@"
    fi
    if ! "$@" "127.0.0.1:${PORT[$c]}" >/dev/null 2>"$D/check.err" ||
        ! h_wait_sink_files $((before + 1)) 15 2>/dev/null; then
        NOTES+=("check FAILED: $c: message not delivered: $(head -c 200 "$D/check.err")")
        return 0
    fi
    f=$(h_sink_files | tail -n 1)
    case $pat in
    !*) if grep -q "${pat#!}" "$f"; then NOTES+=("check FAILED: $c did not $what (${pat#!} found)")
        else NOTES+=("check: $c $what (no ${pat#!})"); fi ;;
    *) if grep -q "$pat" "$f"; then NOTES+=("check: $c $what (header $pat found)")
       else NOTES+=("check FAILED: $c did not $what (no $pat)"); fi ;;
    esac
}
cfg_milters() { grep "^$1|" <<<"$CONFIGS" | cut -d'|' -f3; }
bash "$SRC/bench/msg.sh" 2048 "$ALICE" verify@check.invalid >"$D/msg/check-sub.eml"
bash "$SRC/bench/msg.sh" 2048 "$SENDER" verify@check.invalid >"$D/msg/check-mx.eml"
check_msg sub-all "tag submitted mail" '^X-Postlink-Tag:' -f "$ALICE" -t verify@check.invalid \
    -F "$D/msg/check-sub.eml" -a "$ALICE:$POSTLINK_DEMO_PASS"
check_msg sub-all-combined "tag submitted mail" '^X-Postlink-Tag:' -f "$ALICE" -t verify@check.invalid \
    -F "$D/msg/check-sub.eml" -a "$ALICE:$POSTLINK_DEMO_PASS"
check_msg opendkim "sign the realistic message" "[[:space:];]s=bench;" -f "$SENDER" -t verify@check.invalid \
    -F "$D/msg/check-mx.eml"
check_msg opendkim "sign smtp-source's message" "[[:space:];]s=bench;" smtp-source
# postlink-route: no benchmark message gets a number (each shape through each
# routing configuration: no X-Postlink-Route at the sink), and, as a
# control, a message naming a keyword does get one (route-kw: one of its 50;
# the others: a keyword added to the shared store for the check alone).
bash "$SRC/bench/msg.sh" 102400 "$SENDER" verify@check.invalid >"$D/msg/check-mx100k.eml"
kw_msg() { awk -v w="$1" '{ print } /^\r?$/ && !done { printf "Our reference: %s\r\n", w; done = 1 }' "$D/msg/check-mx.eml"; }
kw_msg "Projekt Quokka-17" >"$D/msg/check-kw.eml"
kw_msg "Projekt Kontrolle" >"$D/msg/check-ctl.eml"
"$POSTLINKCTL" route keyword add "Projekt Kontrolle" 050-1234-5699 >/dev/null || die "route keyword add failed"
for c in route all-route all-route-combined; do
    check_msg "$c" "route a message naming a keyword (control)" '^X-Postlink-Route:' -f "$SENDER" \
        -t verify@check.invalid -F "$D/msg/check-ctl.eml"
done
"$POSTLINKCTL" route keyword del "Projekt Kontrolle" >/dev/null || die "route keyword del failed"
check_msg route-kw "route a message naming a keyword (control)" '^X-Postlink-Route:' -f "$SENDER" \
    -t verify@check.invalid -F "$D/msg/check-kw.eml"
for c in route route-kw all-route all-route-combined; do
    check_msg "$c" "leave smtp-source's message without a number" '!^X-Postlink-Route:' smtp-source
    check_msg "$c" "leave the realistic 2 KB message without a number" '!^X-Postlink-Route:' -f "$SENDER" \
        -t verify@check.invalid -F "$D/msg/check-mx.eml"
    check_msg "$c" "leave the realistic 100 KB message without a number" '!^X-Postlink-Route:' -f "$SENDER" \
        -t verify@check.invalid -F "$D/msg/check-mx100k.eml"
done
route_hits() { cat "$D"/route.log "$D"/route-kw.log "$D"/combined-route.log 2>/dev/null | grep -c ': to postlink-sipd$'; }
ROUTE_HITS0=$(route_hits)

# ---- the runs --------------------------------------------------------------
sink_count() { local s; s=$(tail -c 80 "$D/smtp-sink.out" 2>/dev/null); s=${s##*mesg=}; s=${s%%[!0-9]*}; echo "${s:-0}"; }
us() { echo "${EPOCHREALTIME/./}"; }
RES=$D/runs.tsv
: >"$RES"
failed=0
run_one() {   # run_one ROUND CFG LISTENER SHAPE
    local r=$1 c=$2 l=$3 shape=$4 got cnt base t0 tc t1 end rc=0 off conns ms mp ml p0 m0 l0 p1 m1 l1 warn
    cnt=$n
    case $shape in *100k) cnt=$n_big ;; esac
    base=$(sink_count)
    off=$(stat -c %s "$H_DIR/postfix/maillog")
    p0=$(cg_ns postfix) m0=$(cg_ns milters) l0=$(cg_ns load)
    read -r mu0 ms0 <<<"$(cg_ticks milters)"
    t0=$(us)
    case $shape in
    2k) in_load smtp-source -s 10 -m "$cnt" -l 2048 -f "$SENDER" -t "$RCPT" "127.0.0.1:${PORT[$c]}" \
            >"$D/client.log" 2>&1 || rc=$? ;;
    *) if [ "$l" = sub ]; then
           in_load "$LOAD" -s 10 -m "$cnt" -f "$ALICE" -t "$OUTRCPT" -F "$D/msg/sub-$shape.eml" \
               -a "$ALICE:$POSTLINK_DEMO_PASS" "127.0.0.1:${PORT[$c]}" >"$D/client.log" 2>&1 || rc=$?
       else
           in_load "$LOAD" -s 10 -m "$cnt" -f "$SENDER" -t "$RCPT" -F "$D/msg/mx-$shape.eml" \
               "127.0.0.1:${PORT[$c]}" >"$D/client.log" 2>&1 || rc=$?
       fi ;;
    esac
    tc=$(us)
    end=$(( tc + 60000000 + cnt * 200000 ))
    until [ "$(sink_count)" -ge $((base + cnt)) ]; do
        [ "$(us)" -ge $end ] && break
        sleep 0.01
    done
    t1=$(us)
    p1=$(cg_ns postfix) m1=$(cg_ns milters) l1=$(cg_ns load)
    read -r mu1 ms1 <<<"$(cg_ticks milters)"
    got=$(( $(sink_count) - base ))
    conns=$(tail -c +$((off + 1)) "$H_DIR/postfix/maillog" | grep -c "postfix/b-$c/smtpd\[[0-9]*\]: connect from")
    warn=$(tail -c +$((off + 1)) "$H_DIR/postfix/maillog" | grep -c -E 'warning: .*milter|milter-reject|reject:')
    if [ $rc != 0 ] || [ "$got" -lt "$cnt" ]; then
        say "round $r $c $shape: FAILED (client exit $rc, $got of $cnt at the sink); $(tail -n 3 "$D/client.log" | tr '\n' ' ')"
        failed=$((failed + 1))
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$l" "$shape" "$cnt" "$got" \
        $((t1 - t0)) $((p1 - p0)) $((m1 - m0)) $((l1 - l0)) "$conns" "$warn" $((tc - t0)) \
        $((mu1 - mu0)) $((ms1 - ms0)) >>"$RES"
    printf 'bench: round %s %-24s %-9s %5d msgs %7.1f msg/s (client done after %.2f s of %.2f s)\n' \
        "$r" "$c" "$shape" "$got" "$(awk -v n="$got" -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", (t > 0 ? n * 1e6 / t : 0) }')" \
        "$(awk -v t=$((tc - t0)) 'BEGIN { printf "%.2f", t / 1e6 }')" "$(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", t / 1e6 }')" >&2
    # settle: the queue is empty, nothing left over for the next run
    end=$(( $(us) + 10000000 ))
    while [ -n "$(find "$H_DIR/postfix/queue/active" "$H_DIR/postfix/queue/incoming" -type f 2>/dev/null | head -n 1)" ]; do
        [ "$(us)" -ge $end ] && break
        sleep 0.05
    done
    sleep 0.2
}

mapfile -t CFG_LINES <<<"$CONFIGS"
ncfg=${#CFG_LINES[@]}
runnable=()
for line in "${CFG_LINES[@]}"; do
    IFS='|' read -r c l m <<<"$line"
    why=$(cfg_skip "$m")
    if [ -n "$why" ]; then say "$c: $why"; printf '%s\t%s\n' "$c" "$why" >>"$D/skipped.tsv"; continue; fi
    runnable+=("$line")
done
: >>"$D/skipped.tsv"
say "CPU accounting: $CPU_SRC; $rounds round(s), $n messages per 2 KB run, $n_big per 100 KB run"
# One unmeasured warm-up pass (not with --smoke): every listener's smtpd
# processes, cleanup, trivial-rewrite and the smtp client to the sink are
# running before the first measured run, whichever configuration it is.
if [ $smoke = 0 ]; then
    RES_MAIN=$RES RES=$D/warmup.tsv n_main=$n n_big_main=$n_big
    n=$(( n < 100 ? n : 100 )) n_big=$(( n_big < 25 ? n_big : 25 ))
    for line in "${runnable[@]}"; do
        IFS='|' read -r c l m <<<"$line"
        shapes=$MX_SHAPES
        [ "$l" = sub ] && shapes=$SUB_SHAPES
        for shape in $shapes; do run_one warmup "$c" "$l" "$shape"; done
    done
    RES=$RES_MAIN n=$n_main n_big=$n_big_main
fi
T_START=$(date -u +%FT%TZ) LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
    k=${#runnable[@]}
    for i in $(seq 0 $((k - 1))); do
        IFS='|' read -r c l m <<<"${runnable[$(( (i + (r - 1) * (k / rounds > 0 ? k / rounds : 1)) % k ))]}"
        shapes=$MX_SHAPES
        [ "$l" = sub ] && shapes=$SUB_SHAPES
        for shape in $shapes; do run_one "$r" "$c" "$l" "$shape"; done
    done
done

# Every benchmark message went through without a number: no routing
# decision in the postlink-route logs since the checks.
if [ -n "$(cfg_milters route)$(cfg_milters route-kw)$(cfg_milters all-route)$(cfg_milters all-route-combined)" ]; then
    k=$(( $(route_hits) - ROUTE_HITS0 ))
    if [ "$k" = 0 ] && [ "$ROUTE_HITS0" -gt 0 ]; then
        NOTES+=("check: postlink-route gave no benchmark message a number (its logs: $ROUTE_HITS0 decision(s) for the controls, none during the runs)")
    elif [ "$k" = 0 ]; then NOTES+=("check FAILED: postlink-route logged no decision even for the controls: the log check sees nothing"); failed=$((failed + 1))
    else NOTES+=("check FAILED: postlink-route gave $k benchmark message(s) a number during the runs"); failed=$((failed + 1)); fi
fi

# ---- the report ------------------------------------------------------------
if [ -z "$OUT" ]; then
    if [ $smoke = 1 ]; then OUT=$(mktemp -d /tmp/postlink-bench.XXXXXX); else OUT=$SRC/bench/results; fi
fi
mkdir -p "$OUT"
pf_version=$(postconf -c "$H_DIR/postfix/etc" -h mail_version 2>/dev/null)
dkim_version=$(opendkim -V 2>/dev/null | head -n 1)
printf '%s\n' "${NOTES[@]}" >"$D/notes.txt"
python3 "$SRC/bench/report.py" "$RES" "$D/skipped.tsv" "$D/notes.txt" "$OUT" \
    "nproc=$(nproc)" "postfix=$pf_version" "opendkim=${dkim_version:-not installed}" "date=$T_START" \
    "rounds=$rounds" "n=$n" "n_100k=$n_big" "cpu=$CPU_SRC" "smoke=$smoke" "queue=$([ $qtmpfs = 1 ] && echo tmpfs || echo disk)" \
    "load_start=$LOAD_START" "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" "build=$B" || die "report failed"
cat "$OUT/latest.md"
say "results in $OUT/latest.md and $OUT/latest.json"
[ $failed = 0 ] || die "$failed run(s) failed"
exit 0
