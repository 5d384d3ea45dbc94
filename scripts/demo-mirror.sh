# demo-mirror.sh -- the POP3 mirror story of ./demo.sh (sourced by it):
# carol's mailbox at her provider (the primary, "prim" on the harness's
# Dovecot) is mirrored into carol@postlink.test by postlink-mirrord.  The
# first sync copies everything; then two new messages arrive at the
# primary and fetchmail, her usual client there, downloads and deletes
# two old ones: the next sync fetches only the two new ones and withdraws
# the copies of the two she read.  Dovecot's own log shows what was read
# from the primary, and a read-only IMAP snapshot that nothing changed.
step "mirror carol's primary POP3 mailbox: postlink-mirrord and the mirror guard"
C=carol@$POSTLINK_DOMAIN
if hm_start_guard && hm_start_mirrord; then
    ok "postlink-mirrord running; copies go to Postfix on 127.0.0.1:$HM_MIRROR_PORT (the mirror guard drops repeats)"
else
    bad "postlink-mirrord did not start"
fi
hm_fill 5 1500 6000
"$CTL" mirror add "$C" --primary "pop3://127.0.0.1:$POSTLINK_POP3_PORT" --login "$HM_PRIM_USER" \
    --ca-file "$HM_CA" --tls-name "$HM_TLS_NAME" \
    --secret-file "$HM_SECRET" --deliver-to "$C" --mode delete --interval 0 2>&1 | show
hm_snapshot "$H_DIR/demo-snap0"
mark=$(hm_log_mark)
if "$CTL" mirror sync "$C" --wait 60 2>&1 | show && hm_wait_queue_empty && hm_wait_logouts "$mark" 1; then
    ok "first sync: $(h_count_maildir_files carol) messages in carol's mailbox"
    ok "read from the primary (Dovecot's log): $(hm_pop3_bytes "$mark")"
else
    bad "the first sync failed"
fi

step "two new messages at the primary; fetchmail downloads and deletes two old ones there; sync again"
hm_fill 2 1500 3000
hm_fetchmail_take 2 && ok "fetchmail took 2 messages from the primary (its usual client)"
hm_snapshot "$H_DIR/demo-snap1"
mark=$(hm_log_mark)
if "$CTL" mirror sync "$C" --wait 60 2>&1 | show && hm_wait_queue_empty && hm_wait_logouts "$mark" 1; then
    grep "mirror $C:" "$H_SYNC/mirrord.log" | tail -n 6 | show
    j=$("$CTL" mirror status "$C" --json)
    if jq -e '.sync.fetched == 2 and .sync.withdrawn == 2' >/dev/null <<<"$j"; then
        ok "only the 2 new ids were fetched, the 2 copies read on the primary withdrawn: $(h_count_maildir_files carol) in carol's mailbox"
    else
        bad "unexpected sync: $(jq -c .sync <<<"$j")"
    fi
    ok "read from the primary: $(hm_pop3_bytes "$mark") (TOP only: no RETR, no DELE)"
else
    bad "the second sync failed"
fi
hm_snapshot "$H_DIR/demo-snap2"
if hm_same_snapshot "$H_DIR/demo-snap1" "$H_DIR/demo-snap2" >/dev/null; then
    ok "the primary is unchanged by the mirror (read-only IMAP EXAMINE: same UIDs, flags, digests)"
else
    bad "the mirror changed the primary"
fi
"$CTL" mirror status "$C" 2>&1 | show
