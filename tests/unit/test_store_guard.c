/* test_store_guard.c -- the stuck-operation guard in a process that has
 * served many threads, as a libmilter daemon does (one thread per
 * connection): after 300 threads that used the store and finished, and with
 * 300 more alive and busy, one thread that stays inside a library call past
 * stuck_secs still makes the process log it and exit 75.
 *
 * The stuck call is simulated with pl_bdb_op_enter() (store_bdb_int.h)
 * without the matching leave: exactly what a thread blocked for good on a
 * mutex of a dead process looks like to the guard. */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "store.h"
#include "store_bdb_int.h"
#include "testdir.h"

#define FINISHED 300     /* threads that used the store and exited */
#define BUSY 300         /* threads alive while the stuck one is stuck */

static pl_store *store;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go, stuck_in;

static void one_txn(void)
{
    char key[32];
    void *v = NULL;
    pl_txn *t;
    snprintf(key, sizeof(key), "guard/%lu", (unsigned long)pthread_self());
    if (pl_store_begin(store, &t, PL_TXN_NOSYNC) != PL_OK)
        return;
    (void)pl_store_get(t, "probe", key, strlen(key), &v, NULL, 0);
    free(v);
    pl_txn_abort(t);
}

static void *finished_main(void *arg)
{
    (void)arg;
    one_txn();
    return NULL;
}

/* One operation, then wait for the stuck thread, then one more. */
static void *busy_main(void *arg)
{
    (void)arg;
    one_txn();
    pthread_mutex_lock(&mu);
    ready++;
    pthread_cond_broadcast(&cv);
    while (!go)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    one_txn();
    return NULL;
}

static void *stuck_main(void *arg)
{
    (void)arg;
    pl_bdb_op_enter(store);          /* and never leaves */
    pthread_mutex_lock(&mu);
    stuck_in = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (;;)
        pause();
    return NULL;
}

static void wait_for(int *flag, int value)
{
    pthread_mutex_lock(&mu);
    while (*flag < value)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

/* The child: a daemon-like process.  Exits 75 if the guard fires, 0 if it
 * did not within 10 s of the stuck call, 2 on a setup error. */
static void run_daemon(const char *dir)
{
    static pthread_t busy[BUSY];
    struct pl_store_opts o = {0};
    pthread_attr_t attr;
    pthread_t th;
    char err[256];

    o.home = dir;
    o.stuck_secs = 1;
    if (pl_store_open(&store, &o, err, sizeof(err)) != PL_OK)
        _exit(2);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < FINISHED; i++) {
        if (pthread_create(&th, &attr, finished_main, NULL) != 0)
            _exit(2);
        pthread_join(th, NULL);
    }
    /* one at a time, so each has done its first operation before the next
     * starts */
    for (int i = 0; i < BUSY; i++) {
        if (pthread_create(&busy[i], &attr, busy_main, NULL) != 0)
            _exit(2);
        wait_for(&ready, i + 1);
    }
    if (pthread_create(&th, &attr, stuck_main, NULL) != 0)
        _exit(2);
    wait_for(&stuck_in, 1);
    msg_info("test: %d threads finished, %d alive, one thread stuck", FINISHED, BUSY);
    pthread_mutex_lock(&mu);
    go = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < BUSY; i++)
        pthread_join(busy[i], NULL);
    sleep(10);                         /* the guard exits long before */
    _exit(0);
}

static long grep_count(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    long n = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(fp);
    return n;
}

static void test_guard_after_many_threads(void **state)
{
    char dir[64], log[128];
    int status = 0, fd;
    pid_t pid, got = 0;
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    snprintf(log, sizeof(log), "%s/daemon.log", dir);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        run_daemon(dir);
    }
    /* bounded: setup, 600 threads and the guard's 1-2 s on a loaded machine */
    for (int waited = 0; waited < 900 && (got = waitpid(pid, &status, WNOHANG)) == 0; waited++)
        usleep(100000);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the daemon neither exited nor was stopped by the guard in 90 s");
    }
    print_message("# daemon exit status %d; guard lines %ld\n",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  grep_count(log, "blocked in Berkeley DB past its deadline"));
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 2);          /* setup worked */
    assert_int_equal(grep_count(log, "one thread stuck"), 1);
    assert_int_equal(WEXITSTATUS(status), 75);
    assert_int_equal(grep_count(log, "blocked in Berkeley DB past its deadline"), 1);
    testdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_after_many_threads),
    };
    pl_log_open("test_store_guard", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests_name("store_guard", tests, NULL, NULL);
}
