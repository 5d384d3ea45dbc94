/* store_watch.c -- crash detection for the shared store, two threads per
 * process:
 *
 * janitor: Berkeley DB notices an expired lock wait only when someone runs
 *   the lock detector, so every 200 ms it runs it (DB_LOCK_EXPIRE): a lock
 *   held by a dead process then blocks others for db_lock_timeout at most.
 *   Every second (and at once after a lock wait timed out) it reads the
 *   environment's process registry (store_registry.c) and, if a registered
 *   process died, takes the recovery lock, looks again and, if it is still
 *   there, reopens the store: the reopen runs recovery, which panics the
 *   environment for all the others, who reopen in turn (quietly: only the
 *   recoverer logs the death).  We read the registry instead of calling
 *   DB_ENV->failchk because failchk can block forever in 5.3 (it destroys
 *   condition variables a dead process was waiting on).
 *
 * guard: a process killed while holding one of the library's own mutexes
 *   (they are not robust) leaves every thread that waits for that mutex
 *   blocked for good, and nothing inside the process can wake it.  If any
 *   thread has been inside one library call for stuck_secs (six times that
 *   for opening, which may run recovery), the guard logs it and exits with
 *   status 75 (EX_TEMPFAIL), so that the supervisor
 *   (Postfix's master, systemd) starts a fresh process that recovers the
 *   store.  Postfix tempfails meanwhile; nothing acknowledged is lost. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_bdb_int.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *janitor_main(void *arg)
{
    pl_store *s = arg;
    unsigned tick = 0;

    while (!atomic_load(&s->closing)) {
        sleep_ms(200);
        tick++;
        pthread_mutex_lock(&s->env_lock);
        if (s->env != NULL) {
            int panicked = atomic_load(&s->need_reset);
            pl_bdb_op_enter(s);
            /* In a panicked environment DB_NOPANIC lets the detector wake
             * this process's lock waiters, so they return and let go. */
            if (panicked)
                s->env->set_flags(s->env, DB_NOPANIC, 1);
            int ret = s->env->lock_detect(s->env, 0, DB_LOCK_EXPIRE, NULL);
            if (panicked)
                s->env->set_flags(s->env, DB_NOPANIC, 0);
            pl_bdb_op_leave(s);
            if (ret != 0 && !panicked)
                (void)pl_bdb_map(s, ret, "lock detector");
        }
        pthread_mutex_unlock(&s->env_lock);
        pl_bdb_reap_orphans(s);

        if ((tick % 5 == 0 || atomic_exchange(&s->check_dead, 0)) &&
            !atomic_load(&s->need_reset) && pl_bdb_registry_dead(s) > 0) {
            atomic_store(&s->suspect_dead, 1);
            (void)pl_bdb_recover_dead(s);
        }
        if (atomic_load(&s->need_reset))
            (void)pl_bdb_reset(s);
    }
    return NULL;
}

static void *guard_main(void *arg)
{
    pl_store *s = arg;

    while (!atomic_load(&s->guard_stop)) {
        long long now;
        sleep_ms(250);
        now = pl_bdb_now();
        if (pl_bdb_op_overdue(s, now) > 0) {
            msg_error("store: %s: a thread has been blocked in Berkeley DB past its "
                      "deadline, on a mutex left by a process that died inside the "
                      "library; exiting so that a fresh process recovers the store",
                      s->home);
            _exit(75);
        }
    }
    return NULL;
}

int pl_bdb_watch_start(pl_store *s)
{
    if (pthread_create(&s->guard, NULL, guard_main, s) != 0) {
        msg_warn("store: cannot start the guard thread");
        return PL_ERR;
    }
    if (pthread_create(&s->janitor, NULL, janitor_main, s) != 0) {
        msg_warn("store: cannot start the janitor thread");
        atomic_store(&s->guard_stop, 1);
        pthread_join(s->guard, NULL);
        atomic_store(&s->guard_stop, 0);
        return PL_ERR;
    }
    s->threads_running = 1;
    return PL_OK;
}

void pl_bdb_janitor_stop(pl_store *s)
{
    if (!s->threads_running)
        return;
    atomic_store(&s->closing, 1);
    pthread_join(s->janitor, NULL);
    s->threads_running = 2;          /* the guard still runs */
}

void pl_bdb_watch_stop(pl_store *s)
{
    if (!s->threads_running)
        return;
    if (s->threads_running == 1)
        pl_bdb_janitor_stop(s);
    atomic_store(&s->guard_stop, 1);
    pthread_join(s->guard, NULL);
    s->threads_running = 0;
}
