/* store_ops.c -- which threads are inside a Berkeley DB call, and since when,
 * for the stuck-operation guard (store_watch.c).
 *
 * Every thread that calls into the library gets its own mark the first
 * time, linked into one process-wide list and unlinked by a thread-key
 * destructor when the thread exits, so marks are never shared: a process
 * that has served any number of short-lived threads (libmilter starts one
 * per connection) still sees the one that is stuck.  A mark records the
 * store the call is for and the deadline of the outermost call (nested calls
 * keep it); 0 means the thread is not inside the library. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "store_bdb_int.h"

struct op_mark {
    atomic_llong deadline;        /* monotonic seconds, 0 = idle */
    pl_store *_Atomic store;      /* the store the current call is for */
    struct op_mark *prev, *next;
};

static pthread_mutex_t marks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct op_mark *marks;
static pthread_key_t marks_key;
static pthread_once_t marks_once = PTHREAD_ONCE_INIT;
static _Thread_local struct op_mark *my_mark;

static void mark_free(void *arg)
{
    struct op_mark *m = arg;

    pthread_mutex_lock(&marks_lock);
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        marks = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    pthread_mutex_unlock(&marks_lock);
    free(m);
}

static void marks_init(void)
{
    if (pthread_key_create(&marks_key, mark_free) != 0)
        msg_fatal("store: cannot create the thread key for the operation guard");
}

/* The calling thread's mark, made on first use. */
static struct op_mark *mark_self(void)
{
    struct op_mark *m;

    if (my_mark != NULL)
        return my_mark;
    pthread_once(&marks_once, marks_init);
    if ((m = calloc(1, sizeof(*m))) == NULL)
        msg_fatal("store: out of memory");
    pthread_mutex_lock(&marks_lock);
    m->next = marks;
    if (marks != NULL)
        marks->prev = m;
    marks = m;
    pthread_mutex_unlock(&marks_lock);
    pthread_setspecific(marks_key, m);
    return my_mark = m;
}

/* Test hook: when the file named by $POSTLINK_TEST_STUCK_FILE exists, the
 * next record read (pl_store_get) removes it and blocks for good inside
 * the library's mark, as a thread
 * waiting on a mutex left by a process that died inside the library
 * would (tests/integration/t_stuck_daemon.sh). */
static const char *stuck_file;
static pthread_once_t stuck_once = PTHREAD_ONCE_INIT;

static void stuck_init(void)
{
    stuck_file = getenv("POSTLINK_TEST_STUCK_FILE");
    if (stuck_file != NULL && *stuck_file == '\0')
        stuck_file = NULL;
    if (stuck_file != NULL)
        msg_warn("TEST HOOK POSTLINK_TEST_STUCK_FILE=%s is set: not for production", stuck_file);
}

void pl_bdb_test_stuck(pl_store *s)
{
    pthread_once(&stuck_once, stuck_init);
    if (stuck_file != NULL && unlink(stuck_file) == 0) {
        pl_bdb_op_enter(s);
        msg_warn("TEST HOOK POSTLINK_TEST_STUCK_FILE: this thread now blocks inside a store call");
        for (;;)
            sleep(3600);
    }
}

void pl_bdb_op_enter_long(pl_store *s, unsigned factor)
{
    struct op_mark *m = mark_self();
    long long idle = 0, deadline = pl_bdb_now() + (long long)s->opts.stuck_secs * factor;

    /* nested calls keep the outer deadline */
    if (atomic_load(&m->deadline) == 0) {
        atomic_store(&m->store, s);
        atomic_compare_exchange_strong(&m->deadline, &idle, deadline);
    }
}

void pl_bdb_op_enter(pl_store *s)
{
    pl_bdb_op_enter_long(s, 1);
}

void pl_bdb_op_leave(pl_store *s)
{
    (void)s;
    if (my_mark != NULL)
        atomic_store(&my_mark->deadline, 0);
}

int pl_bdb_op_overdue(pl_store *s, long long now)
{
    int n = 0;

    pthread_mutex_lock(&marks_lock);
    for (struct op_mark *m = marks; m != NULL; m = m->next) {
        long long deadline = atomic_load(&m->deadline);
        if (deadline != 0 && now > deadline && atomic_load(&m->store) == s)
            n++;
    }
    pthread_mutex_unlock(&marks_lock);
    return n;
}
