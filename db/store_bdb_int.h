/* store_bdb_int.h -- internal to db/: the Berkeley DB store handle shared by
 * store_bdb.c (open, transactions, records), store_watch.c (crash
 * detection), store_registry.c (who is dead, who recovers), store_ops.c
 * (marks for the stuck-operation guard), store_stats.c and store_backup.c.
 * Nothing outside db/ includes this file, except unit tests of the guard. */
#ifndef PL_STORE_BDB_INT_H
#define PL_STORE_BDB_INT_H

#include <db.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "store.h"

#define PL_MAX_TABLES 64

struct pl_store {
    pthread_rwlock_t use;        /* read: inside a call on the env (each
                                    table operation, begin, commit...);
                                    write: close/reopen */
    pthread_mutex_t maint;       /* one maintenance pass at a time */
    pthread_mutex_t env_lock;    /* held to open or close env, and by the
                                    janitor's lock detector, which must never
                                    wait for s->use: a thread inside a lock
                                    wait holds s->use, and only the detector
                                    ends that wait */
    DB_ENV *env;
    DB *db[PL_MAX_TABLES];
    const char *names[PL_MAX_TABLES + 1];
    size_t ntables;
    struct pl_store_opts opts;
    char *home;
    int schema_version;
    atomic_int need_reset;       /* reopen: environment panicked or a process died */
    atomic_uint reset_epoch;     /* +1 each time need_reset goes from 0 to 1: a
                                    commit that saw it change may have written
                                    into an environment already recovered */
    atomic_int guard_stop;       /* the guard watches until the very end of close */
    atomic_int check_dead;       /* a lock wait timed out: look for dead processes now */
    atomic_int suspect_dead;     /* the registry shows a dead process: whichever
                                    thread gets the write lock first recovers */
    atomic_uint reopens;
    atomic_uint panic_msgs;      /* library PANIC messages not logged (see errcall) */
    atomic_llong last_maint;
    atomic_int closing;
    atomic_int reg_fd;           /* __db.register, open for the store's life:
                                    closing any descriptor of that file would
                                    drop this process's fcntl lock on it */
    int recover_fd;              /* __postlink.recover (flock) */
    pthread_mutex_t recover_mu;  /* recursive: the thread of this process that
                                    holds (or waits for) the flock; taken
                                    before the write lock, never after */
    int recover_depth;           /* under recover_mu */
    atomic_llong recover_wait_since; /* a reopen has waited for it since */
    pthread_mutex_t txns_lock;   /* the open transactions, so that a reopen or
                                    close can abort them */
    struct pl_txn *txns;
    pthread_t janitor, guard;
    int threads_running;
};

/* Error mapping shared by the modules (logs as needed). */
int pl_bdb_map(pl_store *s, int ret, const char *what);

/* Mark the calling thread as inside a library call / out of it.  A call
 * allowed longer than stuck_secs (opening with recovery) says how many
 * times longer. */
void pl_bdb_op_enter(pl_store *s);
void pl_bdb_op_enter_long(pl_store *s, unsigned factor);
void pl_bdb_op_leave(pl_store *s);
/* How many threads have been inside one call for s past their deadline. */
int pl_bdb_op_overdue(pl_store *s, long long now);

/* Close and reopen the environment (recovering it if needed), aborting the
 * transactions still open; bounded wait for other threads. */
int pl_bdb_reset(pl_store *s);
/* The janitor found a dead process in the registry: recover the
 * environment unless another process has done it already. */
int pl_bdb_recover_dead(pl_store *s);

/* The registry (store_registry.c): open it once the environment exists;
 * the pid of a registered process that died, or 0. */
void pl_bdb_registry_open(pl_store *s);
pid_t pl_bdb_registry_dead(pl_store *s);
int pl_bdb_registry_dead_list(pl_store *s, pid_t *dead, int max);   /* how many */
/* The recovery lock, held around every open of the environment: wait at
 * most wait_ms (and not at all once the store is closing), else PL_TEMP.
 * Taken before s->use's write lock, so that no thread waits for another
 * process's recovery while holding it. */
int pl_bdb_recover_lock(pl_store *s, long wait_ms);
void pl_bdb_recover_unlock(pl_store *s);

/* The crash-detection threads (store_watch.c). */
int pl_bdb_watch_start(pl_store *s);
void pl_bdb_watch_stop(pl_store *s);
/* Stop only the janitor; the guard goes on until pl_bdb_watch_stop. */
void pl_bdb_janitor_stop(pl_store *s);

/* Monotonic seconds. */
long long pl_bdb_now(void);

/* Test hook (store_ops.c): $POSTLINK_TEST_STUCK_FILE. */
void pl_bdb_test_stuck(pl_store *s);

/* Janitor: abort and free the transactions whose owners gave up waiting
 * for s->use to end them (a reopen was in progress); never waits. */
void pl_bdb_reap_orphans(pl_store *s);

/* Set need_reset (and bump reset_epoch when it was clear). */
void pl_bdb_mark_reset(pl_store *s);

#endif
