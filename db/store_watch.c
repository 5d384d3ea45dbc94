/* store_watch.c -- crash detection for the shared store, two threads per
 * process:
 *
 * janitor: Berkeley DB notices an expired lock wait only when someone runs
 *   the lock detector, so every 200 ms it runs it (DB_LOCK_EXPIRE): a lock
 *   held by a dead process then blocks others for db_lock_timeout at most.
 *   Every second (and at once after a lock wait timed out) it reads the
 *   environment's process registry (__db.register, written by DB_REGISTER:
 *   fixed 25-byte lines, a pid or "X" for a free slot) and, if a registered
 *   process no longer exists, reopens the store: the reopen runs recovery,
 *   which panics the environment for all the others, who reopen in turn.
 *   We read the registry instead of calling DB_ENV->failchk because
 *   failchk can block forever in 5.3 (it destroys condition variables a
 *   dead process was waiting on).
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

#define REGISTRY_LINE 25

/* A process is dead if it does not exist or is a zombie. */
static int process_alive(pid_t pid)
{
    char path[64], buf[256];
    FILE *fp;
    char *p;

    if (kill(pid, 0) < 0 && errno == ESRCH)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((fp = fopen(path, "r")) == NULL)
        return 1;
    p = fgets(buf, sizeof(buf), fp);
    fclose(fp);
    if (p != NULL && (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'Z')
        return 0;
    return 1;
}

/* The pid of a registered process that died, or 0.  The registry is read
 * through a descriptor kept open until the store is closed: closing a
 * descriptor of a file releases every fcntl lock the process holds on it,
 * which would make this process look dead to the next one that opens the
 * environment. */
static pid_t registry_dead_process(pl_store *s)
{
    char line[REGISTRY_LINE + 1];
    off_t off = 0;

    if (s->reg_fd < 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/__db.register", s->home);
        if ((s->reg_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return 0;
    }
    while (pread(s->reg_fd, line, REGISTRY_LINE, off) == REGISTRY_LINE) {
        char *end;
        long pid;
        off += REGISTRY_LINE;
        line[REGISTRY_LINE] = '\0';
        if (line[0] == 'X')
            continue;
        pid = strtol(line, &end, 10);
        if (pid <= 0 || end == line || pid == (long)getpid())
            continue;
        if (!process_alive((pid_t)pid))
            return (pid_t)pid;
    }
    return 0;
}

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
        pthread_rwlock_rdlock(&s->use);
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
        pthread_rwlock_unlock(&s->use);

        if ((tick % 5 == 0 || atomic_exchange(&s->check_dead, 0)) && !atomic_load(&s->need_reset)) {
            pid_t dead = registry_dead_process(s);
            if (dead > 0) {
                msg_warn("store: %s: process %ld died while using the store; recovering",
                         s->home, (long)dead);
                atomic_store(&s->reset_since, pl_bdb_now());
                atomic_store(&s->need_reset, 1);
            }
        }
        if (atomic_load(&s->need_reset))
            (void)pl_bdb_reset(s);
    }
    return NULL;
}

static void *guard_main(void *arg)
{
    pl_store *s = arg;

    while (!atomic_load(&s->closing)) {
        long long now;
        sleep_ms(250);
        now = pl_bdb_now();
        for (int i = 0; i < PL_OP_SLOTS; i++) {
            long long deadline = atomic_load(&s->op_deadline[i]);
            if (deadline != 0 && now > deadline) {
                msg_error("store: %s: a thread has been blocked in Berkeley DB past its "
                          "deadline, on a mutex left by a process that died inside the "
                          "library; exiting so that a fresh process recovers the store",
                          s->home);
                _exit(75);
            }
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
        atomic_store(&s->closing, 1);
        pthread_join(s->guard, NULL);
        atomic_store(&s->closing, 0);
        return PL_ERR;
    }
    s->threads_running = 1;
    return PL_OK;
}

void pl_bdb_watch_stop(pl_store *s)
{
    if (!s->threads_running)
        return;
    atomic_store(&s->closing, 1);
    pthread_join(s->janitor, NULL);
    pthread_join(s->guard, NULL);
    s->threads_running = 0;
}
