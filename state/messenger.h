/* messenger.h -- capability 4's data (messenger tagging and presence):
 *   mlink    key mail address -> "<created> <share> <sub> <jid>": a sender
 *            who opted in, the XMPP account linked to it, whether presence
 *            is shared, and the presence subscription postlink-xmppd holds
 *            ("none" until requested, "pending" until the account approves,
 *            "subscribed")
 *   mjid     key bare JID -> mail address (the reverse of mlink)
 *   mailid   key mail-id -> the tagged mail: created, sender, JID,
 *            Message-ID, Date, Subject, recipients (one field per line)
 *   presence key bare JID -> "<updated> <online|away|offline|unknown>",
 *            postlink-xmppd's cache
 * Addresses and JIDs are stored lower-case; JIDs are bare (no resource). */
#ifndef PL_MESSENGER_H
#define PL_MESSENGER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define PL_JID_MAX 320
#define PL_MAILID_LEN 26                /* base32 of 128 random bits, lower case */
enum { PL_MLINK_OTHER = 3 };            /* add: address or JID linked elsewhere */

/* NULL if jid is a usable bare JID (local@domain, no resource), else why
 * not.  pl_jid_canon lower-cases and drops a "/resource". */
const char *pl_jid_check(const char *jid);
void pl_jid_canon(const char *jid, char *out, size_t outlen);

struct pl_mlink {
    char addr[PL_JID_MAX], jid[PL_JID_MAX], sub[16];
    int share;
    int64_t created;
};

/* Link addr to jid (both checked by the caller).  PL_OK (also when the
 * same link exists), PL_MLINK_OTHER when either is linked to another. */
int pl_mlink_add(pl_txn *t, const char *addr, const char *jid, int64_t now);
/* Unlink addr; PL_NOTFOUND if it was not linked. */
int pl_mlink_del(pl_txn *t, const char *addr);
int pl_mlink_get(pl_txn *t, const char *addr, struct pl_mlink *out);
int pl_mlink_by_jid(pl_txn *t, const char *jid, struct pl_mlink *out);
int pl_mlink_set_sub(pl_txn *t, const char *addr, const char *sub);
int pl_mlink_set_share(pl_txn *t, const char *addr, int share);
typedef int (*pl_mlink_fn)(void *ctx, const struct pl_mlink *l);
int pl_mlink_list(pl_txn *t, pl_mlink_fn fn, void *ctx);

/* A fresh mail-id (PL_MAILID_LEN + 1 bytes). */
int pl_mailid_new(char *out, size_t outlen);
int pl_mailid_ok(const char *mailid);

struct pl_mailid {
    int64_t created;
    char sender[PL_JID_MAX], jid[PL_JID_MAX];
    char msgid[1000], date[128], subject[512];
    char rcpts[4096];                   /* space-separated, lower-case; "~" marks a
                                         * recipient not named in To or Cc (Bcc) */
};
int pl_mailid_put(pl_txn *t, const char *mailid, const struct pl_mailid *m);
int pl_mailid_get(pl_txn *t, const char *mailid, struct pl_mailid *m);
/* Nonzero if addr is one of m's recipients (Bcc or not). */
int pl_mailid_has_rcpt(const struct pl_mailid *m, const char *addr);
/* Nonzero if addr may be recorded (no space, '"' or '~'): others are left
 * out of the record and so never see presence. */
int pl_mailid_rcpt_ok(const char *addr);
int pl_mailid_purge(pl_txn *t, int64_t before, unsigned *purged);

/* Presence words. */
enum pl_presence { PL_PRES_UNKNOWN, PL_PRES_ONLINE, PL_PRES_AWAY, PL_PRES_OFFLINE };
const char *pl_presence_name(enum pl_presence p);
enum pl_presence pl_presence_parse(const char *word);
int pl_presence_put(pl_txn *t, const char *jid, enum pl_presence p, int64_t now);
/* PL_OK with p and updated, PL_NOTFOUND if never cached. */
int pl_presence_get(pl_txn *t, const char *jid, enum pl_presence *p, int64_t *updated);

#endif
