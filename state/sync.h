/* sync.h -- the authoritative message state of capability 1 and the rules
 * that change it.  Every function here runs inside the caller's store
 * transaction, so that a state change, its pending record, its dedupe mark
 * and the outbox of copies to fan out are committed together or not at all.
 *
 * Rules (postlink-sync(8) documents them for administrators):
 *  - A message's state is four flags: read, replied, saved, deleted.  Each
 *    control word sets or clears one flag (unread clears read, undeleted
 *    clears deleted; replied never clears read).
 *  - Each flag remembers the stamp of the change that last set it: the
 *    control's Date (a missing Date, or one more than 15 minutes in the
 *    future, counts as its arrival time), then its X-Control-Version, then
 *    arrival order.  A control whose stamp is older than the flag's is
 *    stale: it changes nothing and is fanned out to no one.
 *  - A change that alters a flag bumps the user's version (like IMAP's
 *    MODSEQ); the message records the version of its last change.
 *  - A control that changes nothing is not fanned out; one whose (control
 *    Message-ID, target) pair was seen before is a duplicate and is ignored,
 *    which also stops loops between servers.
 *  - A target that has not arrived yet is held as pending until it arrives
 *    (then applied and fanned out) or pending_ttl passes (then expired). */
#ifndef PL_SYNC_H
#define PL_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "store.h"

/* The table names this module owns (schema v4). */
#define PL_T_MSG "msg"          /* "<user>\n<msgid>" -> message state */
#define PL_T_UVER "uver"        /* "<user>" -> "<version> <seq>" */
#define PL_T_CHG "chg"          /* "<user>\n<%020 version>" -> msgid */
#define PL_T_CTLSEEN "ctlseen"  /* "<user>\n<ctl msgid>\n<target>" -> time */
#define PL_T_PENDING "pending"  /* "<user>\n<target>\n<%020 seq>" -> held control */
#define PL_T_OUTBOX "outbox"    /* "<%020 seq>" -> copy to send (outbox.h) */

struct pl_sync_opts {
    int64_t now;             /* Unix time */
    int64_t pending_ttl;     /* seconds a control waits for its target */
    const char *hostname;    /* names this server in X-Postlink-Forwarded */
    int imap;                /* also queue IMAP flag changes for this user */
};

struct pl_sync_result {
    unsigned applied;        /* targets whose state changed */
    unsigned unchanged;      /* already in that state */
    unsigned stale;          /* older than the current state */
    unsigned pending;        /* held for a target not seen yet */
    unsigned duplicate;      /* (control, target) seen before */
    unsigned copies;         /* devices a copy was queued for */
    int64_t version;         /* the user's version afterwards */
    uint64_t outbox_first, outbox_last;   /* outbox keys written (0 = none) */
};

/* Apply a control from sender (USER's own address, one of USER's devices
 * or a peer server registered as a device) for user.  Copies go to every
 * device of user except sender and the addresses in exclude (e.g. a device
 * the control was also sent to directly).  A resync control queues one
 * reply to sender listing the changes after c->since. */
int pl_sync_control(pl_txn *t, const struct pl_sync_opts *o, const char *user,
                    const char *sender, const struct pl_control *c,
                    const char *const *exclude, size_t nexclude,
                    struct pl_sync_result *r);

/* A message with msgid was delivered to user: remember it, apply (and fan
 * out) the controls held for it, and return its current flags.  *released
 * counts the pending controls applied. */
int pl_sync_seen(pl_txn *t, const struct pl_sync_opts *o, const char *user,
                 const char *msgid, unsigned *flags, unsigned *released);

/* Mark pending controls older than their lifetime as expired (logged, kept
 * for "postlinkctl pending list --expired"); at most max per call. */
int pl_sync_expire(pl_txn *t, int64_t now, unsigned max, unsigned *expired);
/* Delete expired pending controls (of every user when user is NULL). */
int pl_sync_purge(pl_txn *t, const char *user, unsigned *purged);
/* Forget messages whose state never changed (no flags, version 0) that
 * arrived more than ttl seconds ago; a control for one later waits as
 * pending like one for an unknown message.  Changed messages are kept. */
int pl_sync_purge_idle(pl_txn *t, int64_t now, int64_t ttl, unsigned *purged);
/* Delete the records of table whose value starts with a Unix time older
 * than before (dedupe marks, route tokens). */
int pl_sync_purge_older(pl_txn *t, const char *table, int64_t before, unsigned *purged);
/* Delete dedupe marks older than ttl seconds. */
int pl_sync_purge_dedupe(pl_txn *t, int64_t now, int64_t ttl, unsigned *purged);

/* A message's state as read back for postlinkctl and tests. */
struct pl_msg_state {
    const char *user, *msgid;
    unsigned flags;
    int64_t version;         /* version of its last change, 0 = never changed */
    int64_t arrived;         /* when it was seen, 0 = not seen */
};
typedef int (*pl_msg_state_fn)(void *ctx, const struct pl_msg_state *m);
/* Visit user's messages (one when msgid != NULL), in key order. */
int pl_sync_state_list(pl_txn *t, const char *user, const char *msgid,
                       pl_msg_state_fn fn, void *ctx);
int64_t pl_sync_user_version(pl_txn *t, const char *user);

struct pl_pending_info {
    const char *user, *target, *word, *sender, *ctl_msgid;
    int expired;
    int64_t date, expires;
};
typedef int (*pl_pending_fn)(void *ctx, const struct pl_pending_info *p);
int pl_sync_pending_list(pl_txn *t, const char *user, pl_pending_fn fn, void *ctx);

#endif
