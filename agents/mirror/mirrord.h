/* mirrord.h -- postlink-mirrord's pieces: the scheduler and workers
 * (mirrord_main.c), one sync of a POP3 account (mirrord_sync.c) and the
 * hand-over of copies and withdrawals at the destination
 * (mirrord_deliver.c). */
#ifndef PL_MIRRORD_H
#define PL_MIRRORD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conf_params.h"
#include "mirror.h"
#include "smtp_client.h"
#include "store.h"

#define MIRROR_HEADER "X-Postlink-Mirror"

struct mirrord {
    _Atomic(const struct pl_cfg *) cfg;
    pl_store *store;
    char *imap_password;            /* imap_password_file, for withdrawals */
    const char *hostname;
};
extern struct mirrord md;

/* What one sync did (written into mstatus). */
struct msync_result {
    int ok;
    int auth_failed;                /* the primary refused the login */
    char error[512];
    char warning[512];              /* the first thing that failed without failing the sync */
    int release;                    /* "release": the mass-vanish guard is lifted once */
    unsigned long listed, stat_count;
    int complete;
    size_t fetched, withdrawn, marked, forgotten, missing, held_back, hidden, expired, failed,
        oversize, adopted, remapped, bad_lines, withdraw_failed, purged;
    int guard;                      /* the mass-vanish guard held withdrawals back */
    int ordered;                    /* the ids grow in message order (probes next time) */
    int64_t full_at;                /* when the primary was last listed in full */
    unsigned long probes;           /* "UIDL n" probes sent */
    int probed;                     /* ... and they gave the listing (no full UIDL) */
    unsigned long long bytes_in;    /* bytes read from the primary */
    long expire_days;               /* EXPIRE announced: days, -2 NEVER, -1 none */
    double seconds;
};

/* One sync of account a; what is a "sync", "release" (a sync that
 * applies the withdrawals the mass-vanish guard held back) or
 * "fetch <uidl>".  Fills *r
 * and returns 0 (also when the sync failed: r->ok = 0). */
int mirrord_sync(const struct pl_maccount *a, const char *what, struct msync_result *r);

/* ---- the destination (mirrord_deliver.c) ------------------------------- */

struct mout {
    struct pl_smtpc c;
    int open;
};
/* Hands msg[0..len) to Postfix for a->deliver_to with the header
 * "X-Postlink-Mirror: <token>" in front (any such field of the message's
 * own is left out).  0 accepted (qid filled when the reply names one), 1
 * refused for good (its size: 552 or 5.3.x at MAIL or after the data; its
 * form: 5.6.x after the data), -3 this copy refused now (another 5xx after
 * the data: tried again next sync), -1 not delivered now (4xx,
 * connection, or a 5xx that refuses every copy: an unknown recipient, a
 * refused sender, no 8BITMIME), -2 outcome unknown (no reply to the final
 * dot), with why. */
int mirrord_handover(struct mout *o, const struct pl_maccount *a, const char *token,
                     const char *msg, size_t len, char *qid, size_t qidlen, char *why,
                     size_t whylen);
void mirrord_out_close(struct mout *o);
/* The copies under tokens[0..n) at a->deliver_to, in one IMAP session:
 * expunged (expunge = 1) or marked read on the primary (\Seen and
 * $PostlinkPrimaryRead).  0 done (*found: how many copies in all), 1 the
 * destination cannot be reached that way (no imap_url for its domain),
 * -1 failed now (why). */
int mirrord_withdraw(const struct pl_maccount *a, const char *const *tokens, size_t n,
                     int expunge, int *found, char *why, size_t whylen);

/* ---- the push store (mirrord_push.c, --deliver-to push) ---------------- */

int mirrord_is_push(const struct pl_maccount *a);
/* Stores msg[0..len) (mark mode without whole: a short notice of it) for
 * a->user's devices under the reference rec->token, and records rec (the
 * id held) in the same durable transaction; pid gets the push message id
 * (PL_PID_LEN + 1 bytes).  0, or -1 with why (no device, the account
 * deleted, the store): nothing stored, nothing recorded. */
int mirrord_push_put(const struct pl_maccount *a, const struct pl_mrec *rec, const char *msg,
                     size_t len, int whole, char *pid, char *why, size_t whylen);
/* The copies under tokens[0..n) out of the queues of a->user's devices
 * that have not been sent them, in one durable transaction (found[i]: from
 * how many queues; 0 also when no device holds it any more).  0 done, -1
 * failed now (why): nothing withdrawn. */
int mirrord_push_withdraw(const struct pl_maccount *a, const char *const *tokens, size_t n,
                          int *found, char *why, size_t whylen);

/* ---- capability 1's state (mirrord_syncstate.c) ------------------------ */

/* The destination is a sync-enabled user (its domain in enabled_domains). */
int mirrord_sync_enabled(const struct pl_maccount *a);
/* In t: the copy with msgid reached a->deliver_to (PL_OK when not enabled). */
int mirrord_sync_arrived(pl_txn *t, const struct pl_maccount *a, const char *msgid, int64_t now);
/* Its own transaction: a "deleted" (delete mode) or "read" (mark mode)
 * control for msgid, fanned out to the user's devices (*copies). */
int mirrord_sync_withdraw(const struct pl_maccount *a, const char *msgid, const char *token,
                          int64_t now, unsigned *copies);

/* The canonical Message-ID of msg's header ("" when none), at most outlen - 1 bytes. */
void mirrord_msgid(const char *msg, size_t len, char *out, size_t outlen);

#endif
