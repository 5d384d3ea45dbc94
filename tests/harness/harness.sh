# harness.sh -- bash library for postlink's integration tests and demo.
# Starts real servers on free 127.0.0.1 ports inside one temp dir ($H_DIR):
# postlink-sink (the "outside world"), Dovecot (IMAP/POP3, LMTP for local
# users, SASL for Postfix) and a private Postfix instance; stops them by PID.
# Source it, call h_init, then h_start_all. Needs root. See h_* below.

H_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${abs_top_srcdir:=$H_SRCDIR}"
: "${abs_top_builddir:=$abs_top_srcdir}"
H_PORT_REG=/tmp/postlink-harness-ports    # port reservations shared by concurrent runs
: "${H_USERS:=alice bob carol}"             # mailbox users' local parts (may be extended)

h__say() { printf '# harness: %s\n' "$*" >&2; }
h__ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }

# ---- lifecycle ---------------------------------------------------------

# h_init: temp dir, env defaults, and a trap that stops everything on exit.
h_init() {
    [ "$(id -u)" = 0 ] || { h__say "needs root (private Postfix, Dovecot)"; return 1; }
    H_DIR=$(mktemp -d /tmp/postlink-h.XXXXXX) || return 1
    chmod 0711 "$H_DIR"
    : >"$H_DIR/pids"; : >"$H_DIR/ports"
    export H_DIR H_KEEP=0
    export POSTLINK_DOMAIN=${POSTLINK_DOMAIN:-postlink.test}
    export POSTLINK_DEMO_USER=alice@$POSTLINK_DOMAIN
    export POSTLINK_DEMO_PASS=${POSTLINK_DEMO_PASS:-alice-demo-pw}
    export H_BOB_PASS=${H_BOB_PASS:-bob-pw} H_CAROL_PASS=${H_CAROL_PASS:-carol-pw}
    export POSTLINK_SINK_DIR=$H_DIR/sink POSTLINK_MAILDIR=$H_DIR/mail
    trap 'h__on_exit' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# h_keep: leave servers (and H_DIR) in place when the shell exits (demo up).
h_keep() { H_KEEP=1; }

h__on_exit() {
    local rc=$? IFS=$' \t\n'   # the trap may fire inside "IFS= read"
    set +eu
    [ "${H_KEEP-}" = 1 ] && return $rc
    h_stop_all "$H_DIR"
    if [ $rc -eq 0 ] && [ -z "${H_KEEP_DIR-}" ]; then
        rm -rf "$H_DIR"
    else
        h__say "kept $H_DIR (exit status $rc)"
    fi
    return $rc
}

# Start time of PID (field 22 of /proc/PID/stat), to never kill a reused PID.
h__start_time() {
    local s
    read -r s 2>/dev/null <"/proc/$1/stat" || return 1
    s=${s##*) }
    set -- $s
    echo "${20-}"
}

# h__alive PID [STARTTIME]: running, not a zombie, and (if given) the same
# process (exited daemons stay zombies for a while: kill -0 is not enough).
h__alive() {
    local s f
    read -r s 2>/dev/null <"/proc/$1/stat" || return 1
    s=${s##*) }
    f=($s)
    case ${f[0]} in Z | X) return 1 ;; esac
    [ -z "${2-}" ] || [ "${f[19]}" = "$2" ]
}

# h_register KIND PID: stop PID with the rest (for callers' own daemons too).
h_register() { echo "$1 $2 $(h__start_time "$2")" >>"$H_DIR/pids"; }

# h_spawn KIND LOG CMD...: run CMD in the background (stdin /dev/null,
# output to LOG, SIGHUP ignored) and register it; pid in H_LAST_PID.
h_spawn() {
    local kind=$1 log=$2
    shift 2
    ( trap '' HUP; exec "$@" ) </dev/null >>"$log" 2>&1 &
    H_LAST_PID=$!
    h_register "$kind" "$H_LAST_PID"
}

# All descendants of the given pids (one level per pass).
h__descendants() {
    local want=" $* " found=1 p pp s
    while [ $found = 1 ]; do
        found=0
        for s in /proc/[0-9]*/stat; do
            p=${s#/proc/}; p=${p%/stat}
            case $want in *" $p "*) continue ;; esac
            read -r pp 2>/dev/null <"$s" || continue
            pp=${pp##*) }; set -- $pp
            case $want in *" $2 "*) want="$want$p "; found=1 ;; esac
        done
    done
    echo $want
}

# h__strays DIR: harness servers of DIR that are running but not (yet)
# recorded, e.g. when a signal landed between a start and its h_register.
h__strays() {
    local dir=$1 f p a e
    for f in /proc/[0-9]*/cmdline; do
        p=${f#/proc/}; p=${p%/cmdline}
        mapfile -d '' -t a 2>/dev/null <"$f" || continue
        case "${a[0]-} ${a[*]:1}" in
        *dovecot\ *" $dir/dovecot/dovecot.conf"* | *postlink-sink\ *" $dir/sink"*) echo "$p" ;;
        */postfix/sbin/master\ *)
            mapfile -d '' -t e 2>/dev/null <"/proc/$p/environ" || continue
            case " ${e[*]} " in *" MAIL_CONFIG=$dir/"*) echo "$p" ;; esac ;;
        esac
    done
}

# h_stop_all [DIR]: stop every process recorded in DIR/pids (default H_DIR),
# stray harness servers of DIR, and all their children: Postfix via
# "postfix -c DIR stop", the others by SIGTERM; SIGKILL after 10 s. Works
# from another shell (demo.sh down).
h_stop_all() {
    local dir=${1:-$H_DIR} kind pid st live="" all="" end stopper="" p IFS=$' \t\n'
    [ -n "$dir" ] && [ -f "$dir/pids" ] || return 0
    while read -r kind pid st; do
        h__alive "$pid" "$st" && live="$live $pid"
    done <"$dir/pids"
    local strays="" allst=""
    for p in $(h__strays "$dir"); do
        case " $live " in *" $p "*) ;; *) strays="$strays $p" ;; esac
    done
    [ -n "$live$strays" ] && all=$(h__descendants $live $strays)
    for p in $all; do allst="$allst $p:$(h__start_time "$p")"; done
    while read -r kind pid st; do
        case " $live " in *" $pid "*) ;; *) continue ;; esac
        if [ "$kind" = postfix ]; then
            postfix -c "$dir/postfix/etc" stop >/dev/null 2>&1 &
            stopper="$stopper $!"
        else
            kill -TERM "$pid" 2>/dev/null
        fi
    done <"$dir/pids"
    if [ -n "$strays" ]; then
        for p in $strays; do h__say "stopping unrecorded $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"; done
        kill -TERM $strays 2>/dev/null
    fi
    end=$(( $(h__ms) + 10000 ))
    while :; do
        live=""
        for p in $allst; do h__alive "${p%:*}" "${p#*:}" && live="$live ${p%:*}"; done
        [ -z "$live" ] && break
        if [ "$(h__ms)" -ge $end ]; then
            h__say "still alive after 10 s, SIGKILL:$live"
            kill -KILL $live 2>/dev/null
            end=$(( $(h__ms) + 5000 ))
        fi
        sleep 0.05
    done
    for p in $stopper $all; do wait "$p" 2>/dev/null; done
    # Release this dir's port reservations.
    while read -r p; do
        [ "$(readlink "$H_PORT_REG/$p" 2>/dev/null)" = "$dir" ] && rm -f "$H_PORT_REG/$p"
    done <"$dir/ports"
    return 0
}

# h_leftovers [DIR]: pids of processes still tied to DIR (cmdline mentions
# it, or a Postfix process configured from it). Empty when all is clean.
h_leftovers() {
    local dir=${1:-$H_DIR} f p a e
    for f in /proc/[0-9]*/cmdline; do
        p=${f#/proc/}; p=${p%/cmdline}
        [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
        h__alive "$p" || continue
        mapfile -d '' -t a 2>/dev/null <"$f" || continue
        e=(); mapfile -d '' -t e 2>/dev/null <"/proc/$p/environ"
        case " ${a[*]} " in *"$dir"*) echo "$p"; continue ;; esac
        case " ${e[*]} " in *" MAIL_CONFIG=$dir/"*) echo "$p" ;; esac
    done
}

# ---- ports -------------------------------------------------------------

h__port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -qF "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# h_free_port: a free 127.0.0.1 TCP port below the ephemeral range, never
# handed out twice within H_DIR, reserved against concurrent harness runs.
h_free_port() {
    local lo hi port i target
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    [ "$lo" -gt 12000 ] || lo=61000 hi=65535
    mkdir -p "$H_PORT_REG"
    for i in $(seq 500); do
        if [ "$lo" = 61000 ]; then port=$((61000 + (RANDOM * 32768 + RANDOM) % 4535))
        else port=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000))); fi
        grep -qx "$port" "$H_DIR/ports" && continue
        h__port_in_use "$port" && continue
        if ! ln -s "$H_DIR" "$H_PORT_REG/$port" 2>/dev/null; then
            target=$(readlink "$H_PORT_REG/$port") || continue
            [ -d "$target" ] && continue    # reserved by a live run
            rm -f "$H_PORT_REG/$port"       # stale: its run is gone
            ln -s "$H_DIR" "$H_PORT_REG/$port" 2>/dev/null || continue
        fi
        echo "$port" >>"$H_DIR/ports"
        echo "$port"
        return 0
    done
    h__say "no free port found"
    return 1
}

# h_wait_port PORT [TIMEOUT_S] [PID]: until 127.0.0.1:PORT accepts; fails
# early if PID (when given) dies.  Another address: set H_WAIT_ADDR (e.g.
# "local H_WAIT_ADDR=127.0.0.2" in the caller), also for h_wait_smtp.
h_wait_port() {
    local port=$1 end=$(( $(h__ms) + ${2:-10} * 1000 )) pid=${3-} a=${H_WAIT_ADDR:-127.0.0.1}
    while :; do
        (exec 3<>"/dev/tcp/$a/$port") 2>/dev/null && return 0
        if [ -n "$pid" ] && ! h__alive "$pid"; then
            h__say "process $pid exited before $a:$port accepted"
            return 1
        fi
        if [ "$(h__ms)" -ge $end ]; then
            h__say "timeout waiting for $a:$port"
            return 1
        fi
        sleep 0.05
    done
}

# h_wait_smtp PORT [TIMEOUT_S] [PID]: until 127.0.0.1:PORT greets with 220
# (an smtpd that dies on a bad -o option accepts but never greets).
h_wait_smtp() {
    local port=$1 end=$(( $(h__ms) + ${2:-10} * 1000 )) pid=${3-} line a=${H_WAIT_ADDR:-127.0.0.1}
    h_wait_port "$port" "${2:-10}" "$pid" || return 1
    while :; do
        line=$( { exec 3<>"/dev/tcp/$a/$port" && IFS= read -r -t 2 l <&3 && printf %s "$l"; } 2>/dev/null)
        case $line in 220*) return 0 ;; esac
        if [ "$(h__ms)" -ge $end ]; then
            h__say "no 220 greeting on $a:$port (got '${line%$'\r'}')"
            return 1
        fi
        sleep 0.1
    done
}

# ---- sink --------------------------------------------------------------

# h_start_sink: postlink-sink on a free port; extra sink options in H_SINK_OPTS.
h_start_sink() {
    local bin=$abs_top_builddir/tests/sink/postlink-sink
    [ -x "$bin" ] || { h__say "sink not built: $bin"; return 1; }
    H_SINK_PORT=$(h_free_port) || return 1
    export H_SINK_PORT
    mkdir -p "$POSTLINK_SINK_DIR"
    h_spawn sink "$H_DIR/sink.log" "$bin" -l "127.0.0.1:${H_SINK_PORT-}" \
        -d "$POSTLINK_SINK_DIR" -p "$H_DIR/sink.pid" ${H_SINK_OPTS-}
    h_wait_port "${H_SINK_PORT-}" 10 "$H_LAST_PID" ||
        { h__say "sink failed; tail of $H_DIR/sink.log:"; tail -n 20 "$H_DIR/sink.log" >&2; return 1; }
}

# h_sink_files: the sink's message files, oldest first (dotfiles ignored).
h_sink_files() { ls -1tr "$POSTLINK_SINK_DIR" 2>/dev/null | sed "s|^|$POSTLINK_SINK_DIR/|"; }
h_count_sink_files() { h_sink_files | grep -c .; }

# ---- dovecot -----------------------------------------------------------

h__maildir() {   # USER (localpart or full address) -> maildir path
    local u=$1
    case $u in *@*) ;; *) u=$u@$POSTLINK_DOMAIN ;; esac
    echo "$POSTLINK_MAILDIR/${u#*@}/${u%%@*}"
}

h_user_pass() {  # USER -> its password (other users than these: LOCALPART-pw)
    case ${1%%@*} in
    alice) echo "$POSTLINK_DEMO_PASS" ;; bob) echo "$H_BOB_PASS" ;; carol) echo "$H_CAROL_PASS" ;;
    *) echo "${1%%@*}-pw" ;;
    esac
}

# h_start_dovecot: IMAP, POP3, LMTP (for Postfix) and auth (Postfix SASL).
h_start_dovecot() {
    local d=$H_DIR/dovecot u uid gid md
    uid=$(id -u postlink) && gid=$(id -g postlink) || { h__say "no user postlink"; return 1; }
    mkdir -p "$d/run" "$d/state" "$POSTLINK_MAILDIR"
    POSTLINK_IMAP_PORT=$(h_free_port) && POSTLINK_POP3_PORT=$(h_free_port) &&
        H_LMTP_PORT=$(h_free_port) && H_AUTH_PORT=$(h_free_port) || return 1
    export POSTLINK_IMAP_PORT POSTLINK_POP3_PORT H_LMTP_PORT H_AUTH_PORT
    : >"$d/users"
    for u in $H_USERS; do
        md=$(h__maildir "$u")
        mkdir -p "$md/new" "$md/cur" "$md/tmp"
        printf '%s@%s:{PLAIN}%s:%s:%s::%s::\n' "$u" "$POSTLINK_DOMAIN" "$(h_user_pass "$u")" \
            "$uid" "$gid" "$md" >>"$d/users"
    done
    chown -R postlink:postlink "$POSTLINK_MAILDIR"
    chgrp dovecot "$d/users" && chmod 0640 "$d/users"
    cat >"$d/dovecot.conf" <<EOF
# Dovecot for the postlink test harness (generated by tests/harness/harness.sh)
instance_name = ${H_DIR##*/}
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/users
}
userdb {
  driver = passwd-file
  args = $d/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $POSTLINK_IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POSTLINK_POP3_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${H_LMTP_PORT-}
  }
}
service auth {
  inet_listener auth-postfix {
    address = 127.0.0.1
    port = $H_AUTH_PORT
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${H_DOVECOT_EXTRA-}
EOF
    h_spawn dovecot "$d/stderr.log" dovecot -F -c "$d/dovecot.conf"
    local pid=$H_LAST_PID p
    for p in $POSTLINK_IMAP_PORT $POSTLINK_POP3_PORT ${H_LMTP_PORT-} $H_AUTH_PORT; do
        h_wait_port "$p" 10 "$pid" || {
            h__say "dovecot failed; tail of its logs:"
            tail -n 20 "$d/stderr.log" "$d/dovecot.log" >&2 2>/dev/null
            return 1
        }
    done
}

h_count_maildir_files() {  # USER: files in new/ + cur/
    local md
    md=$(h__maildir "$1")
    find "$md/new" "$md/cur" -maxdepth 1 -type f 2>/dev/null | grep -c .
}

# ---- postfix -----------------------------------------------------------

h__postfix_config() {
    local p=$H_DIR/postfix u
    local etc=$p/etc
    : >"$etc/vmailbox"
    for u in $H_USERS; do echo "$u@$POSTLINK_DOMAIN x" >>"$etc/vmailbox"; done
    cat >"$etc/main.cf" <<EOF
# Private Postfix for the postlink test harness (generated by
# tests/harness/harness.sh). $POSTLINK_DOMAIN: virtual mailboxes delivered
# over LMTP to the harness's Dovecot; everything else goes to the sink.
compatibility_level = 3.6
queue_directory = $p/queue
data_directory = $p/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.$POSTLINK_DOMAIN
mydomain = $POSTLINK_DOMAIN
myorigin = \$myhostname
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks =
relayhost = [127.0.0.1]:${H_SINK_PORT-}
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
virtual_mailbox_domains = $POSTLINK_DOMAIN
virtual_mailbox_maps = texthash:$etc/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:${H_LMTP_PORT-}
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:$H_AUTH_PORT
smtpd_error_sleep_time = 0
in_flow_delay = 0
milter_default_action = tempfail
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 1s
maillog_file = $p/maillog
maillog_file_prefixes = $p
biff = no
append_dot_mydomain = no
${H_POSTFIX_MAIN_EXTRA-}
EOF
    cat >"$etc/master.cf" <<EOF
# master.cf for the postlink test harness (generated); chroot = n everywhere.
127.0.0.1:$POSTLINK_SMTP_PORT inet n - n - - smtpd
  -o smtpd_sasl_auth_enable=no ${H_SMTP_OPTS-}
127.0.0.1:$POSTLINK_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_security_level=none -o smtpd_tls_auth_only=no
  -o smtpd_sasl_security_options=noanonymous
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject ${H_SUBMISSION_OPTS-}
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
tlsmgr    unix  - - n 1000? 1 tlsmgr
proxywrite unix - - n -    1 proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
lmtp      unix  - - n -    - lmtp
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
${H_POSTFIX_MASTER_EXTRA-}
EOF
    # Postfix re-reads a main.cf younger than ~2 s until it settles (300 ms
    # steps): back-date the files, it saves 2 s per start and reload.
    touch -d '-10 seconds' "$etc/main.cf" "$etc/master.cf" "$etc/vmailbox"
}

h__postfix_fail() {
    h__say "postfix: $*; tail of $H_DIR/postfix/{start.log,maillog}:"
    tail -n 25 "$H_DIR/postfix/start.log" "$H_DIR/postfix/maillog" >&2 2>/dev/null
    # Postfix commands print their reasons only to a terminal: give them one.
    command -v script >/dev/null && { echo "==> postfix check (on a pty) <=="
        script -qec "postfix -c '$H_DIR/postfix/etc' check" /dev/null | tail -n 10; } >&2
    return 1
}

# h_start_postfix: needs h_start_sink and h_start_dovecot first.
# Hooks: H_POSTFIX_MAIN_EXTRA (main.cf lines), H_SMTP_OPTS and
# H_SUBMISSION_OPTS (extra "-o k=v" words per listener),
# H_POSTFIX_MASTER_EXTRA (master.cf lines).
h_start_postfix() {
    local p=$H_DIR/postfix pid
    [ -n "${H_SINK_PORT-}" ] && [ -n "${H_LMTP_PORT-}" ] ||
        { h__say "start the sink and dovecot before postfix"; return 1; }
    mkdir -p "$p/etc" "$p/queue" "$p/data"
    chown postfix "$p/data"
    POSTLINK_SMTP_PORT=$(h_free_port) && POSTLINK_SUBMISSION_PORT=$(h_free_port) || return 1
    export POSTLINK_SMTP_PORT POSTLINK_SUBMISSION_PORT
    h__postfix_config
    postfix -c "$p/etc" start >>"$p/start.log" 2>&1 || {
        [ -s "$p/queue/pid/master.pid" ] && h_register postfix "$(tr -dc 0-9 <"$p/queue/pid/master.pid")"
        h__postfix_fail "start failed"
        return 1
    }
    pid=$(tr -dc 0-9 <"$p/queue/pid/master.pid")
    [ -n "$pid" ] || { h__postfix_fail "no master.pid"; return 1; }
    h_register postfix "$pid"
    h_wait_smtp "$POSTLINK_SMTP_PORT" 10 "$pid" && h_wait_smtp "$POSTLINK_SUBMISSION_PORT" 10 "$pid" ||
        h__postfix_fail "listeners not ready"
}

# h_postfix_reload: rewrite main.cf/master.cf from the current H_* hooks
# (same ports), "postfix reload", and wait until the master has reloaded.
h_postfix_reload() {
    local p=$H_DIR/postfix n end
    n=$(grep -c 'reload -- version' "$p/maillog" 2>/dev/null) || n=0
    h__postfix_config
    postfix -c "$p/etc" reload >>"$p/start.log" 2>&1 || { h__postfix_fail "reload failed"; return 1; }
    end=$(( $(h__ms) + 10000 ))
    until [ "$(grep -c 'reload -- version' "$p/maillog")" -gt "$n" ]; do
        [ "$(h__ms)" -ge $end ] && { h__postfix_fail "reload not logged"; return 1; }
        sleep 0.05
    done
}

# h_postqueue ARGS...: postqueue for the private instance (e.g. -p, -f).
h_postqueue() { postqueue -c "$H_DIR/postfix/etc" "$@"; }

# h_wait_queue_empty [TIMEOUT_S] [PATTERN]: until the private Postfix's
# queue is empty (with PATTERN: until no line of postqueue -p matches it);
# prints the queue and fails after TIMEOUT_S (default 30).  When
# qmgr finds a queue file still locked by the delivery agent that just
# deferred it ("skipped, still being delivered"), it puts the file back
# into incoming dated 60 s ahead and looks at it again only at its next
# incoming scan (a new message or its 300 s wakeup): nothing is lost, but a
# test would wait minutes.  So after 5 s and then every 5 s a flush
# (postqueue -f: scan all queues, ignore those dates); a message our
# servers refuse stays in the queue all the same.
h_wait_queue_empty() {
    local t0; t0=$(h__ms)
    local end=$(( t0 + ${1:-30} * 1000 )) next=$(( t0 + 5000 ))
    until if [ -n "${2-}" ]; then ! h_postqueue -p 2>/dev/null | grep -q -- "$2"
          else h_postqueue -p 2>/dev/null | grep -q '^Mail queue is empty'; fi; do
        [ "$(h__ms)" -ge $end ] && { h__say "queue not empty"; h_postqueue -p >&2; return 1; }
        if [ "$(h__ms)" -ge $next ]; then
            h_postqueue -f >/dev/null 2>&1
            next=$(( $(h__ms) + 5000 ))
        fi
        sleep 0.05
    done
}

# ---- all together ------------------------------------------------------

# h_dovecot_master_user PASSWORD: before h_start_dovecot, a Dovecot master
# user "postlink" that may log in as any user ("USER*postlink").
h_dovecot_master_user() {
    printf 'postlink:{PLAIN}%s\n' "$1" >"$H_DIR/masters"
    chgrp dovecot "$H_DIR/masters" && chmod 0640 "$H_DIR/masters"
    H_DOVECOT_EXTRA="${H_DOVECOT_EXTRA-}
auth_master_user_separator = *
passdb {
  driver = passwd-file
  master = yes
  args = scheme=PLAIN $H_DIR/masters
  result_success = continue
}"
}

# h_make_certs DIR NAME...: TLS material in DIR for tests (EC P-256, 2
# days): a server certificate "server" for mail.$POSTLINK_DOMAIN and one
# self-signed client certificate per NAME (DIR/NAME.pem, DIR/NAME.key).
h_make_certs() {
    local dir=$1 n; shift
    mkdir -p "$dir" || return 1
    for n in server "$@"; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=$n.$POSTLINK_DOMAIN" -keyout "$dir/$n.key" -out "$dir/$n.pem" \
            >/dev/null 2>&1 || { h__say "openssl cannot make a certificate for $n"; return 1; }
    done
    chmod 0644 "$dir"/*.pem && chmod 0600 "$dir"/*.key
}

# h_cert_fingerprint PEM [pubkey]: the SHA-256 fingerprint Postfix reports
# for the certificate (ccert_fingerprint) or its public key
# (ccert_pubkey_fingerprint), as AB:CD:...
h_cert_fingerprint() {
    if [ "${2-}" = pubkey ]; then
        openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
            openssl dgst -sha256 -c | sed 's/^.*= *//' | tr a-f A-F
    else
        openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'
    fi
}

h_start_all() { h_start_sink && h_start_dovecot && h_start_postfix; }

# h_write_env FILE: shell-sourceable settings for the running harness.
h_write_env() {
    local v
    for v in POSTLINK_SMTP_PORT POSTLINK_SUBMISSION_PORT POSTLINK_DOMAIN \
        POSTLINK_DEMO_USER POSTLINK_DEMO_PASS POSTLINK_SINK_DIR POSTLINK_MAILDIR \
        POSTLINK_IMAP_PORT POSTLINK_POP3_PORT H_DIR H_SINK_PORT H_LMTP_PORT H_AUTH_PORT \
        H_USERS H_BOB_PASS H_CAROL_PASS POSTLINK_XMPP_PORT POSTLINK_XMPP_DOMAIN; do
        [ -n "${!v-}" ] || continue
        printf 'export %s=%q\n' "$v" "${!v-}"
    done >"$1"
}

# h_diag: what to look at when mail did not arrive.
h_diag() {
    {
        echo "--- tail of $H_DIR/postfix/maillog"
        tail -n 30 "$H_DIR/postfix/maillog" 2>/dev/null
        echo "--- postqueue -p"
        h_postqueue -p 2>&1
        echo "--- tail of $H_DIR/dovecot/dovecot.log"
        tail -n 10 "$H_DIR/dovecot/dovecot.log" 2>/dev/null
    } | sed 's/^/# /' >&2
}

# h__wait_count WHAT N TIMEOUT CMD...: until CMD prints a number >= N.
h__wait_count() {
    local what=$1 n=$2 end=$(( $(h__ms) + $3 * 1000 )) c
    shift 3
    while :; do
        c=$("$@")
        [ "$c" -ge "$n" ] && return 0
        if [ "$(h__ms)" -ge $end ]; then
            h__say "timeout: $what has $c file(s), wanted $n"
            h_diag
            return 1
        fi
        sleep 0.05
    done
}

# h_wait_sink_files N [TIMEOUT_S]: until the sink holds at least N messages.
h_wait_sink_files() { h__wait_count "sink" "$1" "${2:-15}" h_count_sink_files; }

# h_wait_maildir_files USER N [TIMEOUT_S]: until USER's new/+cur/ hold >= N.
h_wait_maildir_files() { h__wait_count "maildir of $1" "$2" "${3:-15}" h_count_maildir_files "$1"; }
