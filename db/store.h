/* store.h -- postlink's state store: named tables of byte-string keys and
 * values, changed in transactions, shared by every postlink process.  No
 * Berkeley DB type appears here, so that another backend can be added
 * behind the same calls (store_bdb.c is the embedded default).
 *
 * Return codes: PL_OK; PL_NOTFOUND (get/del of a missing key); PL_TEMP (try
 * again later: deadlock victim, lock timeout, or the environment is being
 * recovered after another process crashed -- the store reopens itself, the
 * caller aborts its transaction and tempfails or retries); PL_ERR (a real
 * error, logged; e.g. unknown table, disk full). */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>
#include <stdint.h>

enum { PL_OK = 0, PL_NOTFOUND = 1, PL_TEMP = -1, PL_ERR = -2 };

/* Transaction durability.  PL_TXN_SYNC is the default and must be used for
 * every commit after which postlink tells someone "accepted".  The others
 * are for caches that may be lost in a power failure. */
enum pl_txn_flags {
    PL_TXN_SYNC = 0,
    PL_TXN_WRITE_NOSYNC = 1,  /* written to the OS, not flushed to disk */
    PL_TXN_NOSYNC = 2,        /* left in the log buffer */
};

typedef struct pl_store pl_store;
typedef struct pl_txn pl_txn;

struct pl_store_opts {
    const char *home;             /* environment directory (created if missing) */
    uint64_t cache_bytes;         /* 0 = 8 MB */
    uint32_t log_file_bytes;      /* 0 = 1 MB */
    unsigned lock_timeout_ms;     /* 0 = 2000 */
    unsigned checkpoint_secs;     /* 0 = 60 */
    unsigned stuck_secs;          /* 0 = 10: a library call this long means a
                                     dead process left a mutex held: exit 75 */
    int schema_target;            /* 0 = current; tests open older schemas */
};

/* Open (creating, upgrading the schema and recovering as needed). On
 * failure returns PL_ERR/PL_TEMP and a message in err. */
int pl_store_open(pl_store **sp, const struct pl_store_opts *opts, char *err, size_t errlen);
/* Close.  Other threads' transactions get stuck_secs to end; those still
 * open then (and the caller's own) are aborted, with a warning; the
 * caller's own are freed.  If another thread's is left, the store is closed
 * but stays allocated, so that its owner's commit or abort (PL_TEMP) is
 * still safe: stop the threads that use the store first. */
void pl_store_close(pl_store *s);

/* A transaction the store had to abort meanwhile (the environment was
 * reopened after a crash) makes its next operation or commit PL_TEMP. */
int pl_store_begin(pl_store *s, pl_txn **tp, unsigned flags);
int pl_txn_commit(pl_txn *t);
/* Nothing anyone was told depends on this transaction after all: its
 * commit is written to the OS but not flushed (PL_TXN_WRITE_NOSYNC), so it
 * survives a crash of the process but not of the machine. */
void pl_txn_relax(pl_txn *t);
void pl_txn_abort(pl_txn *t);

/* Table operations inside a transaction.  get returns a malloc'd copy
 * (NUL-terminated for convenience, *vlen excludes the NUL); with
 * for_update it takes a write lock at once, avoiding upgrade deadlocks. */
int pl_store_put(pl_txn *t, const char *table, const void *key, size_t klen,
                 const void *val, size_t vlen);
int pl_store_get(pl_txn *t, const char *table, const void *key, size_t klen,
                 void **val, size_t *vlen, int for_update);
int pl_store_del(pl_txn *t, const char *table, const void *key, size_t klen);

/* Visit keys starting with prefix, in key order; the callback returns 0 to
 * go on, non-zero to stop (that value is returned). */
typedef int (*pl_store_visit_fn)(void *ctx, const void *key, size_t klen,
                                 const void *val, size_t vlen);
int pl_store_scan(pl_txn *t, const char *table, const void *prefix, size_t plen,
                  pl_store_visit_fn fn, void *ctx);

/* Delete every key of table starting with prefix (PL_OK also when none). */
int pl_store_del_prefix(pl_txn *t, const char *table, const void *prefix, size_t plen);

/* Run fn in a transaction, commit, and retry (bounded) on PL_TEMP. */
typedef int (*pl_store_txn_fn)(pl_txn *t, void *ctx);
int pl_store_run(pl_store *s, unsigned flags, pl_store_txn_fn fn, void *ctx);

/* Housekeeping: dead-process check, checkpoint, log removal, when due (or
 * now with force).  Daemons call it from a timer; commits call it too. */
int pl_store_maintain(pl_store *s, int force);

/* The schema: version and table names. */
int pl_store_schema_version(pl_store *s);
int pl_store_schema_current(void);
const char *const *pl_store_tables(pl_store *s);   /* NULL-terminated */

struct pl_store_stats {
    int schema_version;
    uint64_t log_files, log_bytes;
    uint64_t txn_active, txn_commits, txn_aborts;
    int64_t last_checkpoint;       /* unix time, 0 = never */
    uint64_t deadlocks, lock_timeouts;
    uint64_t cache_hit_pct;
    unsigned reopens;              /* times this handle recovered the env */
};
int pl_store_stats(pl_store *s, struct pl_store_stats *st);
/* Exact record count of one table. */
int pl_store_count(pl_store *s, const char *table, uint64_t *n);

/* Hot backup into dir (created; must be empty or absent) while others write,
 * then recover the copy so it stands alone. */
int pl_store_backup(pl_store *s, const char *dir, char *err, size_t errlen);
/* Verify every table of a store nobody is using (e.g. a backup copy).
 * Problems are reported through report(); returns PL_OK if all verified. */
int pl_store_verify_offline(const char *dir, void (*report)(void *, const char *), void *ctx);

const char *pl_store_home(pl_store *s);

#endif
