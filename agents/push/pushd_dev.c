/* pushd_dev.c -- postlink-pushd's per-device serialisation (one fetch of a
 * device at a time, so that two concurrent requests cannot both be sent
 * the same message or race on an ack) and the wake-up of held waits when
 * mail is committed. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monotime.h"
#include "pushd.h"
#include "server.h"

#define HELD_MAX 1024

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static pthread_cond_t mail = PTHREAD_COND_INITIALIZER;
static char held[HELD_MAX][PL_PSEL_LEN + 1];
static size_t nheld;
static unsigned long mail_gen;

static void deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static long find(const char *sel)
{
    for (size_t i = 0; i < nheld; i++)
        if (strcmp(held[i], sel) == 0)
            return (long)i;
    return -1;
}

int pushd_dev_acquire(const char *sel, unsigned ms)
{
    struct timespec ts;
    int rc = 0;
    deadline(&ts, ms);
    pthread_mutex_lock(&mu);
    while (rc == 0 && (find(sel) >= 0 || nheld >= HELD_MAX) && !pl_server_stopping())
        rc = pthread_cond_timedwait(&released, &mu, &ts);
    if (rc == 0 && !pl_server_stopping()) {
        memcpy(held[nheld++], sel, PL_PSEL_LEN + 1);
        pthread_mutex_unlock(&mu);
        return 0;
    }
    pthread_mutex_unlock(&mu);
    return -1;
}

void pushd_dev_release(const char *sel)
{
    long i;
    pthread_mutex_lock(&mu);
    if ((i = find(sel)) >= 0) {
        if ((size_t)i != nheld - 1)
            memcpy(held[i], held[nheld - 1], sizeof(held[0]));
        nheld--;
    }
    pthread_cond_broadcast(&released);
    pthread_mutex_unlock(&mu);
}

void pushd_mail_arrived(void)
{
    pthread_mutex_lock(&mu);
    mail_gen++;
    pthread_cond_broadcast(&mail);
    pthread_mutex_unlock(&mu);
}

void pushd_mail_wait(unsigned ms)
{
    struct timespec ts;
    unsigned long gen;
    int rc = 0;
    deadline(&ts, ms);
    pthread_mutex_lock(&mu);
    gen = mail_gen;
    while (rc == 0 && gen == mail_gen && !pl_server_stopping())
        rc = pthread_cond_timedwait(&mail, &mu, &ts);
    pthread_mutex_unlock(&mu);
}

/* ---- the store under load ------------------------------------------------ */

int pushd_store_run(unsigned flags, pl_store_txn_fn fn, void *ctx, int64_t budget_ms)
{
    int64_t end = pl_now_ms() + budget_ms;
    int rc;
    /* pl_store_run retries a deadlock ten times within about 0.3 s; with a
     * hundred devices acknowledging at once that is not always enough, and
     * a failed record costs a redelivery: go on, jittered, for the budget */
    while ((rc = pl_store_run(pd.store, flags, fn, ctx)) == PL_TEMP && !pl_server_stopping() &&
           pl_now_ms() < end)
        usleep((useconds_t)(5000 + rand() % 20000));
    return rc;
}

/* ---- one held wait per device ------------------------------------------ */

struct waiter { char sel[PL_PSEL_LEN + 1]; unsigned long gen; };
static struct waiter waiters[HELD_MAX];
static size_t nwaiters;
static unsigned long wait_gen;

unsigned long pushd_wait_begin(const char *sel)
{
    unsigned long gen;
    size_t i;
    pthread_mutex_lock(&mu);
    gen = ++wait_gen;
    for (i = 0; i < nwaiters && strcmp(waiters[i].sel, sel) != 0; i++)
        ;
    if (i == nwaiters && nwaiters < HELD_MAX)
        memcpy(waiters[nwaiters++].sel, sel, PL_PSEL_LEN + 1);
    if (i < nwaiters)
        waiters[i].gen = gen;           /* an older wait of the device sees it is superseded */
    pthread_cond_broadcast(&mail);
    pthread_mutex_unlock(&mu);
    return gen;
}

int pushd_wait_superseded(const char *sel, unsigned long gen)
{
    int newer = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nwaiters; i++)
        if (strcmp(waiters[i].sel, sel) == 0)
            newer = waiters[i].gen != gen;
    pthread_mutex_unlock(&mu);
    return newer;
}

void pushd_wait_end(const char *sel, unsigned long gen)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nwaiters; i++)
        if (strcmp(waiters[i].sel, sel) == 0 && waiters[i].gen == gen) {
            waiters[i] = waiters[--nwaiters];
            break;
        }
    pthread_mutex_unlock(&mu);
}

/* ---- the bytes of messages being sent ---------------------------------- */

static pthread_mutex_t mem_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t mem_used;

int pushd_mem_try(uint64_t bytes, uint64_t limit)
{
    int ok;
    pthread_mutex_lock(&mem_mu);
    /* one message always goes, however large: nothing else is in flight */
    ok = mem_used == 0 || mem_used + bytes <= limit;
    if (ok)
        mem_used += bytes;
    pthread_mutex_unlock(&mem_mu);
    return ok ? 0 : -1;
}

void pushd_mem_release(uint64_t bytes)
{
    pthread_mutex_lock(&mem_mu);
    mem_used = mem_used > bytes ? mem_used - bytes : 0;
    pthread_mutex_unlock(&mem_mu);
}

void pushd_dev_wake_all(void)
{
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&released);
    pthread_cond_broadcast(&mail);
    pthread_mutex_unlock(&mu);
}
