/* mirror.h -- capability 2's data (the POP3 mirror, postlink-mirrord):
 *   maccount key user (lower-case address) -> the account, one "name=value"
 *            per line (primary, login, secret_file, mode, deliver_to, ...);
 *            the secret itself is never stored, only the file it is read
 *            from at each sync
 *   mid      key "<user>\n<uidl>" -> what the mirror knows of one id of
 *            the primary's list at the last sync:
 *            "<state> <missing> <changed> <size> <token> <message-id>"
 *            state H held (handed over, the copy is there), P pending (a
 *            hand-over under token was started and not confirmed), S seen
 *            (no copy: withdrawn, adopted or forgotten copy), T tombstone
 *            (vanished; one that reappears is not copied again)
 *   mstatus  key user -> the last sync's outcome, written by postlink-mirrord
 *            ("name=value" lines: last, ok, error, fails, next, counts)
 *   mreq     key "<user>\n<what>" -> "<time>": what ("sync", "fetch <uidl>")
 *            was asked for by postlinkctl or a device; postlink-mirrord does
 *            it and deletes the row
 *   mguard   key hand-over token -> "<time>": tokens whose copy the
 *            destination already took (a repeated hand-over is dropped)
 * The administrator's accounts are changed only by postlinkctl. */
#ifndef PL_MIRROR_H
#define PL_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "mirror_diff.h"
#include "store.h"

#define PL_T_MACCOUNT "maccount"
#define PL_T_MID "mid"
#define PL_T_MSTATUS "mstatus"
#define PL_T_MREQ "mreq"
#define PL_T_MGUARD "mguard"

#define PL_MTOKEN_LEN 32            /* hex digits of a hand-over token */

enum pl_mirror_mode { PL_MIRROR_DELETE, PL_MIRROR_MARK };

struct pl_maccount {
    char user[256];
    char primary[512];              /* pop3://host[:port], pop3s://..., imap(s)://... */
    char login[256];
    char secret_file[1024];
    enum pl_mirror_mode mode;
    char deliver_to[256];           /* an address, or "push" (capability 5) */
    char ca_file[1024];             /* "" = the system's CAs */
    char tls_name[256];             /* the name the certificate must show; "" = the host */
    int insecure;                   /* accept any TLS certificate */
    int plain;                      /* pop3:// or imap:// without STLS/STARTTLS (the
                                     * password in the clear); else TLS is required */
    int use_retr;                   /* RETR instead of TOP (sets \Seen on Dovecot!) */
    unsigned interval;              /* seconds between syncs; 0 = only at times / on demand */
    char times[128];                /* "HH:MM[,HH:MM...]" local time; "" = none */
    int adopt;                      /* the next sync records the listed ids as delivered */
    int64_t created;
};

/* Checks for postlinkctl and postlink-mirrord: NULL if usable, else why not
 * (the URL's scheme, host and port; times "HH:MM,..."). */
const char *pl_maccount_check(const struct pl_maccount *a);
/* Splits a primary URL: scheme ("pop3", "pop3s", "imap", "imaps"), host and
 * port (default 110/995/143/993).  -1 when malformed. */
int pl_mirror_url(const char *url, char *scheme, size_t slen, char *host, size_t hlen,
                  unsigned *port);

/* The account of user: PL_OK, PL_NOTFOUND. */
int pl_maccount_get(pl_txn *t, const char *user, struct pl_maccount *a);
/* Adds (PL_OK) or, when replace is 0 and the user has one, PL_ERR with
 * *exists = 1. */
int pl_maccount_put(pl_txn *t, const struct pl_maccount *a, int replace, int *exists);
/* Removes the account, its ids, status and requests: PL_NOTFOUND if none. */
int pl_maccount_del(pl_txn *t, const char *user);
typedef int (*pl_maccount_fn)(void *ctx, const struct pl_maccount *a);
int pl_maccount_list(pl_txn *t, pl_maccount_fn fn, void *ctx);

/* ---- ids ----------------------------------------------------------------- */

enum pl_mid_rec_state { PL_MREC_HELD = 'H', PL_MREC_PENDING = 'P', PL_MREC_SEEN = 'S',
                        PL_MREC_TOMB = 'T' };

struct pl_mrec {
    char id[PL_UIDL_MAX + 1];
    char state;                     /* PL_MREC_* */
    unsigned missing;
    int64_t changed;
    unsigned long long size;
    char token[PL_MTOKEN_LEN + 1];  /* "" when none */
    char msgid[512];                /* Message-ID of the copy, "" when unknown */
};

int pl_mrec_put(pl_txn *t, const char *user, const struct pl_mrec *r);
int pl_mrec_get(pl_txn *t, const char *user, const char *id, struct pl_mrec *r, int for_update);
int pl_mrec_del(pl_txn *t, const char *user, const char *id);
typedef int (*pl_mrec_fn)(void *ctx, const struct pl_mrec *r);
/* Every id of user, in key order. */
int pl_mrec_list(pl_txn *t, const char *user, pl_mrec_fn fn, void *ctx);
/* Tombstones and seen ids older than before are forgotten; *n counts. */
int pl_mrec_purge(pl_txn *t, const char *user, int64_t tomb_before, unsigned *n);

/* A fresh hand-over token (PL_MTOKEN_LEN + 1 bytes): 0 or -1. */
int pl_mtoken_new(char *out, size_t outlen);
int pl_mtoken_ok(const char *tok);

/* ---- status and requests --------------------------------------------------- */

/* The status record as name=value lines (malloc'd in *text): PL_NOTFOUND
 * before the first sync. */
int pl_mstatus_get(pl_txn *t, const char *user, char **text);
int pl_mstatus_put(pl_txn *t, const char *user, const char *text);
/* The value of name in a status text into out ("" when absent). */
void pl_mstatus_field(const char *text, const char *name, char *out, size_t outlen);

/* what: "sync" or "fetch <uidl>". */
int pl_mreq_put(pl_txn *t, const char *user, const char *what, int64_t now);
typedef int (*pl_mreq_fn)(void *ctx, const char *user, const char *what, int64_t when);
int pl_mreq_list(pl_txn *t, pl_mreq_fn fn, void *ctx);
int pl_mreq_del(pl_txn *t, const char *user, const char *what);

/* The guard: 1 when token had been taken already, 0 when it is new (and
 * is now recorded), or a store error (< 0). */
int pl_mguard_take(pl_txn *t, const char *token, int64_t now);
int pl_mguard_purge(pl_txn *t, int64_t before, unsigned *n);

#endif
