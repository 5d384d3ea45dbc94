/* milter_native.c -- the native milter engine.  A few event-loop threads
 * (one per CPU, at most 4), each with its own epoll set, share the
 * listening socket (EPOLLEXCLUSIVE: one of them takes a new connection)
 * and speak the protocol for their sessions: a read takes every command
 * Postfix has sent (with the no-reply stages that is a whole header block
 * at once), the filters' callbacks for those commands run in the loop
 * (they only collect), and the replies go out in one write.  The end of a
 * message, where a filter may wait (the store, a presence lookup), goes to
 * a pool of milter_threads workers while the loop serves the other
 * sessions; the worker hands the session back to its loop.  No thread is
 * woken per command, which is what libmilter's worker pool costs
 * (postlink-milter(8)).  A session whose replies Postfix does not read is
 * not read either (its replies are bounded); out of descriptors, a loop
 * stops accepting for a moment. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "milter_native.h"
#include "milter_session.h"
#include "strutil.h"

#define MAX_LOOPS 4
#define OUT_HIGH (256 * 1024)          /* replies waiting: stop reading the session */

struct loop;

struct nconn {
    int fd;
    time_t last;
    uint32_t events;                   /* what epoll waits for now */
    int in_set;                        /* in the loop's epoll set */
    atomic_int busy;                   /* at a worker: the loop keeps off */
    int rc;                            /* the worker's result */
    struct loop *lp;
    struct pl_msess s;
    struct nconn *prev, *next;         /* the loop's sessions */
    struct nconn *qnext;               /* work queue, done list */
};

struct loop {
    int ep, evfd;
    pthread_t th;
    struct nconn *head;
    pthread_mutex_t mu;
    struct nconn *done;                /* handed back by workers */
    atomic_uint nbusy;                 /* its sessions at a worker */
    int64_t relisten_at;               /* ms: listening again after EMFILE */
};

static pl_listener *lst;
static int lfd = -1;
static int wake[2] = {-1, -1};
static atomic_int ending;
static struct loop loops[MAX_LOOPS];
static unsigned nloops;
static unsigned idle_timeout;
static char listen_tag, wake_tag;      /* epoll data of the special descriptors */

static pthread_mutex_t wq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wq_cv = PTHREAD_COND_INITIALIZER;
static struct nconn *wq_head, *wq_tail;
static pthread_t *workers;
static unsigned nworkers;
static atomic_uint workers_alive;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pl_native_open(const char *socket, const char *user)
{
    char err[512];
    if ((lst = pl_listener_open(socket, user, err, sizeof(err))) == NULL) {
        msg_error("%s", err);
        return -1;
    }
    lfd = pl_listener_fd(lst);
    if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) != 0 || pipe2(wake, O_CLOEXEC) != 0) {
        msg_error("cannot set up the milter socket %s: %s", socket, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- sessions, in their loop's thread ---------------------------------------- */

static void conn_close(struct loop *lp, struct nconn *c)
{
    if (c->in_set)
        epoll_ctl(lp->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    pl_msess_free(&c->s);
    if (c->prev)
        c->prev->next = c->next;
    else
        lp->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* Tell epoll what the session waits for: nothing while a worker has it
 * (out of the set: a hang-up would otherwise be reported over and over),
 * its replies to write, more commands unless too many replies wait. */
static void conn_want(struct loop *lp, struct nconn *c)
{
    uint32_t ev = 0;
    if (c->busy) {
        if (c->in_set)
            epoll_ctl(lp->ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->in_set = 0;
        return;
    }
    if (c->s.out.len > 0)
        ev |= EPOLLOUT;
    if (c->s.out.len < OUT_HIGH)
        ev |= EPOLLIN;
    if (!c->in_set || ev != c->events) {
        struct epoll_event e = {.events = ev, .data.ptr = c};
        epoll_ctl(lp->ep, c->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e);
        c->events = ev;
        c->in_set = 1;
    }
}

/* Write what the session has to say; 0, or -1 when the peer is gone. */
static int conn_flush(struct nconn *c)
{
    struct pl_mbuf *o = &c->s.out;
    size_t off = 0;
    while (off < o->len) {
        ssize_t w = send(c->fd, o->p + off, o->len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -1;
    }
    pl_mbuf_consume(o, off);
    return 0;
}

/* The end of a message to a worker; the loop keeps off the session until
 * the worker hands it back. */
static void to_worker(struct loop *lp, struct nconn *c)
{
    c->busy = 1;
    atomic_fetch_add(&lp->nbusy, 1);
    conn_want(lp, c);
    c->qnext = NULL;
    pthread_mutex_lock(&wq_mu);
    if (wq_tail)
        wq_tail->qnext = c;
    else
        wq_head = c;
    wq_tail = c;
    pthread_cond_signal(&wq_cv);
    pthread_mutex_unlock(&wq_mu);
}

/* After input was served (rc as pl_msess_input): write, then close, hand
 * the end of message to a worker, or wait for more. */
static void conn_after(struct loop *lp, struct nconn *c, int rc, const char *why)
{
    if (rc < 0)
        msg_warn("milter: %s: session closed", why);
    if (conn_flush(c) != 0 || (rc != 0 && rc != 2)) {
        conn_close(lp, c);
        return;
    }
    if (rc == 2)
        to_worker(lp, c);              /* (it may be back before this returns) */
    else
        conn_want(lp, c);
}

static void conn_read(struct loop *lp, struct nconn *c)
{
    unsigned char buf[65536];
    char why[160] = "";
    int rc = 0;

    for (int i = 0; i < 16 && rc == 0 && c->s.out.len < OUT_HIGH; i++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            rc = pl_msess_input(&c->s, buf, (size_t)n, why, sizeof(why));
            if ((size_t)n < sizeof(buf))
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        rc = 3;                        /* end of file or error: Postfix is gone */
    }
    c->last = time(NULL);
    conn_after(lp, c, rc, why);
}

/* Sessions a worker handed back. */
static void conn_returned(struct loop *lp)
{
    struct nconn *c, *next;
    uint64_t v;
    char why[160] = "";

    if (read(lp->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        msg_warn("milter: eventfd: %s", strerror(errno));
    pthread_mutex_lock(&lp->mu);
    c = lp->done;
    lp->done = NULL;
    pthread_mutex_unlock(&lp->mu);
    for (; c; c = next) {
        int rc = c->rc;
        next = c->qnext;
        c->busy = 0;
        atomic_fetch_sub(&lp->nbusy, 1);
        c->last = time(NULL);
        if (rc == 0)                   /* what Postfix sent after the end, if anything */
            rc = pl_msess_input(&c->s, NULL, 0, why, sizeof(why));
        else if (rc < 0)
            snprintf(why, sizeof(why), "end of message");
        conn_after(lp, c, rc, why);
    }
}

static void conn_accept(struct loop *lp)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct nconn *c;
        struct epoll_event ev;
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                static atomic_long warned;
                long now = (long)time(NULL), old = atomic_load(&warned);
                if (now - old >= 60 && atomic_compare_exchange_strong(&warned, &old, now))
                    msg_warn("milter: out of file descriptors: new connections wait");
                /* the socket stays readable: stop listening for a moment */
                epoll_ctl(lp->ep, EPOLL_CTL_DEL, lfd, NULL);
                lp->relisten_at = now_ms() + 100;
            }
            return;
        }
        c = pl_xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->lp = lp;
        c->last = time(NULL);
        c->events = EPOLLIN;
        c->in_set = 1;
        pl_msess_init(&c->s);
        c->s.eom_apart = nworkers > 0;  /* milter_threads = 0: ends of messages in the loop */
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            msg_warn("milter: epoll: %s", strerror(errno));
            pl_msess_free(&c->s);
            close(fd);
            free(c);
            continue;
        }
        c->next = lp->head;
        if (lp->head)
            lp->head->prev = c;
        lp->head = c;
    }
}

static void listen_again(struct loop *lp)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listen_tag};
    if (lp->relisten_at && now_ms() >= lp->relisten_at) {
        lp->relisten_at = 0;
        epoll_ctl(lp->ep, EPOLL_CTL_ADD, lfd, &ev);
    }
}

static void sweep(struct loop *lp, time_t now)
{
    struct nconn *c = lp->head, *next;
    for (; c; c = next) {
        next = c->next;
        if (!c->busy && now - c->last > (time_t)idle_timeout) {
            msg_info("milter: session idle for %u s (milter_timeout): closed", idle_timeout);
            conn_close(lp, c);
        }
    }
}

/* After the stop (the drain is over): a loop goes on until the ends of
 * messages its workers still hold are back and answered (5 s at most),
 * then writes what its sessions have left to say. */
static int loop_done(struct loop *lp, int64_t *since)
{
    if (!atomic_load(&ending))
        return 0;
    if (*since == 0)
        *since = now_ms();
    return lp->nbusy == 0 || now_ms() - *since > 5000;
}

static void *loop_run(void *arg)
{
    struct loop *lp = arg;
    struct epoll_event evs[64];
    time_t last_sweep = time(NULL);
    int64_t ending_since = 0;

    while (!loop_done(lp, &ending_since)) {
        int n = epoll_wait(lp->ep, evs, 64, lp->relisten_at || ending_since ? 100 : 1000);
        time_t now;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            struct nconn *c = p;
            if (p == &listen_tag)
                conn_accept(lp);
            else if (p == &wake_tag)
                epoll_ctl(lp->ep, EPOLL_CTL_DEL, wake[0], NULL);   /* ending is set */
            else if (p == lp)
                conn_returned(lp);
            else if (c->busy)
                ;                      /* at a worker (an event from before the hand-off) */
            else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(lp, c);
            else if (evs[i].events & EPOLLOUT)
                conn_after(lp, c, 0, "");
        }
        listen_again(lp);
        if ((now = time(NULL)) != last_sweep) {
            last_sweep = now;
            sweep(lp, now);
        }
    }
    for (struct nconn *c = lp->head; c; c = c->next)
        if (!c->busy)
            (void)conn_flush(c);
    return NULL;
}

/* ---- the workers that run ends of messages --------------------------------------- */

static void *worker_run(void *arg)
{
    (void)arg;
    for (;;) {
        struct nconn *c;
        struct loop *lp;
        char why[160];
        uint64_t one = 1;

        pthread_mutex_lock(&wq_mu);
        while (wq_head == NULL && !atomic_load(&ending))
            pthread_cond_wait(&wq_cv, &wq_mu);
        c = wq_head;
        if (c) {
            wq_head = c->qnext;
            if (wq_head == NULL)
                wq_tail = NULL;
        }
        pthread_mutex_unlock(&wq_mu);
        if (c == NULL)
            break;                     /* ending, nothing left */
        c->rc = atomic_load(&ending) ? -1 : pl_msess_eom(&c->s, why, sizeof(why));
        lp = c->lp;
        if (c->rc == 0 && c->s.in.len == 0 && !atomic_load(&ending) && conn_flush(c) == 0) {
            /* the usual end: answered; the session goes back into its
             * loop's set from here (the loop owns it again from the
             * moment it is there), without waking the loop */
            struct epoll_event e = {.events = EPOLLIN | (c->s.out.len ? EPOLLOUT : 0), .data.ptr = c};
            c->last = time(NULL);
            c->events = e.events;
            c->in_set = 1;
            atomic_fetch_sub(&lp->nbusy, 1);
            atomic_store(&c->busy, 0);
            if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, c->fd, &e) == 0)
                continue;
            msg_warn("milter: epoll: %s", strerror(errno));   /* (not expected) */
            c->in_set = 0;
            atomic_fetch_add(&lp->nbusy, 1);
            atomic_store(&c->busy, 1);
            c->rc = -1;
        }
        pthread_mutex_lock(&lp->mu);
        c->qnext = lp->done;
        lp->done = c;
        pthread_mutex_unlock(&lp->mu);
        if (write(lp->evfd, &one, sizeof(one)) < 0)
            msg_warn("milter: cannot wake an event loop: %s", strerror(errno));
    }
    atomic_fetch_sub(&workers_alive, 1);
    return NULL;
}

static unsigned cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_LOOPS ? MAX_LOOPS : (unsigned)n;
}

int pl_native_run(unsigned threads, unsigned timeout_s)
{
    unsigned started = 0, waited = 0;

    idle_timeout = timeout_s;
    nloops = cpus();
    for (unsigned i = 0; i < nloops; i++) {
        struct loop *lp = &loops[i];
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listen_tag};
        struct epoll_event wv = {.events = EPOLLIN, .data.ptr = &wake_tag};
        struct epoll_event dv = {.events = EPOLLIN, .data.ptr = lp};
        pthread_mutex_init(&lp->mu, NULL);
        if ((lp->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            (lp->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
            epoll_ctl(lp->ep, EPOLL_CTL_ADD, lfd, &ev) != 0 ||
            epoll_ctl(lp->ep, EPOLL_CTL_ADD, wake[0], &wv) != 0 ||
            epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->evfd, &dv) != 0) {
            msg_error("milter: epoll: %s", strerror(errno));
            return 1;
        }
    }
    nworkers = threads;
    workers = pl_xcalloc(nworkers, sizeof(*workers));
    for (unsigned i = 0; i < nworkers; i++) {
        atomic_fetch_add(&workers_alive, 1);
        if (pthread_create(&workers[i], NULL, worker_run, NULL) != 0) {
            atomic_fetch_sub(&workers_alive, 1);
            msg_error("milter: cannot start a worker thread");
            return 1;
        }
    }
    msg_info("milter: %u event loop(s), %u end-of-message worker(s)", nloops, nworkers);
    for (unsigned i = 1; i < nloops; i++)
        if (pthread_create(&loops[i].th, NULL, loop_run, &loops[i]) == 0)
            started = i;
        else
            break;
    loop_run(&loops[0]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(loops[i].th, NULL);
    /* the workers: those inside a filter finish it (bounded by the filter's
     * own timeouts); one that never comes back keeps the store open */
    pthread_mutex_lock(&wq_mu);
    pthread_cond_broadcast(&wq_cv);
    pthread_mutex_unlock(&wq_mu);
    while (atomic_load(&workers_alive) > 0 && waited++ < 100) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&workers_alive) > 0)
        return 75;
    for (unsigned i = 0; i < nworkers; i++)
        pthread_join(workers[i], NULL);
    free(workers);
    for (unsigned i = 0; i < nloops; i++) {
        while (loops[i].head)
            conn_close(&loops[i], loops[i].head);
        close(loops[i].ep);
        close(loops[i].evfd);
    }
    pl_listener_stop(lst);
    pl_listener_free(lst);
    lst = NULL;
    close(wake[0]);
    close(wake[1]);
    return 0;
}

void pl_native_end(void)
{
    atomic_store(&ending, 1);
    if (write(wake[1], "x", 1) < 0)
        msg_warn("milter: cannot wake the event loops: %s", strerror(errno));
    pthread_mutex_lock(&wq_mu);
    pthread_cond_broadcast(&wq_cv);
    pthread_mutex_unlock(&wq_mu);
}
