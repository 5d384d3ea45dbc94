# mirror.sh -- harness additions for capability 2 (the POP3 mirror),
# sourced after harness.sh: a primary mailbox "prim" on the harness's
# Dovecot with per-session POP3 counters in dovecot.log, a pop3s listener,
# fast deterministic mailbox filling, a read-only IMAP snapshot of the
# primary, fetchmail as a real third-party client that downloads and
# deletes, and a UIDL scheme change (a server migration).
# Call hm_setup after h_init and before h_start_dovecot.
#   HM_PRIM_USER HM_PRIM_PASS  the primary mailbox's login
#   HM_POP3S_PORT HM_CA HM_TLS_NAME  pop3s: port, the certificate to trust,
#                   the name it is issued to (CN, no subjectAltName)
#   HM_EXPIRED_NAME HM_EXPIRED_CA  an SNI name for which the pop3s listener
#                   presents an expired certificate (and that certificate)
#   HM_SEQ          messages hm_fill has made so far
#   $H_DIR/hm-manifest  one line per message made: SEQ MESSAGE-ID SIZE
#                   LIST-SIZE DOT-LINES (LIST-SIZE counts CRLF line ends)

HM_UIDL_FORMAT=%08Xu%08Xv    # Dovecot's default

hm_setup() {
    [ -n "${H_DIR-}" ] || { h__say "hm_setup: call h_init first"; return 1; }
    case " $H_USERS " in *" prim "*) ;; *) H_USERS="$H_USERS prim" ;; esac
    export H_USERS HM_PRIM_USER=prim@$POSTLINK_DOMAIN
    HM_PRIM_PASS=$(h_user_pass prim) && export HM_PRIM_PASS
    HM_TLS=$H_DIR/hm-tls
    h_make_certs "$HM_TLS" && hm__expired_cert "$HM_TLS" || return 1
    HM_POP3S_PORT=$(h_free_port) || return 1
    export HM_POP3S_PORT HM_CA=$HM_TLS/server.pem HM_TLS_NAME=server.$POSTLINK_DOMAIN
    export HM_EXPIRED_NAME=expired.$POSTLINK_DOMAIN HM_EXPIRED_CA=$HM_TLS/expired.pem
    export HM_SEQ=${HM_SEQ:-0} HM_BATCH=${HM_BATCH:-0}
    : >"$H_DIR/hm-manifest"
    # ssl = yes also makes the plain IMAP and POP3 listeners offer STARTTLS
    # (plaintext logins stay allowed there).
    H_DOVECOT_EXTRA="${H_DOVECOT_EXTRA-}
# --- tests/harness/mirror.sh
ssl = yes
ssl_cert = <$HM_TLS/server.pem
ssl_key = <$HM_TLS/server.key
local_name $HM_EXPIRED_NAME {
  ssl_cert = <$HM_TLS/expired.pem
  ssl_key = <$HM_TLS/expired.key
}
service pop3-login {
  inet_listener pop3s {
    address = 127.0.0.1
    port = $HM_POP3S_PORT
    ssl = yes
  }
}
protocol pop3 {
  pop3_logout_format = hm top=%t top_bytes=%p retr=%r retr_bytes=%b deleted=%d deleted_bytes=%{deleted_bytes} messages=%m size=%s bytes_in=%i bytes_out=%o
}
# hm-pop3 begin
$(hm__pop3_block)
# hm-pop3 end"
}

hm__pop3_block() { printf 'pop3_uidl_format = %s\n%s' "$HM_UIDL_FORMAT" "${HM_POP3_EXTRA-}"; }

# hm__expired_cert DIR: DIR/expired.{pem,key}, self-signed for
# $HM_EXPIRED_NAME, valid 2020-01-01..2020-01-02 (openssl ca can set dates).
hm__expired_cert() {
    local d=$1/ca
    mkdir -p "$d" && : >"$d/index.txt" && echo 01 >"$d/serial" || return 1
    cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = hm
[ hm ]
dir = $d
database = $d/index.txt
serial = $d/serial
new_certs_dir = $d
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
EOF
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=expired.$POSTLINK_DOMAIN" -keyout "$1/expired.key" -out "$d/req.pem" \
        >/dev/null 2>&1 &&
        openssl ca -batch -config "$d/ca.cnf" -selfsign -keyfile "$1/expired.key" \
            -startdate 20200101000000Z -enddate 20200102000000Z -notext \
            -in "$d/req.pem" -out "$1/expired.pem" >/dev/null 2>&1 ||
        { h__say "openssl cannot make the expired certificate"; return 1; }
    chmod 0644 "$1/expired.pem" && chmod 0600 "$1/expired.key"
}

# hm_fill N [MIN_BYTES MAX_BYTES]: N new messages in prim's maildir (new/),
# sizes from MIN to MAX (default 2000..20000, most near MIN), Message-ID
# <hm-BATCH.SEQ@primary.test> (BATCH counts hm_fill calls, SEQ all
# messages), LF line ends; every 4th has 8-bit lines, every 3rd lines that
# start with "." (one is a lone "."). File names sort like SEQ, so Dovecot
# gives them UIDs (and POP3 numbers) in SEQ order.
hm_fill() {
    local n=$1 min=${2:-2000} max=${3:-20000} seq
    HM_BATCH=$(( ${HM_BATCH:-0} + 1 ))
    seq=$(python3 - "$(h__maildir "$HM_PRIM_USER")" "${HM_SEQ:-0}" "$n" "$min" "$max" \
        "$HM_BATCH" "$HM_PRIM_USER" "$H_DIR/hm-manifest" "$(id -u postlink)" "$(id -g postlink)" <<'PY'
import os, sys, email.utils
md, seq0, n, lo, hi, batch, to, manifest, uid, gid = sys.argv[1:]
seq0, n, lo, hi, uid, gid = map(int, (seq0, n, lo, hi, uid, gid))
base, pid = 1700000000, os.getpid()
letters = [bytes([c]) * 60 for c in range(97, 123)]
with open(manifest, "a") as man:
    for seq in range(seq0 + 1, seq0 + n + 1):
        u = ((seq * 2654435761) % 10007) / 10006.0
        want = lo + int((hi - lo) * u * u)
        mid = "<hm-%s.%d@primary.test>" % (batch, seq)
        head = ("From: Sender %s <sender-%s@remote.test>\nTo: <%s>\n"
                "Subject: hm message %d (batch %s)\nDate: %s\nMessage-ID: %s\n"
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: 8bit\nX-HM-Seq: %d\n\n"
                % (batch, batch, to, seq, batch,
                   email.utils.formatdate(base + seq * 60), mid, seq)).encode()
        body = b"hm message %d\n" % seq
        if seq % 4 == 1:
            body += "8-bit: Grüße € ünd\n".encode() + b"raw latin-1: caf\xe9 \xff\n"
        if seq % 3 == 0:
            body += b".\n..\n.hm a line that starts with a dot\n"
        parts = [head, body]
        have = len(head) + len(body)
        fill = max(0, (want - have) // 74)
        parts += [b"%06d.%05d %s\n" % (seq, i, letters[(seq + i) % 26]) for i in range(1, fill + 1)]
        have += 74 * fill
        if have < want:
            parts.append(b"z" * (want - have - 1) + b"\n")
        msg = b"".join(parts)
        lines = msg.count(b"\n")
        dots = sum(1 for l in msg.split(b"\n") if l.startswith(b"."))
        name = "%d.M%dP%d.primary,S=%d,W=%d" % (base + seq, seq, pid, len(msg), len(msg) + lines)
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(msg)
        os.chown(tmp, uid, gid)
        os.utime(tmp, (base + seq * 60, base + seq * 60))
        os.rename(tmp, os.path.join(md, "new", name))
        man.write("%d %s %d %d %d\n" % (seq, mid, len(msg), len(msg) + lines, dots))
print(seq0 + n)
PY
    ) || { h__say "hm_fill failed"; return 1; }
    export HM_SEQ=$seq HM_BATCH
}

# hm__py ARGS... <<'PY': python3 with the primary's login in the environment.
hm__py() {
    HM_PORT_POP3=$POSTLINK_POP3_PORT HM_PORT_IMAP=$POSTLINK_IMAP_PORT python3 - "$@"
}

# hm_uidls: "MSGNO UIDL" lines of prim's mailbox, as POP3 UIDL shows them.
hm_uidls() {
    hm__py <<'PY'
import os, poplib
p = poplib.POP3("127.0.0.1", int(os.environ["HM_PORT_POP3"]), timeout=30)
p.user(os.environ["HM_PRIM_USER"]); p.pass_(os.environ["HM_PRIM_PASS"])
for l in p.uidl()[1]:
    print(l.decode())
p.quit()
PY
}

# hm_snapshot FILE: prim's INBOX seen read-only over IMAP (EXAMINE,
# BODY.PEEK[]): "UIDVALIDITY n", then per message "UID FLAGS SHA256" with
# the flags sorted, comma-separated, \Recent left out ("-" for none).
hm_snapshot() {
    hm__py "$1" <<'PY'
import hashlib, imaplib, os, re, sys
m = imaplib.IMAP4("127.0.0.1", int(os.environ["HM_PORT_IMAP"]), timeout=30)
m.login(os.environ["HM_PRIM_USER"], os.environ["HM_PRIM_PASS"])
typ, dat = m.select("INBOX", readonly=True)       # EXAMINE
if typ != "OK":
    sys.exit("EXAMINE failed: %r" % dat)
exists = int(dat[0])
out = ["UIDVALIDITY %s" % m.response("UIDVALIDITY")[1][0].decode()]
msgs = []
if exists:
    typ, dat = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    if typ != "OK":
        sys.exit("UID FETCH failed: %r" % dat)
    for item in dat:
        if isinstance(item, tuple):
            msgs.append([item[0], hashlib.sha256(item[1]).hexdigest()])
        elif item and msgs:
            msgs[-1][0] += item
for meta, digest in msgs:
    meta = meta.decode("latin-1")
    uid = re.search(r"UID (\d+)", meta).group(1)
    flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
    flags = sorted(f for f in flags if f.lower() != "\\recent")
    out.append((int(uid), "%s %s %s" % (uid, ",".join(flags) or "-", digest)))
m.logout()
if len(out) - 1 != exists:
    sys.exit("snapshot: %d messages fetched, EXAMINE said %d" % (len(out) - 1, exists))
with open(sys.argv[1], "w") as f:
    f.write(out[0] + "\n")
    for _, line in sorted(out[1:]):
        f.write(line + "\n")
PY
}

# hm_same_snapshot A B: 0 if the snapshots are identical, else the diff.
hm_same_snapshot() { cmp -s "$1" "$2" || { diff "$1" "$2"; return 1; }; }

# ---- Dovecot's own counters ---------------------------------------------

# hm_log_mark: the current line count of dovecot.log (a MARK).
hm_log_mark() { wc -l <"$H_DIR/dovecot/dovecot.log" | tr -d ' '; }

# hm__logouts MARK: prim's POP3 logout lines after MARK.
hm__logouts() {
    tail -n +"$(( ${1:-0} + 1 ))" "$H_DIR/dovecot/dovecot.log" |
        grep -F "pop3($HM_PRIM_USER)" | grep -F ' hm top='
}

# hm_pop3_bytes [MARK]: prim's POP3 counters summed over the sessions that
# ended after MARK (default: all), as Dovecot logged them at logout:
# "sessions=N top=T top_bytes=X retr=R retr_bytes=Y deleted=D
# deleted_bytes=E bytes_out=O bytes_in=I". top_bytes and retr_bytes count
# what Dovecot wrote for the command before the final ".": its "+OK" line
# and the message with CRLF line ends and dot-stuffing.
hm_pop3_bytes() {
    hm__logouts "${1:-0}" | awk '
        { n++; sub(/.* hm /, ""); for (i = 1; i <= NF; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } }
        END { printf "sessions=%d top=%d top_bytes=%d retr=%d retr_bytes=%d deleted=%d deleted_bytes=%d bytes_out=%d bytes_in=%d\n",
            n, s["top"], s["top_bytes"], s["retr"], s["retr_bytes"], s["deleted"], s["deleted_bytes"],
            s["bytes_out"], s["bytes_in"] }'
}

# hm_wait_logouts MARK N [TIMEOUT_S]: until N POP3 sessions of prim ended
# after MARK (Dovecot logs a session's counters when it ends).
hm_wait_logouts() {
    local end=$(( $(h__ms) + ${3:-10} * 1000 )) c
    while :; do
        c=$(hm__logouts "$1" | wc -l)
        [ "$c" -ge "$2" ] && return 0
        [ "$(h__ms)" -ge $end ] && { h__say "timeout: $c POP3 logout(s) of $HM_PRIM_USER after line $1, wanted $2"; return 1; }
        sleep 0.05
    done
}

# ---- a real third-party client ------------------------------------------

# hm_fetchmail_take K: fetchmail downloads the K oldest messages of prim
# over plain POP3 (no STARTTLS), delivers each through an MDA into its own
# file in $H_DIR/fetchmail/, and deletes them on the primary. Its rc file
# (0600, with the password), log and id file are in $H_DIR/fetchmail.d.
# Returns 0 when mail was fetched (fetchmail's 0, or 13 "fetchlimit
# reached", which is what it says whenever more than K were there), 1 when
# there was none, others errors; fetchmail's own status in HM_FETCHMAIL_STATUS.
hm_fetchmail_take() {
    local k=$1 d=$H_DIR/fetchmail.d out=$H_DIR/fetchmail rc
    mkdir -p "$d" "$out" && chmod 0700 "$d" || return 1
    cat >"$d/mda" <<EOF
#!/bin/sh
# fetchmail's MDA in the postlink test harness: one file per message.
f=\$(date +%s.%N).\$\$
cat >"$d/msg.\$f" && mv "$d/msg.\$f" "$out/msg.\$f"
EOF
    chmod 0755 "$d/mda"
    (umask 077; cat >"$d/fetchmailrc" <<EOF
# generated by tests/harness/mirror.sh
set no syslog
poll 127.0.0.1 protocol POP3 service $POSTLINK_POP3_PORT auth password timeout 20
  user "$HM_PRIM_USER" there with password "$HM_PRIM_PASS" is root here
  fetchall nokeep no rewrite fetchlimit $k sslproto '' mda "$d/mda"
EOF
    )
    echo "=== hm_fetchmail_take $k" >>"$d/fetchmail.log"
    FETCHMAILHOME=$d FETCHMAILUSER=root HOME=$d fetchmail -f "$d/fetchmailrc" \
        -i "$d/fetchids" --pidfile "$d/fetchmail.pid" --nosyslog -v </dev/null >>"$d/fetchmail.log" 2>&1
    rc=$?
    echo "=== exit $rc" >>"$d/fetchmail.log"
    HM_FETCHMAIL_STATUS=$rc
    [ $rc = 13 ] && return 0
    return $rc
}

# ---- changing the primary's Dovecot ---------------------------------------

# hm_dovecot_reload: rewrite the hm-pop3 block of dovecot.conf from
# HM_UIDL_FORMAT and HM_POP3_EXTRA (pop3 settings lines), send the master
# SIGHUP and wait until it has reloaded (same ports; new sessions only).
# The new file is checked with doveconf first and not used if bad (a master
# that cannot read it on SIGHUP only logs an error, keeps the old settings).
hm_dovecot_reload() {
    local conf=$H_DIR/dovecot/dovecot.conf log=$H_DIR/dovecot/dovecot.log n pid end
    hm__pop3_block >"$conf.block"
    awk -v f="$conf.block" '
        /^# hm-pop3 end$/ { while ((getline l < f) > 0) print l; skip = 0 }
        !skip { print }
        /^# hm-pop3 begin$/ { skip = 1 }' "$conf" >"$conf.new" || return 1
    doveconf -x -c "$conf.new" -n >/dev/null 2>"$conf.err" ||
        { h__say "hm_dovecot_reload: bad configuration (not used):"; cat "$conf.err" >&2; return 1; }
    mv "$conf.new" "$conf" || return 1
    n=$(grep -c 'SIGHUP received' "$log")
    pid=$(tr -dc 0-9 <"$H_DIR/dovecot/run/master.pid") && kill -HUP "$pid" || return 1
    end=$(( $(h__ms) + 10000 ))
    until [ "$(grep -c 'SIGHUP received' "$log")" -gt "$n" ]; do
        [ "$(h__ms)" -ge $end ] && { h__say "dovecot did not log its reload"; return 1; }
        sleep 0.05
    done
}

# hm_set_pop3_extra LINES: hm_dovecot_reload with HM_POP3_EXTRA=LINES, e.g.
# 'pop3_deleted_flag = "$POP3Deleted"' (quoted: Dovecot expands $NAME): a
# primary whose DELE only hides messages from POP3 (IMAP still shows them,
# with that keyword).
hm_set_pop3_extra() { HM_POP3_EXTRA=$1; hm_dovecot_reload; }

# hm_change_uidl_scheme: a server migration: every UIDL changes at once
# (pop3_uidl_format %08Xu%08Xv <-> %08Xv%08Xu), the messages stay. Fails
# unless the count is the same and no old UIDL is left.
hm_change_uidl_scheme() {
    local before after end
    before=$(hm_uidls) || return 1
    case $HM_UIDL_FORMAT in %08Xu%08Xv) HM_UIDL_FORMAT=%08Xv%08Xu ;; *) HM_UIDL_FORMAT=%08Xu%08Xv ;; esac
    hm_dovecot_reload || return 1
    end=$(( $(h__ms) + 10000 ))
    while :; do
        after=$(hm_uidls) || return 1
        [ "$(wc -l <<<"$after")" = "$(wc -l <<<"$before")" ] &&
            [ -z "$(comm -12 <(cut -d' ' -f2 <<<"$before" | sort) <(cut -d' ' -f2 <<<"$after" | sort))" ] &&
            return 0
        [ "$(h__ms)" -ge $end ] && { h__say "UIDLs did not all change (or the count did)"; return 1; }
        sleep 0.1
    done
}

# ---- postlink-mirrord -------------------------------------------------
# The mirror side (needs tests/harness/sync.sh): hm_mirror_setup after
# h_start_dovecot (it needs the IMAP port) and before hs_setup and
# h_start_postfix.  It adds to postlink.conf the IMAP access withdrawals
# use and mirror_inject_url, and to master.cf the listener copies are
# handed to (running postlink-milter with the mirror guard only).
#   HM_MASTER_PASS   the Dovecot master user's password (h_dovecot_master_user)
#   HM_SECRET        the file with prim's password (mode 0600, owner postlink)
hm_mirror_setup() {
    local sec=$H_DIR/hm-secret
    mkdir -p "$sec" && chown postlink "$sec" && chmod 0700 "$sec"
    printf '%s\n' "$HM_PRIM_PASS" >"$sec/prim" && printf '%s\n' "${HM_MASTER_PASS-}" >"$sec/imap"
    chown postlink "$sec"/* && chmod 0600 "$sec"/*
    HM_SECRET=$sec/prim HM_MIRROR_PORT=$(h_free_port) || return 1
    export HM_SECRET HM_MIRROR_PORT
    case ${HS_CONF_EXTRA-} in
    *imap_url*) ;;          # the caller set up IMAP access already (the demo)
    *) HS_CONF_EXTRA="${HS_CONF_EXTRA-}
imap_url = $POSTLINK_DOMAIN=imap://127.0.0.1:$POSTLINK_IMAP_PORT
imap_password_file = $sec/imap" ;;
    esac
    HS_CONF_EXTRA="$HS_CONF_EXTRA
mirror_inject_url = smtp://127.0.0.1:$HM_MIRROR_PORT
mirror_timeout = 10s
${HM_CONF_EXTRA-}"
    H_POSTFIX_MASTER_EXTRA="${H_POSTFIX_MASTER_EXTRA-}
127.0.0.1:$HM_MIRROR_PORT inet n - n - - smtpd
  -o syslog_name=postfix/mirror -o mynetworks=127.0.0.0/8
  -o smtpd_milters=unix:$H_DIR/postlink/mirror-guard.sock
  -o milter_macro_daemon_name=postlink-mirror -o milter_default_action=tempfail
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=permit_mynetworks,reject"
}

# hm_start_guard / hm_start_mirrord: start (again) the guard milter and
# postlink-mirrord; pids in HM_GUARD_PID / HM_MIRRORD_PID, logs in
# $H_SYNC/{guard,mirrord}.log.
hm_start_guard() {
    rm -f "$H_SYNC/mirror-guard.sock"
    h_spawn guard "$H_SYNC/guard.log" "$abs_top_builddir/milters/combined/postlink-milter" -f \
        -o milter_filters=mirror -o "milter_socket=unix:$H_SYNC/mirror-guard.sock"
    HM_GUARD_PID=$H_LAST_PID
    hs__wait_socket "$H_SYNC/mirror-guard.sock" "$HM_GUARD_PID"
}
hm_start_mirrord() {
    local n
    n=$(grep -c 'postlink-mirrord .*sync thread' "$H_SYNC/mirrord.log" 2>/dev/null) || n=0
    # HM_MIRRORD_ENV: environment for this start (e.g. libfaketime's)
    h_spawn mirrord "$H_SYNC/mirrord.log" env ${HM_MIRRORD_ENV-} \
        "$abs_top_builddir/agents/mirror/postlink-mirrord" -f "$@"
    HM_MIRRORD_PID=$H_LAST_PID
    # a readiness bound, not a speed check: after a kill -9 the start runs
    # the store's recovery (0.6 s on an idle 2-core machine), which a
    # loaded machine (two suites at once) has been seen to stretch past 10 s
    local end=$(( $(h__ms) + 30000 ))
    until [ "$(grep -c 'postlink-mirrord .*sync thread' "$H_SYNC/mirrord.log" 2>/dev/null)" -gt "$n" ]; do
        h__alive "$HM_MIRRORD_PID" || { h__say "postlink-mirrord died:"; tail -n 5 "$H_SYNC/mirrord.log" >&2; return 1; }
        [ "$(h__ms)" -ge $end ] && { h__say "postlink-mirrord did not start"; return 1; }
        sleep 0.02
    done
}

# hm_add USER [OPTIONS...]: a mirror account of prim for USER (on demand
# only, delete mode unless OPTIONS say otherwise), pop3:// upgraded with
# STLS and the harness's certificate checked.
hm_add() {
    local u=$1; shift
    "$POSTLINKCTL" mirror add "$u" --primary "pop3://127.0.0.1:$POSTLINK_POP3_PORT" \
        --ca-file "$HM_CA" --tls-name "$HM_TLS_NAME" \
        --login "$HM_PRIM_USER" --secret-file "$HM_SECRET" --deliver-to "$u" --interval 0 "$@" >/dev/null
}

# hm_sync USER: a sync now, waited for (postlinkctl's exit status).
hm_sync() { "$POSTLINKCTL" mirror sync "$1" --wait 60 >"$H_DIR/hm-last-sync" 2>&1; }

# hm_status_field USER JQ-PATH: one value of "mirror status USER --json".
hm_status_field() { "$POSTLINKCTL" mirror status "$1" --json | jq -r "$2"; }

# hm_wait_queue_empty [TIMEOUT_S]: until the private Postfix's queue is
# empty (every copy handed over is in a mailbox or bounced).
hm_wait_queue_empty() { h_wait_queue_empty "${1:-20}"; }

# hm_copies USER: "COUNT MESSAGE-ID" per Message-ID in USER's maildir.
hm_copies() {
    local md; md=$(h__maildir "$1")
    find "$md/new" "$md/cur" -maxdepth 1 -type f -print0 2>/dev/null |
        xargs -0r grep -h -i -m1 '^Message-ID:' | sed 's/^[^:]*: *//' | tr -d '\r' | sort | uniq -c |
        awk '{print $1, $2}'
}
