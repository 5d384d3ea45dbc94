/* push.h -- capability 5's store (push delivery, postlink-pushd): devices,
 * the messages waiting for them and each device's delivery state.
 *   pdev    key "<user>\n<name>" -> "id=<sel>\ncreated=<time>\n": a user's
 *           devices by name (user = lower-case address)
 *   pdevid  key "<sel>" -> "user=..\nname=..\nhash=..\ncreated=..\n" (and
 *           room=, slots= once the device reported its room): a
 *           device by its selector (16 hex digits, the token's public half);
 *           hash = SHA-256 (hex) of the token's secret half, never the secret
 *   pseq    key user -> "<n>": the last order number given to user's mail
 *   pmsg    key "<id>" (32 hex digits, random) -> the message's record,
 *           "name=value" lines: user, seq, size, type, date, arrived, sender,
 *           ref, queued (device queue entries), kept (processed entries)
 *   pbody   key "<id>" -> the message's RFC 5322 bytes, as received
 *   puser   key "<user>\n<seq>" -> "<id>": user's messages in arrival order
 *           (seq = the order number, 16 hex digits, so key order = arrival)
 *   pref    key "<user>\n<ref>" -> "<id>": a caller's reference (the mirror's
 *           hand-over token) to withdraw the message by
 *   pq      key "<sel>\n<seq>" -> "<id> W" (waiting) or "<id> S <time>"
 *           (sent at time, not acknowledged): what the device still has to
 *           receive, in order; the row goes when the device acknowledges
 *   pdone   key "<sel>\n<seq>" -> "<id> <time>": the device's processed
 *           store (acknowledged with disposition move at time)
 *   pack    key "<sel>\n<id>" -> "<time> d|m": the device acknowledged id
 *           (a repeated ack is recognised; purged by age)
 * A message's record and bytes go when no device queue and no processed
 * store holds it any more (queued = kept = 0).  A device receives the mail
 * that arrives after it was added.  Every function works inside the
 * caller's transaction; pl_pmsg_put must be committed with PL_TXN_SYNC
 * before anyone is told the message is accepted. */
#ifndef PL_PUSH_H
#define PL_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "store.h"

#define PL_T_PDEV "pdev"
#define PL_T_PDEVID "pdevid"
#define PL_T_PSEQ "pseq"
#define PL_T_PMSG "pmsg"
#define PL_T_PBODY "pbody"
#define PL_T_PUSER "puser"
#define PL_T_PREF "pref"
#define PL_T_PQ "pq"
#define PL_T_PDONE "pdone"
#define PL_T_PACK "pack"

#define PL_PSEL_LEN 16              /* hex digits of a device selector */
#define PL_PSECRET_LEN 64           /* hex digits of a token's secret half */
#define PL_PTOKEN_LEN (PL_PSEL_LEN + 1 + PL_PSECRET_LEN)   /* "<sel>.<secret>" */
#define PL_PID_LEN 32               /* hex digits of a message id */
#define PL_PNAME_MAX 64             /* a device name: [A-Za-z0-9._@+-] */
#define PL_PREF_MAX 64              /* a reference: printable, no spaces */
#define PL_PDEV_MAX 32              /* devices per user */

struct pl_pdev {
    char user[PL_ADDR_SIZE];
    char name[PL_PNAME_MAX + 1];
    char sel[PL_PSEL_LEN + 1];
    int64_t created;
    /* the room the device last reported, less what was sent since:
     * bytes and messages; -1 = never reported (no limit) */
    int64_t room_bytes, room_count;
};

/* ---- devices ------------------------------------------------------------- */

/* NULL if name is usable as a device name, else why not. */
const char *pl_pdev_name_check(const char *name);
/* Adds device name for user and writes its token (PL_PTOKEN_LEN + 1 bytes)
 * to token: shown once, only its hash is kept.  PL_OK; PL_ERR with *why
 * set ("exists", "too many devices", a name or user problem). */
int pl_pdev_add(pl_txn *t, const char *user, const char *name, int64_t now, char *token,
                size_t toklen, const char **why);
/* The device a bearer token belongs to: PL_OK, PL_NOTFOUND (unknown or
 * wrong token: the caller cannot tell which).  The selector is looked up
 * directly (it is not secret); the secret's hash is compared in constant
 * time (CRYPTO_memcmp). */
int pl_pdev_auth(pl_txn *t, const char *token, struct pl_pdev *d);
int pl_pdev_get(pl_txn *t, const char *user, const char *name, struct pl_pdev *d);
typedef int (*pl_pdev_fn)(void *ctx, const struct pl_pdev *d);
/* user's devices by name; user NULL: every device of every user. */
int pl_pdev_list(pl_txn *t, const char *user, pl_pdev_fn fn, void *ctx);
/* Records the device's room (d->room_bytes, d->room_count) in its
 * record: PL_OK, PL_NOTFOUND (the device is gone). */
int pl_pdev_set_room(pl_txn *t, const struct pl_pdev *d);
/* Removes the device, its queue, processed store and receipts (messages no
 * one else needs go with them): PL_OK, PL_NOTFOUND. */
int pl_pdev_del(pl_txn *t, const char *user, const char *name);

/* ---- messages ------------------------------------------------------------ */

struct pl_pmsg_in {
    const char *user;
    const void *bytes;
    size_t len;
    const char *type;               /* media type; NULL = "message/rfc822" */
    int64_t date;                   /* the message's date (unix time) */
    const char *sender;             /* envelope sender, for a bounce; NULL/"" = <> */
    const char *ref;                /* NULL, or a reference to withdraw it by */
};

struct pl_pmsg {
    char id[PL_PID_LEN + 1];
    char user[PL_ADDR_SIZE];
    uint64_t seq;                   /* per-user arrival order, from 1 */
    uint64_t size;
    char type[128];
    int64_t date, arrived;
    char sender[PL_ADDR_SIZE];
    char ref[PL_PREF_MAX + 1];
    unsigned queued, kept;
};

/* Stores a message for every device user has now, behind what they wait
 * for.  m (may be NULL) gets its record (id, seq).  PL_OK; PL_NOTFOUND when
 * user has no device (nothing stored); PL_ERR for bad input. */
int pl_pmsg_put(pl_txn *t, const struct pl_pmsg_in *in, int64_t now, struct pl_pmsg *m);
int pl_pmsg_meta(pl_txn *t, const char *id, struct pl_pmsg *m, int for_update);
/* The message's bytes (malloc'd, *len bytes): PL_OK, PL_NOTFOUND. */
int pl_pmsg_get(pl_txn *t, const char *id, void **bytes, size_t *len);
/* Takes the message out of the queue of each device of user that has not
 * been sent it yet (waiting); devices it was sent to keep it until they
 * acknowledge.  what is a message id or a reference given to put.  *n (may
 * be NULL) counts the queues.  PL_OK, PL_NOTFOUND (no such message). */
int pl_pmsg_withdraw(pl_txn *t, const char *user, const char *what, unsigned *n);
/* Removes the message everywhere (every queue and processed store). */
int pl_pmsg_drop(pl_txn *t, const char *id);
/* Retention: takes the message out of the queues of the devices that have
 * not been sent it (waiting rows), when apply; devices that were sent it
 * keep it until they acknowledge, processed stores keep theirs.  *waiting
 * counts those queues; *reached says whether any device was sent it,
 * acknowledged it or keeps it processed (then a bounce would be wrong).
 * PL_OK, PL_NOTFOUND. */
int pl_pmsg_expire(pl_txn *t, const char *id, int apply, unsigned *waiting, int *reached);

/* state of one message for one device */
enum { PL_PST_WAIT = 'W', PL_PST_SENT = 'S', PL_PST_MOVED = 'M', PL_PST_ACKED = 'A',
       PL_PST_NONE = '-' };
struct pl_pdstate {
    char name[PL_PNAME_MAX + 1];
    char state;                     /* PL_PST_* (ACKED: acknowledged with delete) */
    int64_t when;                   /* sent / moved / acknowledged; 0 for W, - */
};
typedef int (*pl_pmsg_list_fn)(void *ctx, const struct pl_pmsg *m, const struct pl_pdstate *st,
                               size_t n);
/* user's messages in arrival order, each with the state for each device
 * (in pl_pdev_list order). */
int pl_pmsg_list(pl_txn *t, const char *user, pl_pmsg_list_fn fn, void *ctx);

/* ---- one device's delivery -------------------------------------------------- */

/* The message id (NULL or "" = the first waiting one) if the device still
 * has to receive it: PL_OK with m, *state (PL_PST_WAIT/SENT, may be NULL)
 * and next (PL_PID_LEN + 1 bytes: the id after it for this device, "" after
 * the last); PL_NOTFOUND when the queue is empty or id is not in it (never
 * for this device, another user's, acknowledged, withdrawn meanwhile or
 * unknown: the daemon may then offer the first waiting one).  Cost: the
 * entries before id in the device's queue are read (few: the device acks
 * as it goes). */
int pl_pq_get(pl_txn *t, const struct pl_pdev *d, const char *id, struct pl_pmsg *m,
              char *state, char *next);
/* Records that id was sent to the device (after the response went out):
 * PL_OK, PL_NOTFOUND (not in its queue). */
int pl_pq_sent(pl_txn *t, const struct pl_pdev *d, const char *id, int64_t now);

enum pl_pdisp { PL_PDISP_DELETE, PL_PDISP_MOVE };
enum pl_pack_rc {
    PL_PACK_OK = 0,                 /* applied */
    PL_PACK_UNKNOWN = 10,           /* no such message */
    PL_PACK_FOREIGN = 11,           /* another user's message */
    PL_PACK_NOTSENT = 12,           /* the device's, but never sent to it (or
                                       withdrawn, or not for this device) */
    PL_PACK_DONE = 13,              /* already acknowledged by this device:
                                       nothing changed (a repeated ack) */
};
/* Applies the device's acknowledgement of id: < 0 store error, else
 * enum pl_pack_rc.  Only an id marked sent to this device is applied. */
int pl_pq_ack(pl_txn *t, const struct pl_pdev *d, const char *id, enum pl_pdisp disp,
              int64_t now);
/* What pl_pq_ack would answer for id, changing nothing (a request's ack
 * is checked before the response and applied after it went out). */
int pl_pq_ack_check(pl_txn *t, const struct pl_pdev *d, const char *id);
/* A receipt for id as if the device had acknowledged it: for a message sent
 * to the device in full whose queue row went meanwhile (withdrawn, or over
 * a retention limit), so that the device's ack of it is a repeated ack, not
 * a refusal.  Only after the response went out. */
int pl_pack_note(pl_txn *t, const struct pl_pdev *d, const char *id, int64_t now);
/* Forgets receipts (pack) older than before. */
int pl_pack_purge(pl_txn *t, int64_t before, unsigned *n);

/* ---- retention ------------------------------------------------------------- */

struct pl_push_usage {
    unsigned q_count;               /* messages some device has still to receive */
    uint64_t q_bytes;
    int64_t q_oldest;               /* arrival; 0 = none */
    unsigned p_count;               /* processed entries (device, message) */
    uint64_t p_bytes;               /* bytes of messages kept only as processed */
    int64_t p_oldest;               /* moved; 0 = none */
};
int pl_push_usage(pl_txn *t, const char *user, struct pl_push_usage *u);

struct pl_push_limits {             /* 0 = no limit */
    unsigned max_count;
    uint64_t max_bytes;
    int64_t max_age;                /* seconds since arrival */
    int64_t processed_age;          /* seconds since moved */
};
enum pl_push_over { PL_OVER_COUNT, PL_OVER_BYTES, PL_OVER_AGE, PL_OVER_PROCESSED };
/* device: "" for a queued message, else the name of the device whose
 * processed store holds it; when: arrival, or moved for PROCESSED. */
typedef int (*pl_push_over_fn)(void *ctx, const struct pl_pmsg *m, const char *device,
                               int64_t when, enum pl_push_over why);
/* Reports what of user's mail is over the limits, oldest first: queued
 * messages (the first rule that applies), then processed entries.  Nothing
 * is changed: the caller bounces or drops (pl_pmsg_drop,
 * pl_pmsg_purge_processed) and logs. */
int pl_push_over(pl_txn *t, const char *user, const struct pl_push_limits *l, int64_t now,
                 pl_push_over_fn fn, void *ctx);
/* Removes processed entries moved before `before` (every user); *n counts. */
int pl_pmsg_purge_processed(pl_txn *t, int64_t before, unsigned *n);

#endif
