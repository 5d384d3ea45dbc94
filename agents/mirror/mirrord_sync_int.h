/* mirrord_sync_int.h -- what the files of one POP3 sync share
 * (mirrord_sync.c, mirrord_remap.c): the primary's listing, the saved
 * list and the fetch in progress. */
#ifndef PL_MIRRORD_SYNC_INT_H
#define PL_MIRRORD_SYNC_INT_H

#include "mirrord.h"
#include "pop3_client.h"
#include "strutil.h"

#define BATCH 64
#define TOP_ALL 2147483647L          /* TOP n <lines>: the whole message */

struct lid {
    unsigned long msgno;
    unsigned long long size;
    int sized;                      /* size known (POP3: LIST asked for it) */
    int bad;                        /* a duplicate id */
    char id[PL_UIDL_MAX + 1];
    char *msgid;                    /* from TOP n 0, when the headers were asked for */
};

struct act { size_t saved; enum pl_mact a; };

struct job {                         /* one message to fetch */
    unsigned long msgno;
    const char *id;
    unsigned long long size;
    char token[PL_MTOKEN_LEN + 1];
    int refetch;                    /* a P id: the same token again */
};

struct sync;

/* A kind of primary (mirrord_pop3.c, mirrord_imap.c).  msgno is what
 * identifies a message within the session (POP3: its number; IMAP: its
 * UID).  fetch: lines < 0 the whole message by the command that may set
 * \Seen (RETR, only with --retr), lines 0 the header only, else the whole
 * message without changing the primary; callbacks and results as
 * pl_pop3_fetch. */
struct mprimary {
    int (*open)(struct sync *s, const char *scheme, const char *host, unsigned port,
                const char *password);          /* connect and log in; 0 or -1 (mirrord_fail) */
    int (*listing)(struct sync *s);              /* s->ids (mirrord_add_id), r->stat_count */
    /* The sizes of v[0..n) (all: of every listed id), when the listing
     * has none (NULL: it has them).  0 or -1 (mirrord_fail). */
    int (*sizes)(struct sync *s, struct lid **v, size_t n, int all);
    /* STAT's count only (r->stat_count), for a listing by probes; NULL:
     * this primary is always listed in full. */
    int (*count)(struct sync *s);
    /* "UIDL n": as pl_probe_fn (mirror_probe.h). */
    int (*probe)(struct sync *s, unsigned long msgno, char *id);
    /* The message's bytes are exactly its listed size (IMAP's literal);
     * 0: a POP3 server may add a CRLF to a message without one. */
    int exact_size;
    int (*fetch)(struct sync *s, const unsigned long *msgnos, size_t n, long lines,
                 const struct pl_pop3_fetch_cb *cb);
    const char *(*error)(struct sync *s);        /* why the session broke */
    const char *(*last)(struct sync *s);         /* the last refusal's text */
    void (*close)(struct sync *s);               /* also sets r->bytes_in */
};
extern const struct mprimary mirrord_pop3_primary, mirrord_imap_primary;

/* A vanished id's withdrawal, worked out for all of a sync's at once (one
 * IMAP session, one store transaction): rc 0 done, 1 the destination
 * cannot be reached that way, -1 failed now; found how many copies (-1
 * not known one by one: IMAP counts them together). */
struct wres { int tried, rc, found; };

struct sync {
    const struct pl_maccount *a;
    const struct mprimary *pr;
    void *pctx;                      /* the primary's session */
    const struct pl_cfg *cfg;
    struct msync_result *r;
    struct lid *ids;
    size_t nids, capids;
    struct lid **byid;               /* ids sorted by id */
    int sized_all;                   /* every listed id's size is known */
    int counted;                     /* STAT asked already (r->stat_count) */
    int withdraw_down;               /* a withdrawal failed: no more this sync */
    struct wres *wd;                 /* per act: its withdrawal's outcome (withdraw_all) */
    size_t nwd;                      /* withdrawals tried together */
    char wd_why[300];                /* why they failed */
    int prev_ordered;                /* the last sync found ids that grow */
    int64_t prev_full_at;            /* ... and listed in full then */
    struct pl_mrec *saved;
    size_t nsaved, capsaved;
    struct act *acts;
    size_t nacts, capacts;
    const char **dels;               /* tombstones past mirror_tombstone_ttl */
    size_t ndels;
    const char **fetch_new;          /* ids new this time */
    size_t nfetch_new, capfetch;
    struct mout out;
    /* the batch being fetched */
    struct job *jobs;
    struct pl_strbuf buf;
    int over, stop;
    int whole;                       /* a "fetch <uidl>": the whole message, also in mark mode */
    int headers;                     /* the fetch is TOP n 0 into lids[i]->msgid */
    struct lid **hdr_lids;           /* the ids of that fetch */
    int64_t now;
};

void mirrord_fail(struct sync *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct lid *mirrord_find_id(struct sync *s, const char *id);
struct lid *mirrord_find_msgno(struct sync *s, unsigned long msgno);   /* after sorting */
int mirrord_by_msgno(const void *x, const void *y);
/* A listed id (the listing's callbacks). */
struct lid *mirrord_add_id(struct sync *s, unsigned long msgno, const char *id);
int mirrord_put_recs(struct sync *s, const struct pl_mrec *recs, size_t n, unsigned flags);
/* The sizes of v[0..n) (v NULL: of every listed id), asked only for the
 * ones not known yet: one LIST n each for a few, the whole LIST for many
 * -- the primary's bytes stay near "the new messages and the id list". */
int mirrord_need_sizes(struct sync *s, struct lid **v, size_t n);
/* The fetch callbacks (headers or whole messages). */
int mirrord_f_begin(void *ctx, size_t i);
int mirrord_f_data(void *ctx, size_t i, const char *b, size_t len);
int mirrord_f_end(void *ctx, size_t i, int status);

/* mirrord_remap.c: the Message-IDs of the good listed ids without one
 * (TOP n 0); and, when none of the listed ids is one the mirror knows,
 * the saved ids re-keyed to the new ones by Message-ID and size (a
 * migrated primary).  0, or -1 after mirrord_fail. */
int mirrord_headers(struct sync *s);
int mirrord_remap(struct sync *s);
/* Orders saved records by id (the store's key order). */
int mirrord_mrec_cmp(const void *a, const void *b);

#endif
