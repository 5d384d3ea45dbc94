/* store_registry.c -- who is using the environment, and who may recover it.
 *
 * Berkeley DB's process registry (__db.register, written by DB_REGISTER):
 * fixed 25-byte lines, a pid or "X..." for a free slot; each registered
 * process holds an fcntl lock on the first byte of its line for as long as
 * its environment handle is open.  A line with a pid whose byte nobody has
 * locked belongs to a process that died, and the next DB_ENV->open with
 * DB_RECOVER recovers the environment (panicking it for everybody else and
 * marking every line free).  We read the registry the same way, with
 * F_GETLK, so we agree with the library on who is dead.
 *
 * The recovery lock (__postlink.recover, flock) makes one process the
 * recoverer: every open of the environment holds it, and so does a process
 * that found a dead one and wants to recover, while it looks again.  The
 * first one recovers and says so; the others find the dead process gone
 * from the registry when their turn comes, so they only join the recovered
 * environment. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_bdb_int.h"

#define REGISTRY_LINE 25

/* Some process holds the lock on the byte at off (other than us: F_GETLK
 * does not report our own locks). */
static int byte_locked(int fd, off_t off)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = off;
    fl.l_len = 1;
    if (fcntl(fd, F_GETLK, &fl) < 0)
        return 1;                  /* cannot tell: assume alive */
    return fl.l_type != F_UNLCK;
}

/* The registry is read through a descriptor kept open until the store is
 * closed: closing any descriptor of a file releases every fcntl lock the
 * process holds on it, including the library's lock on our own line, which
 * would make this process look dead to the next one that opens the
 * environment. */
void pl_bdb_registry_open(pl_store *s)
{
    char path[4096];
    int fd;

    if (atomic_load(&s->reg_fd) >= 0)
        return;
    snprintf(path, sizeof(path), "%s/__db.register", s->home);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
        atomic_store(&s->reg_fd, fd);
}

int pl_bdb_registry_dead_list(pl_store *s, pid_t *dead, int max)
{
    char line[REGISTRY_LINE + 1], again[REGISTRY_LINE];
    int fd = atomic_load(&s->reg_fd), n = 0;
    off_t off = 0;

    if (fd < 0)
        return 0;
    for (; pread(fd, line, REGISTRY_LINE, off) == REGISTRY_LINE; off += REGISTRY_LINE) {
        char *end;
        long pid;

        line[REGISTRY_LINE] = '\0';
        if (line[0] == 'X')
            continue;
        pid = strtol(line, &end, 10);
        if (pid <= 0 || end == line || pid == (long)getpid())
            continue;
        if (byte_locked(fd, off))
            continue;
        /* A process unregistering frees its line before it unlocks, and one
         * registering locks before it writes: the same pid still there with
         * nobody holding its byte means the process is gone. */
        if (pread(fd, again, REGISTRY_LINE, off) == REGISTRY_LINE &&
            memcmp(again, line, REGISTRY_LINE) == 0 && !byte_locked(fd, off) && n < max)
            dead[n++] = (pid_t)pid;
    }
    return n;
}

pid_t pl_bdb_registry_dead(pl_store *s)
{
    pid_t dead;
    return pl_bdb_registry_dead_list(s, &dead, 1) > 0 ? dead : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One try at the flock, with recover_mu held; PL_TEMP if another process
 * holds it (recover_fd stays open) or on an error (recover_fd -1). */
static int try_flock(pl_store *s)
{
    if (s->recover_fd < 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/__postlink.recover", s->home);
        if ((s->recover_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0660)) < 0) {
            msg_warn("store: cannot open %s: %m", path);
            return PL_TEMP;
        }
    }
    if (flock(s->recover_fd, LOCK_EX | LOCK_NB) == 0)
        return PL_OK;
    if (errno != EWOULDBLOCK && errno != EINTR)
        msg_warn("store: %s: cannot lock __postlink.recover: %m", s->home);
    return PL_TEMP;
}

/* One thread of the process at a time holds the flock (recover_mu,
 * recursive: an open inside a reopen nests); nobody waits for it with the
 * store's write lock held, except the first open. */
int pl_bdb_recover_lock(pl_store *s, long wait_ms)
{
    struct timespec t0, now;
    long waited = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (pthread_mutex_trylock(&s->recover_mu) == 0) {
            if (s->recover_depth > 0 || try_flock(s) == PL_OK) {
                s->recover_depth++;
                return PL_OK;
            }
            pthread_mutex_unlock(&s->recover_mu);
            if (s->recover_fd < 0)
                return PL_TEMP;
        }
        /* Whoever holds it is opening (perhaps recovering) the
         * environment, which its own guard bounds to six times stuck_secs. */
        if (atomic_load(&s->closing) || waited >= wait_ms)
            break;
        sleep_ms(20);
        clock_gettime(CLOCK_MONOTONIC, &now);
        waited = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    }
    if (!atomic_load(&s->closing) && wait_ms >= (long)s->opts.stuck_secs * 1000)
        msg_warn("store: %s: another process has been recovering the store for "
                 "%ld seconds; will try again", s->home, wait_ms / 1000);
    return PL_TEMP;
}

void pl_bdb_recover_unlock(pl_store *s)
{
    if (--s->recover_depth == 0)
        (void)flock(s->recover_fd, LOCK_UN);
    pthread_mutex_unlock(&s->recover_mu);
}
