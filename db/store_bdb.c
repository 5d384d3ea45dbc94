/* store_bdb.c -- the store (store.h) on one Berkeley DB 5.3 transactional
 * environment shared by separate processes: open (with recovery and schema
 * upgrade), transactions, records, housekeeping.
 *
 * Crash handling (see also store_watch.c and store_registry.c): every
 * process opens the environment with DB_REGISTER | DB_RECOVER, holding
 * postlink's recovery lock, so the first process to open it after another
 * one died runs recovery -- and logs that one line -- which panics the
 * environment for everybody else.  A panicked environment turns every call
 * into PL_TEMP; the store then aborts the transactions still open, closes
 * and reopens itself (waiting for the recoverer, joining the recovered
 * environment, one info line) without the caller doing anything but retry
 * or tempfail.  The library's own "PANIC: ... run recovery" message, one
 * per failed call, is counted, not logged.
 *
 * Locking: the read side of s->use is held for each call into the library
 * (begin, each table operation, commit, abort), the write side to close or
 * reopen the environment.  Nobody waits for the read side longer than
 * db_lock_timeout (PL_TEMP; a commit or abort that cannot get it leaves the
 * transaction to the reopen or the janitor to abort), and the write side is
 * taken only once the recovery lock is held, so a reopen never keeps the
 * store locked while another process recovers.  Open transactions are
 * listed in s->txns; a reopen aborts them (their next operation or commit returns PL_TEMP) but
 * leaves them allocated until their owners end them; pl_store_close aborts
 * them too, so it cannot hang on a transaction somebody forgot, and frees
 * the store only if no other thread's transaction is left. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "schema.h"
#include "store_bdb_int.h"
#include "strutil.h"

#define ENV_FLAGS (DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | \
                   DB_INIT_MPOOL | DB_THREAD | DB_REGISTER | DB_RECOVER)

struct pl_txn {
    pl_store *s;
    DB_TXN *txn;                 /* NULL once aborted by a reopen or close
                                    (dead: the owner still ends it) */
    int nolock;                  /* the schema upgrade: caller holds s->use */
    int orphan;                  /* under txns_lock: the owner gave up waiting
                                    to end it; the janitor or a reopen does */
    pthread_t owner;             /* the thread that began it */
    u_int32_t commit_flags;      /* 0, or DB_TXN_WRITE_NOSYNC after pl_txn_relax */
    struct pl_txn *prev, *next;  /* in s->txns */
};

static int open_env(pl_store *s, int *recovered, char *err, size_t errlen);
static void close_env(pl_store *s);

/* This process's db_lock_timeout, for each lock wait of the transaction. */
static void txn_timeout(pl_store *s, DB_TXN *txn)
{
    int ret = txn->set_timeout(txn, (db_timeout_t)s->opts.lock_timeout_ms * 1000,
                               DB_SET_LOCK_TIMEOUT);
    if (ret != 0)
        msg_warn("store: cannot set the lock timeout of a transaction: %s", db_strerror(ret));
}

long long pl_bdb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

#define CALL(s, expr) (pl_bdb_op_enter(s), pl_bdb_leave_ret((s), (expr)))

static inline int pl_bdb_leave_ret(pl_store *s, int ret)
{
    pl_bdb_op_leave(s);
    return ret;
}

/* ---- error mapping ------------------------------------------------------ */

void pl_bdb_mark_reset(pl_store *s)
{
    if (!atomic_exchange(&s->need_reset, 1))
        atomic_fetch_add(&s->reset_epoch, 1);
}

int pl_bdb_map(pl_store *s, int ret, const char *what)
{
    switch (ret) {
    case 0:
        return PL_OK;
    case DB_NOTFOUND:
    case DB_KEYEMPTY:
        return PL_NOTFOUND;
    case DB_LOCK_DEADLOCK:
        msg_debug("store: %s: deadlock, will retry", what);
        return PL_TEMP;
    case DB_LOCK_NOTGRANTED:
        msg_warn("store: %s: lock wait timed out; checking for dead processes", what);
        atomic_store(&s->check_dead, 1);
        return PL_TEMP;
    case DB_RUNRECOVERY:
        /* The recoverer has said so; pl_bdb_reset says when we are back. */
        if (!atomic_load(&s->need_reset))
            msg_debug("store: %s: the environment is being recovered; reopening", what);
        pl_bdb_mark_reset(s);
        return PL_TEMP;
    case EBUSY:
    case EAGAIN:
        msg_debug("store: %s: busy, will retry", what);
        return PL_TEMP;
    default:
        msg_error("store: %s: %s", what, db_strerror(ret));
        return PL_ERR;
    }
}

/* Every call into a panicked environment makes the library say "PANIC:
 * fatal region error detected; run recovery" once more: counted here and
 * reported once by pl_bdb_reset, which is what a panic leads to. */
static void errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
    pl_store *s = env->app_private;
    (void)pfx;
    if (s != NULL && (strstr(msg, "PANIC") != NULL || strstr(msg, "run recovery") != NULL)) {
        atomic_fetch_add(&s->panic_msgs, 1);
        return;
    }
    msg_warn("berkeley db: %s", msg);
}

/* ---- open / close ------------------------------------------------------- */

static int lookup(pl_store *s, const char *table, DB **dbp)
{
    for (size_t i = 0; i < s->ntables; i++)
        if (strcmp(s->names[i], table) == 0) {
            *dbp = s->db[i];
            return PL_OK;
        }
    msg_error("store: unknown table \"%s\" (schema version %d)", table, s->schema_version);
    return PL_ERR;
}

static int open_tables(pl_store *s, char *err, size_t errlen)
{
    const char *names[PL_MAX_TABLES + 1];
    size_t n = pl_schema_tables(s->opts.schema_target, names, PL_MAX_TABLES + 1);

    for (size_t i = 0; i < n; i++) {
        char file[256];
        int ret;
        snprintf(file, sizeof(file), "%s.db", names[i]);
        if ((ret = db_create(&s->db[i], s->env, 0)) == 0)
            ret = CALL(s, s->db[i]->open(s->db[i], NULL, file, NULL, DB_BTREE,
                                         DB_CREATE | DB_THREAD | DB_AUTO_COMMIT, 0660));
        if (ret != 0) {
            snprintf(err, errlen, "cannot open table %s in %s: %s", names[i], s->home,
                     db_strerror(ret));
            if (s->db[i] != NULL)
                s->db[i]->close(s->db[i], 0);
            s->db[i] = NULL;
            return ret == DB_RUNRECOVERY || ret == DB_LOCK_DEADLOCK ? PL_TEMP : PL_ERR;
        }
        s->names[i] = names[i];
        s->ntables = i + 1;
    }
    s->names[s->ntables] = NULL;
    return PL_OK;
}

/* Bring the schema up to the target version in one transaction. */
static int upgrade_schema(pl_store *s, char *err, size_t errlen)
{
    pl_txn t = {.s = s, .nolock = 1};
    int target = s->opts.schema_target, version = 0, rc;
    void *val = NULL;
    size_t vlen;
    char buf[32];

    rc = pl_bdb_map(s, CALL(s, s->env->txn_begin(s->env, NULL, &t.txn, DB_TXN_SYNC)), "txn_begin");
    if (rc != PL_OK)
        goto fail;
    txn_timeout(s, t.txn);
    rc = pl_store_get(&t, "meta", "schema_version", 14, &val, &vlen, 1);
    if (rc == PL_OK)
        version = atoi(val);
    free(val);
    if (rc < 0)
        goto fail;
    if (version > pl_store_schema_current()) {
        t.txn->abort(t.txn);
        snprintf(err, errlen, "store %s has schema version %d, newer than this postlink "
                 "understands (%d): upgrade postlink", s->home, version, pl_store_schema_current());
        return PL_ERR;
    }
    for (int i = 0; i < pl_schema_nsteps; i++) {
        const struct pl_schema_step *step = &pl_schema_steps[i];
        if (step->version <= version || step->version > target)
            continue;
        if (step->migrate != NULL && (rc = step->migrate(&t)) != PL_OK)
            goto fail;
        snprintf(buf, sizeof(buf), "%d", step->version);
        if ((rc = pl_store_put(&t, "meta", "schema_version", 14, buf, strlen(buf))) != PL_OK)
            goto fail;
        msg_info("store: %s: schema upgraded to version %d", s->home, step->version);
    }
    if ((rc = pl_bdb_map(s, CALL(s, t.txn->commit(t.txn, 0)), "schema commit")) != PL_OK) {
        snprintf(err, errlen, "cannot commit the schema upgrade in %s", s->home);
        return rc;
    }
    s->schema_version = version > target ? version : target;
    return PL_OK;
fail:
    if (t.txn != NULL)
        t.txn->abort(t.txn);
    snprintf(err, errlen, "cannot read or upgrade the schema in %s", s->home);
    return rc < 0 ? rc : PL_ERR;
}

/* With the write lock held.  *recovered: this process found a dead one in
 * the registry and so ran recovery. */
static int open_env(pl_store *s, int *recovered, char *err, size_t errlen)
{
    uint64_t cache = s->opts.cache_bytes;
    pid_t dead[8];
    int ret, rc, ndead;

    *recovered = 0;
    if ((ret = db_env_create(&s->env, 0)) != 0) {
        snprintf(err, errlen, "db_env_create: %s", db_strerror(ret));
        return PL_ERR;
    }
    s->env->app_private = s;
    s->env->set_errcall(s->env, errcall);
    s->env->set_cachesize(s->env, (u_int32_t)(cache >> 30), (u_int32_t)(cache & 0x3fffffff), 1);
    s->env->set_lg_max(s->env, s->opts.log_file_bytes);
    s->env->set_lk_detect(s->env, DB_LOCK_DEFAULT);
    /* No environment-wide lock timeout: that one is shared, the last
     * process to open would set it for all; each transaction gets this
     * process's own (txn_timeout). */
    /* Give the other processes 300 ms to leave a panicked environment
     * before recovery: their janitors notice a panic within 200 ms. */
    s->env->set_timeout(s->env, 300000, DB_SET_REG_TIMEOUT);
    s->env->set_lk_max_locks(s->env, 20000);
    s->env->set_lk_max_objects(s->env, 20000);
    s->env->set_lk_max_lockers(s->env, 4000);
    s->env->set_tx_max(s->env, 1000);
    /* One process at a time opens the environment; if a registered
     * process is dead, this open recovers it, and this process says so. */
    if ((rc = pl_bdb_recover_lock(s, (long)s->opts.stuck_secs * 7000)) != PL_OK) {
        snprintf(err, errlen, "another process is recovering the store in %s", s->home);
        s->env->close(s->env, 0);
        s->env = NULL;
        return rc;
    }
    pl_bdb_registry_open(s);
    if ((ndead = pl_bdb_registry_dead_list(s, dead, 8)) > 0) {
        char pids[128] = "";
        for (int i = 0; i < ndead; i++)
            snprintf(pids + strlen(pids), sizeof(pids) - strlen(pids), "%s%ld",
                     i == 0 ? "" : i == ndead - 1 ? " and " : ", ", (long)dead[i]);
        msg_warn("store: %s: process%s %s died while using the store; recovering",
                 s->home, ndead > 1 ? "es" : "", pids);
        *recovered = 1;
    }
    /* Recovery of a long log may take a while: allow six times longer. */
    pl_bdb_op_enter_long(s, 6);
    ret = s->env->open(s->env, s->home, ENV_FLAGS, 0660);
    pl_bdb_op_leave(s);
    pl_bdb_recover_unlock(s);
    pl_bdb_registry_open(s);       /* the first open creates it */
    if (ret != 0) {
        snprintf(err, errlen, "cannot open the Berkeley DB environment in %s: %s", s->home,
                 db_strerror(ret));
        s->env->close(s->env, 0);
        s->env = NULL;
        return ret == DB_RUNRECOVERY || ret == EAGAIN ? PL_TEMP : PL_ERR;
    }
    if ((rc = open_tables(s, err, errlen)) != PL_OK ||
        (rc = upgrade_schema(s, err, errlen)) != PL_OK) {
        close_env(s);
        return rc;
    }
    atomic_store(&s->need_reset, 0);
    atomic_store(&s->check_dead, 0);
    return PL_OK;
}

static void close_env(pl_store *s)
{
    pl_bdb_op_enter(s);
    for (size_t i = 0; i < s->ntables; i++)
        if (s->db[i] != NULL)
            s->db[i]->close(s->db[i], 0);
    memset(s->db, 0, sizeof(s->db));
    s->ntables = 0;
    s->names[0] = NULL;
    if (s->env != NULL) {
        /* Closing a panicked environment complains about every file
         * handle; that is expected here and not worth a log line. */
        if (atomic_load(&s->need_reset))
            s->env->set_errcall(s->env, NULL);
        s->env->close(s->env, 0);
    }
    s->env = NULL;
    pl_bdb_op_leave(s);
}

/* Take t out of s->txns; with txns_lock held. */
static void list_remove(pl_store *s, pl_txn *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        s->txns = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
}

/* With txns_lock held. */
static void unlink_free(pl_store *s, pl_txn *t)
{
    list_remove(s, t);
    free(t);
}

/* The owner of t could not get the read lock to end it: whoever holds the
 * write lock (a reopen or close) or else the janitor aborts and frees it. */
static void txn_orphan(pl_txn *t)
{
    pthread_mutex_lock(&t->s->txns_lock);
    t->orphan = 1;
    pthread_mutex_unlock(&t->s->txns_lock);
}

/* The read lock, waiting no longer than for a record lock
 * (db_lock_timeout): a reopen may wait for another process's recovery,
 * and a milter thread must answer Postfix before its timeouts. */
static int timed_rdlock(pl_store *s)
{
    struct timespec deadline;
    long ms = (long)s->opts.lock_timeout_ms;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    if (pthread_rwlock_timedrdlock(&s->use, &deadline) == 0)
        return PL_OK;
    msg_debug("store: %s: busy reopening; will retry", s->home);
    return PL_TEMP;
}

/* Abort the transactions still open (the write lock is held, so none of
 * them is inside a call).  They stay listed and allocated, dead (txn NULL),
 * until their owners commit or abort them.  Returns how many were listed. */
static unsigned abort_open_txns(pl_store *s)
{
    unsigned n = 0;

    pthread_mutex_lock(&s->txns_lock);
    for (pl_txn *t = s->txns, *next; t != NULL; t = next) {
        next = t->next;
        n++;
        if (t->txn != NULL && s->env != NULL)
            (void)CALL(s, t->txn->abort(t->txn));
        t->txn = NULL;
        if (t->orphan)
            unlink_free(s, t);
    }
    pthread_mutex_unlock(&s->txns_lock);
    return n;
}

/* The janitor, every tick: orphans still holding locks are aborted here,
 * under the read lock, which it only tries. */
void pl_bdb_reap_orphans(pl_store *s)
{
    if (pthread_rwlock_tryrdlock(&s->use) != 0)
        return;
    pthread_mutex_lock(&s->txns_lock);
    for (pl_txn *t = s->txns, *next; t != NULL; t = next) {
        next = t->next;
        if (!t->orphan)
            continue;
        if (t->txn != NULL && s->env != NULL)
            (void)CALL(s, t->txn->abort(t->txn));
        unlink_free(s, t);
    }
    pthread_mutex_unlock(&s->txns_lock);
    pthread_rwlock_unlock(&s->use);
}

/* Transactions of threads other than the caller that their owners have not
 * ended yet, open or dead (aborted by a reopen): the owners will still
 * call commit or abort on them. */
static unsigned others_txns(pl_store *s)
{
    unsigned n = 0;
    pthread_mutex_lock(&s->txns_lock);
    for (pl_txn *t = s->txns; t != NULL; t = t->next)
        if (!t->orphan && !pthread_equal(t->owner, pthread_self()))
            n++;
    pthread_mutex_unlock(&s->txns_lock);
    return n;
}

/* Closing: free the caller's own transactions (it must not use them after
 * close); returns how many of other threads' are left. */
static unsigned forget_own_txns(pl_store *s)
{
    unsigned left = 0;

    pthread_mutex_lock(&s->txns_lock);
    for (pl_txn *t = s->txns, *next; t != NULL; t = next) {
        next = t->next;
        if (!t->orphan && !pthread_equal(t->owner, pthread_self())) {
            left++;
            continue;
        }
        unlink_free(s, t);
    }
    pthread_mutex_unlock(&s->txns_lock);
    return left;
}

static void txn_link(pl_txn *t)
{
    pl_store *s = t->s;
    pthread_mutex_lock(&s->txns_lock);
    t->prev = NULL;
    t->next = s->txns;
    if (s->txns != NULL)
        s->txns->prev = t;
    s->txns = t;
    pthread_mutex_unlock(&s->txns_lock);
}

static void txn_unlink(pl_txn *t)
{
    pl_store *s = t->s;
    pthread_mutex_lock(&s->txns_lock);
    list_remove(s, t);
    pthread_mutex_unlock(&s->txns_lock);
}

int pl_store_open(pl_store **sp, const struct pl_store_opts *opts, char *err, size_t errlen)
{
    pl_store *s = pl_xcalloc(1, sizeof(*s));
    int rc, recovered;

    atomic_store(&s->reg_fd, -1);
    s->recover_fd = -1;
    s->opts = *opts;
    if (s->opts.cache_bytes == 0) s->opts.cache_bytes = 8 << 20;
    if (s->opts.log_file_bytes == 0) s->opts.log_file_bytes = 1 << 20;
    if (s->opts.lock_timeout_ms == 0) s->opts.lock_timeout_ms = 2000;
    if (s->opts.checkpoint_secs == 0) s->opts.checkpoint_secs = 60;
    if (s->opts.stuck_secs == 0) s->opts.stuck_secs = 10;
    if (s->opts.schema_target <= 0 || s->opts.schema_target > pl_store_schema_current())
        s->opts.schema_target = pl_store_schema_current();
    s->home = pl_xstrdup(opts->home);
    s->opts.home = s->home;
    pthread_rwlock_init(&s->use, NULL);
    pthread_mutex_init(&s->maint, NULL);
    pthread_mutex_init(&s->env_lock, NULL);
    pthread_mutex_init(&s->txns_lock, NULL);
    {
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->recover_mu, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    atomic_store(&s->last_maint, pl_bdb_now());

    if (mkdir(s->home, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", s->home, strerror(errno));
        rc = PL_ERR;
    } else {
        pl_bdb_watch_start(s);          /* the guard watches the open too */
        pthread_rwlock_wrlock(&s->use);
        pthread_mutex_lock(&s->env_lock);
        rc = open_env(s, &recovered, err, errlen);
        pthread_mutex_unlock(&s->env_lock);
        pthread_rwlock_unlock(&s->use);
    }
    if (rc != PL_OK) {
        pl_bdb_watch_stop(s);
        if (s->reg_fd >= 0)
            close(s->reg_fd);
        if (s->recover_fd >= 0)
            close(s->recover_fd);
        pthread_rwlock_destroy(&s->use);
        pthread_mutex_destroy(&s->maint);
        pthread_mutex_destroy(&s->env_lock);
        pthread_mutex_destroy(&s->txns_lock);
        pthread_mutex_destroy(&s->recover_mu);
        free(s->home);
        free(s);
        return rc;
    }
    *sp = s;
    return PL_OK;
}

void pl_store_close(pl_store *s)
{
    struct timespec deadline;
    unsigned open_txns, left;
    int locked;

    if (s == NULL)
        return;
    atomic_store(&s->closing, 1);  /* no new transactions; the janitor ends */
    pl_bdb_janitor_stop(s);        /* the guard watches the close itself */
    /* Give other threads' transactions stuck_secs to end by themselves
     * (the caller should have stopped them: after close their handles are
     * gone); the caller's own are aborted at once. */
    for (long long give_up = pl_bdb_now() + s->opts.stuck_secs;
         others_txns(s) > 0 && pl_bdb_now() < give_up;)
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    /* Only calls in flight hold the lock, briefly; a thread that never
     * comes back (a test that failed inside a scan callback) must not make
     * close hang. */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)s->opts.stuck_secs * 2;
    locked = pthread_rwlock_timedwrlock(&s->use, &deadline) == 0;
    if (!locked) {
        /* Freeing the store under it would be worse than leaving it: the
         * process is about to exit, and the next opener recovers. */
        msg_error("store: %s: a thread is still inside a store call; leaving the store open",
                  s->home);
        return;
    }
    if ((open_txns = abort_open_txns(s)) > 0)
        msg_warn("store: %s: closed with %u transaction%s still open; aborted", s->home,
                 open_txns, open_txns == 1 ? "" : "s");
    left = forget_own_txns(s);
    if (s->env != NULL && !atomic_load(&s->need_reset))
        (void)CALL(s, s->env->txn_checkpoint(s->env, 0, 0, 0));
    pthread_mutex_lock(&s->env_lock);
    close_env(s);
    pthread_mutex_unlock(&s->env_lock);
    if (s->reg_fd >= 0)
        close(s->reg_fd);          /* only now: see pl_bdb_registry_dead() */
    if (s->recover_fd >= 0)
        close(s->recover_fd);
    s->recover_fd = -1;
    atomic_store(&s->reg_fd, -1);
    pl_bdb_watch_stop(s);          /* the guard, last */
    pthread_rwlock_unlock(&s->use);
    if (left > 0) {
        /* Their owners will still commit or abort them, which touches the
         * store: leave it allocated (closed: every call is PL_TEMP). */
        msg_error("store: %s: %u transaction%s of other threads still not ended; "
                  "leaving the store allocated", s->home, left, left == 1 ? "" : "s");
        return;
    }
    pthread_rwlock_destroy(&s->use);
    pthread_mutex_destroy(&s->maint);
    pthread_mutex_destroy(&s->env_lock);
    pthread_mutex_destroy(&s->txns_lock);
    pthread_mutex_destroy(&s->recover_mu);
    free(s->home);
    free(s);
}

/* Retried every 200 ms by the janitor: say it every 10 s. */
static void reopen_failed(pl_store *s, const char *err)
{
    static atomic_llong last_warned;
    long long now = pl_bdb_now(), then = atomic_load(&last_warned);

    pl_bdb_mark_reset(s);
    if (now - then >= 10 && atomic_compare_exchange_strong(&last_warned, &then, now))
        msg_warn("store: reopen failed, will retry: %s", err);
    else
        msg_debug("store: reopen failed, will retry: %s", err);
}

/* Close and reopen, with the recovery lock and the write lock held. */
static int reopen_locked(pl_store *s)
{
    unsigned failed = atomic_exchange(&s->panic_msgs, 0), aborted;
    char err[512];
    int rc, recovered;

    aborted = abort_open_txns(s);
    pthread_mutex_lock(&s->env_lock);
    close_env(s);
    rc = open_env(s, &recovered, err, sizeof(err));
    pthread_mutex_unlock(&s->env_lock);
    failed += atomic_exchange(&s->panic_msgs, 0);
    if (rc == PL_OK) {
        atomic_fetch_add(&s->reopens, 1);
        if (!recovered)
            msg_info("store: %s: environment reopened after recovery", s->home);
        if (failed > 0 || aborted > 0)
            msg_debug("store: %s: %u calls failed and %u open transactions were aborted "
                      "during recovery", s->home, failed, aborted);
    } else {
        reopen_failed(s, err);
    }
    return rc;
}

/* Bounded: a thread that is still inside the library holds its read lock;
 * the guard deals with a thread that never comes back.  The janitor waits
 * only briefly: while it waits it does not run the lock detector, and a
 * thread of this process in a lock wait (holding its read lock) may be
 * waiting for exactly that.  Such a thread then does the work itself once
 * it is out (pl_store_begin). */
static int timed_wrlock(pl_store *s)
{
    struct timespec deadline;
    long ms = pthread_equal(pthread_self(), s->janitor) ? 100 : 1000;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += ms * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    return pthread_rwlock_timedwrlock(&s->use, &deadline) == 0 ? PL_OK : PL_TEMP;
}

/* The recovery lock first, then the write lock (both bounded like
 * timed_wrlock): waiting for another process's recovery must not keep this
 * process's threads out of the store meanwhile. */
static int lock_for_reopen(pl_store *s)
{
    long ms = pthread_equal(pthread_self(), s->janitor) ? 100 : 1000;

    if (atomic_load(&s->closing))
        return PL_TEMP;
    if (pl_bdb_recover_lock(s, ms) != PL_OK) {
        /* the janitor tries again in 200 ms; say so when it is long */
        long long now = pl_bdb_now(), since = 0;
        if (!atomic_compare_exchange_strong(&s->recover_wait_since, &since, now) &&
            now - since >= (long long)s->opts.stuck_secs * 7 &&
            atomic_compare_exchange_strong(&s->recover_wait_since, &since, now))
            msg_warn("store: %s: another process has been recovering the store for "
                     "%lld seconds; will try again", s->home, now - since);
        return PL_TEMP;
    }
    atomic_store(&s->recover_wait_since, 0);
    if (timed_wrlock(s) != PL_OK) {
        pl_bdb_recover_unlock(s);
        return PL_TEMP;
    }
    if (atomic_load(&s->closing)) {    /* closed meanwhile: never reopen */
        pthread_rwlock_unlock(&s->use);
        pl_bdb_recover_unlock(s);
        return PL_TEMP;
    }
    return PL_OK;
}

static void unlock_for_reopen(pl_store *s)
{
    pthread_rwlock_unlock(&s->use);
    pl_bdb_recover_unlock(s);
}

int pl_bdb_reset(pl_store *s)
{
    int rc = PL_OK;

    if (lock_for_reopen(s) != PL_OK)
        return PL_TEMP;
    if (atomic_load(&s->need_reset) || s->env == NULL)
        rc = reopen_locked(s);
    unlock_for_reopen(s);
    return rc;
}

int pl_bdb_recover_dead(pl_store *s)
{
    int rc = PL_OK;

    if (lock_for_reopen(s) != PL_OK)
        return PL_TEMP;
    /* Somebody else may have recovered while we waited for the lock: then
     * our environment is panicked, and the next call finds out. */
    if (atomic_load(&s->need_reset) || s->env == NULL ||
        (atomic_load(&s->suspect_dead) && pl_bdb_registry_dead(s) > 0))
        rc = reopen_locked(s);
    if (rc == PL_OK)
        atomic_store(&s->suspect_dead, 0);
    unlock_for_reopen(s);
    return rc;
}

/* ---- transactions ------------------------------------------------------- */

int pl_store_begin(pl_store *s, pl_txn **tp, unsigned flags)
{
    u_int32_t f = flags == PL_TXN_NOSYNC ? DB_TXN_NOSYNC
                : flags == PL_TXN_WRITE_NOSYNC ? DB_TXN_WRITE_NOSYNC : DB_TXN_SYNC;
    pl_txn *t;
    int rc;

    *tp = NULL;
    if (atomic_load(&s->need_reset) && pl_bdb_reset(s) != PL_OK)
        return PL_TEMP;
    if (atomic_load(&s->suspect_dead) && pl_bdb_recover_dead(s) != PL_OK)
        return PL_TEMP;
    if (timed_rdlock(s) != PL_OK)
        return PL_TEMP;
    if (s->env == NULL || atomic_load(&s->need_reset) || atomic_load(&s->closing)) {
        pthread_rwlock_unlock(&s->use);
        return PL_TEMP;
    }
    t = pl_xcalloc(1, sizeof(*t));
    t->s = s;
    t->owner = pthread_self();
    rc = pl_bdb_map(s, CALL(s, s->env->txn_begin(s->env, NULL, &t->txn, f)), "txn_begin");
    if (rc != PL_OK) {
        pthread_rwlock_unlock(&s->use);
        free(t);
        return rc;
    }
    txn_timeout(s, t->txn);
    txn_link(t);
    pthread_rwlock_unlock(&s->use);
    *tp = t;
    return PL_OK;
}

/* Around each call on t: the environment stays as it is meanwhile; a
 * transaction a reopen has aborted is PL_TEMP. */
static int txn_enter(pl_txn *t)
{
    if (!t->nolock && timed_rdlock(t->s) != PL_OK)
        return PL_TEMP;
    /* a panicked environment: nothing more in it (the janitor may have
     * switched the library's panic checks off for a moment, see below) */
    if (t->txn == NULL || (!t->nolock && atomic_load(&t->s->need_reset))) {
        if (!t->nolock)
            pthread_rwlock_unlock(&t->s->use);
        return PL_TEMP;
    }
    return PL_OK;
}

static void txn_leave(pl_txn *t)
{
    if (!t->nolock)
        pthread_rwlock_unlock(&t->s->use);
}

int pl_txn_commit(pl_txn *t)
{
    pl_store *s = t->s;
    int rc;

    unsigned epoch = atomic_load(&s->reset_epoch);

    if (timed_rdlock(s) != PL_OK) {
        txn_orphan(t);             /* aborted for us, never committed */
        return PL_TEMP;
    }
    if (t->txn == NULL) {
        rc = PL_TEMP;
    } else if (atomic_load(&s->need_reset)) {
        /* Never commit into a panicked environment: with the janitor's
         * DB_NOPANIC on, the library would let it through into the region
         * another process already recovered, and the commit would be lost
         * although it said yes. */
        (void)CALL(s, t->txn->abort(t->txn));
        t->txn = NULL;
        rc = PL_TEMP;
    } else {
        rc = pl_bdb_map(s, CALL(s, t->txn->commit(t->txn, t->commit_flags)), "commit");
        if (rc == PL_OK && (atomic_load(&s->need_reset) || atomic_load(&s->reset_epoch) != epoch)) {
            /* it overlapped a recovery: it may not have reached the
             * recovered environment, so it must not be reported as done */
            msg_warn("store: %s: a commit overlapped a recovery of the environment; "
                     "reported as a temporary failure (the caller retries)", s->home);
            rc = PL_TEMP;
        }
    }
    txn_unlink(t);
    pthread_rwlock_unlock(&s->use);
    free(t);
    pl_store_maintain(s, 0);
    return rc;
}

void pl_txn_relax(pl_txn *t)
{
    t->commit_flags = DB_TXN_WRITE_NOSYNC;
}

void pl_txn_abort(pl_txn *t)
{
    pl_store *s;
    if (t == NULL)
        return;
    s = t->s;
    if (timed_rdlock(s) != PL_OK) {
        txn_orphan(t);
        return;
    }
    if (t->txn != NULL)
        (void)pl_bdb_map(s, CALL(s, t->txn->abort(t->txn)), "abort");
    txn_unlink(t);
    pthread_rwlock_unlock(&s->use);
    free(t);
}

static void dbt_set(DBT *d, const void *data, size_t len)
{
    memset(d, 0, sizeof(*d));
    d->data = (void *)data;
    d->size = (u_int32_t)len;
}

int pl_store_put(pl_txn *t, const char *table, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    DB *db;
    DBT k, v;
    int rc;

    if ((rc = txn_enter(t)) != PL_OK)
        return rc;
    if (lookup(t->s, table, &db) != PL_OK) {
        txn_leave(t);
        return PL_ERR;
    }
    dbt_set(&k, key, klen);
    dbt_set(&v, val, vlen);
    rc = pl_bdb_map(t->s, CALL(t->s, db->put(db, t->txn, &k, &v, 0)), "put");
    txn_leave(t);
    return rc;
}

int pl_store_get(pl_txn *t, const char *table, const void *key, size_t klen,
                 void **val, size_t *vlen, int for_update)
{
    DB *db;
    DBT k, v;
    int rc;

    *val = NULL;
    if (vlen != NULL)
        *vlen = 0;
    if ((rc = txn_enter(t)) != PL_OK)
        return rc;
    pl_bdb_test_stuck(t->s);
    if (lookup(t->s, table, &db) != PL_OK) {
        txn_leave(t);
        return PL_ERR;
    }
    dbt_set(&k, key, klen);
    memset(&v, 0, sizeof(v));
    v.flags = DB_DBT_MALLOC;
    rc = pl_bdb_map(t->s, CALL(t->s, db->get(db, t->txn, &k, &v, for_update ? DB_RMW : 0)), "get");
    txn_leave(t);
    if (rc != PL_OK)
        return rc;
    *val = pl_xrealloc(v.data, v.size + 1);
    ((char *)*val)[v.size] = '\0';
    if (vlen != NULL)
        *vlen = v.size;
    return PL_OK;
}

int pl_store_del(pl_txn *t, const char *table, const void *key, size_t klen)
{
    DB *db;
    DBT k;
    int rc;

    if ((rc = txn_enter(t)) != PL_OK)
        return rc;
    if (lookup(t->s, table, &db) != PL_OK) {
        txn_leave(t);
        return PL_ERR;
    }
    dbt_set(&k, key, klen);
    rc = pl_bdb_map(t->s, CALL(t->s, db->del(db, t->txn, &k, 0)), "del");
    txn_leave(t);
    return rc;
}

int pl_store_scan(pl_txn *t, const char *table, const void *prefix, size_t plen,
                  pl_store_visit_fn fn, void *ctx)
{
    DB *db;
    DBC *c;
    DBT k, v;
    int ret, rc = PL_OK;
    u_int32_t op = plen ? DB_SET_RANGE : DB_FIRST;

    /* The read lock is held across the callbacks, which may call
     * put/get/del on t (the lock is taken again, recursively). */
    if ((rc = txn_enter(t)) != PL_OK)
        return rc;
    if (lookup(t->s, table, &db) != PL_OK) {
        txn_leave(t);
        return PL_ERR;
    }
    if ((rc = pl_bdb_map(t->s, CALL(t->s, db->cursor(db, t->txn, &c, 0)), "cursor")) != PL_OK) {
        txn_leave(t);
        return rc;
    }
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.flags = v.flags = DB_DBT_REALLOC;
    if (plen) {
        k.data = pl_xmalloc(plen);
        memcpy(k.data, prefix, plen);
        k.size = (u_int32_t)plen;
    }
    while ((ret = CALL(t->s, c->get(c, &k, &v, op))) == 0) {
        op = DB_NEXT;
        if (k.size < plen || memcmp(k.data, prefix, plen) != 0)
            break;
        if ((rc = fn(ctx, k.data, k.size, v.data, v.size)) != 0)
            break;
    }
    if (ret != 0 && ret != DB_NOTFOUND)
        rc = pl_bdb_map(t->s, ret, "scan");
    if ((ret = CALL(t->s, c->close(c))) != 0 && rc == PL_OK)
        rc = pl_bdb_map(t->s, ret, "cursor close");
    free(k.data);
    free(v.data);
    txn_leave(t);
    return rc;
}

struct delctx { pl_txn *t; const char *table; };

static int del_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct delctx *d = ctx;
    (void)v, (void)vl;
    return pl_store_del(d->t, d->table, k, kl) == PL_OK ? 0 : PL_ERR;
}

int pl_store_del_prefix(pl_txn *t, const char *table, const void *prefix, size_t plen)
{
    struct delctx d = {t, table};
    return pl_store_scan(t, table, prefix, plen, del_visit, &d);
}

int pl_store_run(pl_store *s, unsigned flags, pl_store_txn_fn fn, void *ctx)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        pl_txn *t;
        int rc = pl_store_begin(s, &t, flags);
        if (rc == PL_OK) {
            rc = fn(t, ctx);
            if (rc == PL_OK)
                rc = pl_txn_commit(t);
            else
                pl_txn_abort(t);
            if (rc != PL_TEMP)
                return rc;
        } else if (rc != PL_TEMP) {
            return rc;
        }
        usleep((useconds_t)(1000 * (1 + attempt * attempt) + rand() % 1000));
    }
    return PL_TEMP;
}

/* ---- housekeeping ------------------------------------------------------- */

int pl_store_maintain(pl_store *s, int force)
{
    long long now = pl_bdb_now();
    int rc = PL_OK, ret;

    if (!force && now - atomic_load(&s->last_maint) < (long long)s->opts.checkpoint_secs)
        return PL_OK;
    if (pthread_mutex_trylock(&s->maint) != 0)
        return PL_OK;
    atomic_store(&s->last_maint, now);
    if (timed_rdlock(s) != PL_OK) {
        pthread_mutex_unlock(&s->maint);
        return PL_TEMP;
    }
    if (s->env != NULL && !atomic_load(&s->need_reset)) {
        if ((ret = CALL(s, s->env->txn_checkpoint(s->env, 0, 0, 0))) != 0)
            rc = pl_bdb_map(s, ret, "checkpoint");
        if (rc == PL_OK &&
            (ret = CALL(s, s->env->log_archive(s->env, NULL, DB_ARCH_REMOVE))) != 0)
            rc = pl_bdb_map(s, ret, "log removal");
    }
    pthread_rwlock_unlock(&s->use);
    pthread_mutex_unlock(&s->maint);
    if (atomic_load(&s->need_reset))
        rc = pl_bdb_reset(s);
    return rc;
}

/* ---- introspection ------------------------------------------------------ */

int pl_store_schema_version(pl_store *s) { return s->schema_version; }
const char *pl_store_home(pl_store *s) { return s->home; }
const char *const *pl_store_tables(pl_store *s) { return s->names; }

int pl_store_schema_current(void)
{
    return pl_schema_steps[pl_schema_nsteps - 1].version;
}
