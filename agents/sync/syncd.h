/* syncd.h -- what postlink-syncd's files share: settings, the store, and
 * the two jobs (applying controls that Postfix delivers over LMTP, and
 * carrying out the outbox). */
#ifndef PL_SYNCD_H
#define PL_SYNCD_H

#include <pthread.h>
#include <stdint.h>

#include "conf_params.h"
#include "lmtp_server.h"
#include "store.h"

struct syncd {
    /* _Atomic: replaced by a SIGHUP reload; the rest is set at start-up */
    const struct pl_cfg *_Atomic cfg;  /* enabled_domains, imap_url */
    pl_store *store;
    const char *hostname, *transport_domain;
    const char *_Atomic reinject_url;
    const char *_Atomic imap_login;
    char *imap_password;
    _Atomic size_t max_targets;
    _Atomic int64_t pending_ttl, dedupe_ttl, seen_ttl, retry_time, max_age;
};

extern struct syncd sd;

/* syncd_deliver.c: the LMTP callbacks. */
void syncd_deliver(void *ctx, const struct pl_lmtp_envelope *env,
                   char (*replies)[PL_LMTP_REPLY_MAX]);
const char *syncd_check_rcpt(void *ctx, const char *rcpt);

/* syncd_outbox.c: carry out outbox entries; with a tag, only that
 * control's entries (and only SMTP ones), else every entry that is due.
 * Returns the number of entries of that selection still waiting. */
unsigned syncd_flush(const char *tag);
/* IMAP URL for a user's domain, or NULL. */
const char *syncd_imap_url(const char *user);

/* Test hook: if $POSTLINK_SYNCD_CRASH_FILE names a file whose content is
 * step, remove the file and die by SIGKILL (tests of crash safety). */
void syncd_crash_point(const char *step);

#endif
