/* test_store.c -- unit tests of the store: transactions, schema upgrade,
 * log removal, and two processes writing the same keys concurrently. */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "store.h"
#include "store_bdb_int.h"        /* pl_bdb_reset, s->closing */
#include "testdir.h"

struct fx { char dir[64]; pl_store *s; };

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct pl_store_opts o = {0};
    char err[256];
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    o.home = f->dir;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pl_store_close(f->s);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

static char *get(pl_store *s, const char *table, const char *key, int *rc)
{
    pl_txn *t;
    void *v = NULL;
    assert_int_equal(pl_store_begin(s, &t, PL_TXN_SYNC), PL_OK);
    *rc = pl_store_get(t, table, key, strlen(key), &v, NULL, 0);
    pl_txn_abort(t);
    return v;
}

static void test_put_get_del(void **state)
{
    struct fx *f = *state;
    pl_txn *t;
    int rc;
    char *v;

    assert_int_equal(pl_store_schema_version(f->s), pl_store_schema_current());
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_store_put(t, "probe", "a", 1, "one", 3), PL_OK);
    assert_int_equal(pl_store_put(t, "probe", "b", 1, "two", 3), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    v = get(f->s, "probe", "a", &rc);
    assert_int_equal(rc, PL_OK);
    assert_string_equal(v, "one");
    free(v);

    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_store_del(t, "probe", "a", 1), PL_OK);
    assert_int_equal(pl_store_del(t, "probe", "zz", 2), PL_NOTFOUND);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    v = get(f->s, "probe", "a", &rc);
    assert_int_equal(rc, PL_NOTFOUND);
    assert_null(v);
}

static void test_abort_discards(void **state)
{
    struct fx *f = *state;
    pl_txn *t;
    int rc;

    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_store_put(t, "probe", "gone", 4, "x", 1), PL_OK);
    pl_txn_abort(t);
    free(get(f->s, "probe", "gone", &rc));
    assert_int_equal(rc, PL_NOTFOUND);
}

static void test_unknown_table(void **state)
{
    struct fx *f = *state;
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_store_put(t, "nosuchtable", "k", 1, "v", 1), PL_ERR);
    pl_txn_abort(t);
}

struct seen { int n; char keys[8][16]; };

static int visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct seen *s = ctx;
    (void)v;
    (void)vl;
    snprintf(s->keys[s->n++], 16, "%.*s", (int)kl, (const char *)k);
    return s->n == 8;
}

static void test_scan_prefix(void **state)
{
    struct fx *f = *state;
    struct seen seen = {0};
    const char *keys[] = {"u/b", "u/a", "v/a", "t/z", "u/c"};
    pl_txn *t;

    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_NOSYNC), PL_OK);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(pl_store_put(t, "probe", keys[i], 3, "", 0), PL_OK);
    assert_int_equal(pl_store_scan(t, "probe", "u/", 2, visit, &seen), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.keys[0], "u/a");
    assert_string_equal(seen.keys[1], "u/b");
    assert_string_equal(seen.keys[2], "u/c");
}

static void test_schema_upgrade(void **state)
{
    char dir[64], err[256];
    struct pl_store_opts o = {0};
    pl_store *s;
    pl_txn *t;
    int rc;
    char *v;
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    o.home = dir;
    o.schema_target = 1;                     /* as an older postlink would */
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_store_schema_version(s), 1);
    assert_int_equal(pl_store_begin(s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_store_put(t, "probe", "k", 1, "v", 1), PL_ERR);   /* not in v1 */
    assert_int_equal(pl_store_put(t, "meta", "marker", 6, "kept", 4), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    pl_store_close(s);

    o.schema_target = 0;                     /* this postlink: upgrades */
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_store_schema_version(s), pl_store_schema_current());
    v = get(s, "meta", "marker", &rc);
    assert_string_equal(v, "kept");
    free(v);
    v = get(s, "meta", "schema_version", &rc);
    assert_int_equal(atoi(v), pl_store_schema_current());
    free(v);

    /* A store written by a newer postlink is refused, not damaged. */
    assert_int_equal(pl_store_begin(s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_store_put(t, "meta", "schema_version", 14, "99", 2), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    pl_store_close(s);
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_ERR);
    assert_non_null(strstr(err, "schema version 99, newer than this postlink"));
    testdir_remove(dir);
}

static int fill(pl_txn *t, void *ctx)
{
    char key[32], val[512];
    int *i = ctx;
    memset(val, 'x', sizeof(val));
    snprintf(key, sizeof(key), "fill/%06d", *i);
    return pl_store_put(t, "probe", key, strlen(key), val, sizeof(val));
}

static void test_logs_are_removed(void **state)
{
    char dir[64], err[256];
    struct pl_store_opts o = {0};
    struct pl_store_stats st;
    pl_store *s;
    uint64_t before, n;
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    o.home = dir;
    o.log_file_bytes = 64 * 1024;
    o.checkpoint_secs = 3600;                /* only the forced pass below */
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(pl_store_run(s, PL_TXN_NOSYNC, fill, &i), PL_OK);
    assert_int_equal(pl_store_stats(s, &st), PL_OK);
    before = st.log_files;
    assert_true(before > 10);                /* ~1 MB of log in 64 KB files */
    assert_int_equal(pl_store_maintain(s, 1), PL_OK);
    assert_int_equal(pl_store_stats(s, &st), PL_OK);
    assert_true(st.log_files <= 2);
    assert_true(st.last_checkpoint > 0);
    assert_int_equal(pl_store_count(s, "probe", &n), PL_OK);
    assert_int_equal(n, 2000);
    pl_store_close(s);
    testdir_remove(dir);
}

/* Two processes increment one counter 300 times each: no update is lost,
 * whatever deadlocks or lock waits occur. */
static int incr(pl_txn *t, void *ctx)
{
    void *v = NULL;
    char buf[32];
    long n = 0;
    int rc = pl_store_get(t, "probe", "counter", 7, &v, NULL, *(int *)ctx);
    if (rc == PL_OK)
        n = atol(v);
    free(v);
    if (rc < 0)
        return rc;
    snprintf(buf, sizeof(buf), "%ld", n + 1);
    return pl_store_put(t, "probe", "counter", 7, buf, strlen(buf));
}

static void test_two_process_writers(void **state)
{
    char dir[64], err[256];
    struct pl_store_opts o = {0};
    pid_t pids[2];
    pl_store *s;
    int rc;
    char *v;
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    o.home = dir;
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    pl_store_close(s);
    for (int p = 0; p < 2; p++) {
        if ((pids[p] = fork()) == 0) {
            /* child 0 reads for update; child 1 reads plainly and upgrades,
             * which provokes real deadlocks that must be retried */
            int for_update = p == 0;
            if (pl_store_open(&s, &o, err, sizeof(err)) != PL_OK)
                _exit(3);
            for (int i = 0; i < 300; i++)
                if (pl_store_run(s, PL_TXN_SYNC, incr, &for_update) != PL_OK)
                    _exit(4);
            pl_store_close(s);
            _exit(0);
        }
    }
    for (int p = 0; p < 2; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    v = get(s, "probe", "counter", &rc);
    assert_int_equal(rc, PL_OK);
    assert_string_equal(v, "600");
    free(v);
    pl_store_close(s);
    testdir_remove(dir);
}

/* Closing the store with transactions still open -- what a unit test that
 * fails half-way leaves behind for its teardown -- aborts them and returns,
 * also when the failure jumped out of a scan callback (which is inside a
 * store call).  Each case runs in a child, so that a hang is a bounded
 * failure here rather than a hung suite. */
static sigjmp_buf scan_escape;

static int escape_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)ctx; (void)k; (void)kl; (void)v; (void)vl;
    siglongjmp(scan_escape, 1);        /* as a failed cmocka assertion does */
}

static void close_with_open_txn(const char *dir, int from_scan)
{
    struct pl_store_opts o = {0};
    char err[256];
    pl_store *s;
    pl_txn *t, *t2;

    o.home = dir;
    o.stuck_secs = 1;
    if (pl_store_open(&s, &o, err, sizeof(err)) != PL_OK ||
        pl_store_begin(s, &t, PL_TXN_SYNC) != PL_OK ||
        pl_store_put(t, "meta", "uncommitted", 11, "1", 1) != PL_OK ||
        pl_store_begin(s, &t2, PL_TXN_NOSYNC) != PL_OK)
        _exit(3);
    if (from_scan && sigsetjmp(scan_escape, 0) == 0) {
        (void)pl_store_scan(t2, "probe", "", 0, escape_visit, NULL);
        _exit(4);                      /* the callback never returns */
    }
    pl_store_close(s);                 /* t and t2 still open */
    _exit(0);
}

static void check_close(int from_scan)
{
    char dir[64], log[128], line[512], err[256];
    struct pl_store_opts o = {0};
    int status = 0, fd, warned = 0;
    pid_t pid, got = 0;
    pl_store *s;
    FILE *fp;
    char *v;
    int rc;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    snprintf(log, sizeof(log), "%s/close.log", dir);
    o.home = dir;
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_store_run(s, PL_TXN_SYNC, fill, &(int){1}), PL_OK);
    pl_store_close(s);
    if ((pid = fork()) == 0) {
        if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        close_with_open_txn(dir, from_scan);
    }
    assert_true(pid > 0);
    for (int waited = 0; waited < 300 && (got = waitpid(pid, &status, WNOHANG)) == 0; waited++)
        usleep(100000);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("pl_store_close with open transactions did not return in 30 s");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* the administrator is told, and nothing uncommitted was kept */
    assert_non_null(fp = fopen(log, "r"));
    /* a thread gone from inside a store call (a longjmp out of a scan
     * callback) keeps its lock: close must not free the store under it,
     * so it says so and leaves it to the next opener's recovery */
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strstr(line, from_scan ? "still inside a store call; leaving the store open"
                                   : "closed with 2 transactions still open; aborted") != NULL)
            warned++;
    fclose(fp);
    assert_int_equal(warned, 1);
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    v = get(s, "meta", "uncommitted", &rc);
    assert_int_equal(rc, PL_NOTFOUND);
    free(v);
    v = get(s, "probe", "fill/000001", &rc);
    assert_int_equal(rc, PL_OK);
    free(v);
    pl_store_close(s);
    testdir_remove(dir);
}

static void test_close_aborts_open_txns(void **state)
{
    (void)state;
    check_close(0);
}

static void test_close_after_escape_from_scan(void **state)
{
    (void)state;
    check_close(1);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Process B of test_lock_timeout_is_per_process: opens the store after A
 * (so that an environment-wide setting would be B's), with a 60 s lock
 * timeout, locks a record, says "L", and holds it until A says so or 8 s. */
static void hold_record(const char *dir, int go, int ready)
{
    struct pl_store_opts o = {.home = dir, .lock_timeout_ms = 60000};
    struct pollfd p = {.fd = go, .events = POLLIN};
    char err[256], c;
    pl_store *s;
    pl_txn *t;
    void *v = NULL;

    if (read(go, &c, 1) != 1 || pl_store_open(&s, &o, err, sizeof(err)) != PL_OK)
        _exit(2);
    if (pl_store_begin(s, &t, PL_TXN_SYNC) != PL_OK ||
        pl_store_get(t, "probe", "held", 4, &v, NULL, 1) < 0 ||
        pl_store_put(t, "probe", "held", 4, "B", 1) != PL_OK)
        _exit(3);
    free(v);
    if (write(ready, "L", 1) != 1)
        _exit(4);
    (void)poll(&p, 1, 8000);
    pl_txn_abort(t);
    pl_store_close(s);
    _exit(0);
}

/* db_lock_timeout is each process's own: A (300 ms) waiting for a record
 * that B (60 s, opened last) holds gives up after its own timeout, not
 * after B's, nor when B lets go 8 s later. */
static void test_lock_timeout_is_per_process(void **state)
{
    char dir[64], err[256], c;
    struct pl_store_opts o = {0};
    int go[2], ready[2], status, rc;
    double t0, waited;
    pl_store *s;
    pl_txn *t;
    void *v = NULL;
    pid_t pid;

    (void)state;
    assert_non_null(testdir_new(dir, sizeof(dir)));
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    if ((pid = fork()) == 0) {          /* before A has any thread */
        close(go[1]);
        close(ready[0]);
        hold_record(dir, go[0], ready[1]);
    }
    assert_true(pid > 0);
    close(go[0]);
    close(ready[1]);
    o.home = dir;
    o.lock_timeout_ms = 300;
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(write(go[1], "O", 1), 1);          /* B opens now */
    assert_int_equal(read(ready[0], &c, 1), 1);         /* B holds the record */
    assert_int_equal(pl_store_begin(s, &t, PL_TXN_SYNC), PL_OK);
    t0 = mono();
    rc = pl_store_get(t, "probe", "held", 4, &v, NULL, 1);
    waited = mono() - t0;
    free(v);
    pl_txn_abort(t);
    assert_int_equal(write(go[1], "D", 1), 1);          /* B lets go */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    pl_store_close(s);
    testdir_remove(dir);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (rc != PL_TEMP || waited > 4.0)
        fail_msg("A waited %.1f s for the lock (rc %d): B's lock timeout applied to A", waited, rc);
}

/* A transaction that a reopen aborted still belongs to its owner, who will
 * abort it: close waits for the owner (late: it ends while close waits) or
 * leaves the store allocated (later still: after close returned) instead
 * of freeing it under the owner. */
struct dead_owner { pl_store *s; pl_txn *t; atomic_int stage; int late, put_rc; };

static void *dead_owner_main(void *arg)
{
    struct dead_owner *d = arg;

    if (pl_store_begin(d->s, &d->t, PL_TXN_SYNC) != PL_OK)
        _exit(5);
    atomic_store(&d->stage, 1);
    while (atomic_load(&d->stage) < (d->late ? 3 : 2))
        usleep(10000);
    if (!d->late) {
        /* close has begun and stopped its janitor: past the point where it
         * would free a dead transaction at once; give it time to */
        while (__atomic_load_n(&d->s->threads_running, __ATOMIC_SEQ_CST) != 2)
            usleep(10000);
        usleep(300000);
    }
    d->put_rc = pl_store_put(d->t, "meta", "dead", 4, "1", 1);
    pl_txn_abort(d->t);
    atomic_store(&d->stage, 4);
    return NULL;
}

static void close_with_dead_txn(const char *dir, int late)
{
    struct pl_store_opts o = {.home = dir, .stuck_secs = late ? 2 : 5};
    struct dead_owner d = {.late = late};
    char err[256];
    pthread_t th;

    if (pl_store_open(&d.s, &o, err, sizeof(err)) != PL_OK ||
        pthread_create(&th, NULL, dead_owner_main, &d) != 0)
        _exit(3);
    while (atomic_load(&d.stage) < 1)
        usleep(10000);
    pl_bdb_mark_reset(d.s);             /* as after another process's crash */
    if (pl_bdb_reset(d.s) != PL_OK)     /* the reopen aborts d.t */
        _exit(6);
    atomic_store(&d.stage, 2);
    pl_store_close(d.s);
    if (!late && atomic_load(&d.stage) != 4) {
        fprintf(stderr, "close returned before the owner of a dead transaction ended it\n");
        _exit(1);
    }
    atomic_store(&d.stage, 3);
    pthread_join(th, NULL);
    if (d.put_rc != PL_TEMP)
        _exit(7);
    _exit(0);
}

static void check_dead_txn(int late)
{
    char dir[64], log[128], line[512];
    int status = 0, fd, warned = 0;
    pid_t pid, got = 0;
    FILE *fp;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    snprintf(log, sizeof(log), "%s/close.log", dir);
    if ((pid = fork()) == 0) {
        if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        close_with_dead_txn(dir, late);
    }
    assert_true(pid > 0);
    for (int waited = 0; waited < 300 && (got = waitpid(pid, &status, WNOHANG)) == 0; waited++)
        usleep(100000);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("pl_store_close with a dead transaction did not return in 30 s");
    }
    assert_non_null(fp = fopen(log, "r"));
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, "1 transaction of other threads still not ended; "
                         "leaving the store allocated") != NULL)
            warned++;
        fputs(line, stderr);
    }
    fclose(fp);
    testdir_remove(dir);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(warned, late ? 1 : 0);
}

static void test_close_waits_for_dead_txn_owner(void **state)
{
    (void)state;
    check_dead_txn(0);
}

static void test_close_leaves_store_to_dead_txn_owner(void **state)
{
    (void)state;
    check_dead_txn(1);
}

/* Another process holds the recovery lock for long (recovering a long
 * log) while this one must reopen: its threads' calls, aborts and begins
 * still return at once (PL_TEMP), and close does not wait for the
 * recoverer either.  Runs in a child: a hang is a bounded failure. */
static void reopen_while_recovering(const char *dir)
{
    struct pl_store_opts o = {.home = dir, .stuck_secs = 2, .lock_timeout_ms = 500};
    char err[256], path[128];
    double t0, calls, closing;
    int fd, rc, rc2;
    pl_store *s;
    pl_txn *t, *t2 = NULL;

    if (pl_store_open(&s, &o, err, sizeof(err)) != PL_OK ||
        pl_store_begin(s, &t, PL_TXN_SYNC) != PL_OK ||
        pl_store_put(t, "meta", "x", 1, "1", 1) != PL_OK)
        _exit(3);
    snprintf(path, sizeof(path), "%s/__postlink.recover", dir);
    if ((fd = open(path, O_RDONLY)) < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
        _exit(4);                       /* "the recoverer" */
    pl_bdb_mark_reset(s);               /* the janitor now tries to reopen */
    /* until the janitor holds the write lock (if it takes it) or 1 s */
    t0 = mono();
    while (mono() - t0 < 1.0 && pthread_rwlock_tryrdlock(&s->use) == 0) {
        pthread_rwlock_unlock(&s->use);
        usleep(10000);
    }
    t0 = mono();
    rc = pl_store_put(t, "meta", "x", 1, "2", 1);
    pl_txn_abort(t);
    rc2 = pl_store_begin(s, &t2, PL_TXN_SYNC);
    calls = mono() - t0;
    t0 = mono();
    pl_store_close(s);
    closing = mono() - t0;
    flock(fd, LOCK_UN);
    fprintf(stderr, "put %d, begin %d, both and the abort in %.1f s; close in %.1f s\n",
            rc, rc2, calls, closing);
    _exit(rc == PL_TEMP && rc2 == PL_TEMP && calls < 4.0 && closing < 4.0 ? 0 : 1);
}

static void test_reopen_waits_are_bounded(void **state)
{
    char dir[64], log[128], line[512];
    int status = 0, fd;
    pid_t pid, got = 0;
    FILE *fp;

    (void)state;
    assert_non_null(testdir_new(dir, sizeof(dir)));
    snprintf(log, sizeof(log), "%s/reopen.log", dir);
    if ((pid = fork()) == 0) {
        if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        reopen_while_recovering(dir);
    }
    assert_true(pid > 0);
    for (int waited = 0; waited < 600 && (got = waitpid(pid, &status, WNOHANG)) == 0; waited++)
        usleep(100000);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if ((fp = fopen(log, "r")) != NULL) {
        while (fgets(line, sizeof(line), fp) != NULL)
            fputs(line, stderr);
        fclose(fp);
    }
    testdir_remove(dir);
    assert_int_not_equal(got, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_prefix, setup, teardown),
        cmocka_unit_test(test_schema_upgrade),
        cmocka_unit_test(test_logs_are_removed),
        cmocka_unit_test(test_two_process_writers),
        cmocka_unit_test(test_close_aborts_open_txns),
        cmocka_unit_test(test_close_after_escape_from_scan),
        cmocka_unit_test(test_lock_timeout_is_per_process),
        cmocka_unit_test(test_close_waits_for_dead_txn_owner),
        cmocka_unit_test(test_close_leaves_store_to_dead_txn_owner),
        cmocka_unit_test(test_reopen_waits_are_bounded),
    };
    pl_log_open("test_store", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
