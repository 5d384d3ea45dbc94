/* store_bdb_int.h -- internal to db/: the Berkeley DB store handle shared by
 * store_bdb.c (open, transactions, records), store_watch.c (crash
 * detection), store_stats.c and store_backup.c.  Nothing outside db/
 * includes this file. */
#ifndef PL_STORE_BDB_INT_H
#define PL_STORE_BDB_INT_H

#include <db.h>
#include <pthread.h>
#include <stdatomic.h>

#include "store.h"

#define PL_MAX_TABLES 64
#define PL_OP_SLOTS 256

struct pl_store {
    pthread_rwlock_t use;        /* read: env in use; write: close/reopen */
    pthread_mutex_t maint;       /* one maintenance pass at a time */
    DB_ENV *env;
    DB *db[PL_MAX_TABLES];
    const char *names[PL_MAX_TABLES + 1];
    size_t ntables;
    struct pl_store_opts opts;
    char *home;
    int schema_version;
    atomic_int need_reset;       /* reopen: environment panicked or a process died */
    atomic_int check_dead;       /* a lock wait timed out: look for dead processes now */
    atomic_uint reopens;
    atomic_llong last_maint;
    atomic_llong reset_since;    /* when need_reset was set */
    atomic_int closing;
    int reg_fd;                  /* __db.register, open for the store's life:
                                    closing any descriptor of that file would
                                    drop this process's fcntl lock on it */
    pthread_t janitor, guard;
    int threads_running;
    /* deadline (monotonic seconds, 0 = idle) of the library call each
     * thread is in, for the guard */
    atomic_llong op_deadline[PL_OP_SLOTS];
};

/* Error mapping shared by the modules (logs as needed). */
int pl_bdb_map(pl_store *s, int ret, const char *what);

/* Mark the calling thread as inside a library call / out of it.  A call
 * allowed longer than stuck_secs (opening with recovery) says how many
 * times longer. */
void pl_bdb_op_enter(pl_store *s);
void pl_bdb_op_enter_long(pl_store *s, unsigned factor);
void pl_bdb_op_leave(pl_store *s);

/* Close and reopen the environment (recovering it if needed); bounded wait
 * for other threads. */
int pl_bdb_reset(pl_store *s);

/* The crash-detection threads (store_watch.c). */
int pl_bdb_watch_start(pl_store *s);
void pl_bdb_watch_stop(pl_store *s);

/* Monotonic seconds. */
long long pl_bdb_now(void);

#endif
