/* milter_native.c -- the native milter engine: a few event-loop threads
 * (milter_threads), each with its own epoll set, share the listening
 * socket (EPOLLEXCLUSIVE: one of them takes a new connection) and serve
 * their connections to the end.  A read takes every command Postfix has
 * sent (with the no-reply stages that is a whole header block at once),
 * the filter chain runs in the thread, and the replies go out in one
 * write.  No thread is created or woken per command, which is what
 * libmilter's worker pool costs (postlink-milter(8)).  A filter callback
 * that waits (the store) holds up only the sessions of its thread. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "milter_native.h"
#include "milter_session.h"
#include "strutil.h"

struct nconn {
    int fd;
    time_t last;
    int want_out;
    struct pl_msess s;
    struct nconn *prev, *next;
};

struct loop {
    int ep;
    pthread_t th;
    struct nconn *head;
    unsigned n;
};

static pl_listener *lst;
static int lfd = -1;
static int wake[2] = {-1, -1};
static atomic_int ending;
static struct loop *loops;
static unsigned nloops;
static unsigned idle_timeout;
static char listen_tag, wake_tag;      /* epoll data of the two special descriptors */

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

static void conn_close(struct loop *lp, struct nconn *c)
{
    epoll_ctl(lp->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    pl_msess_free(&c->s);
    if (c->prev)
        c->prev->next = c->next;
    else
        lp->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    lp->n--;
    free(c);
}

/* Write what the session has to say; 0, or -1 when the peer is gone. */
static int conn_flush(struct loop *lp, struct nconn *c)
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
    if ((o->len > 0) != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (o->len ? EPOLLOUT : 0), .data.ptr = c};
        c->want_out = o->len > 0;
        epoll_ctl(lp->ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
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
                struct timespec ts = {0, 50 * 1000000L};
                long now = (long)time(NULL), old = atomic_load(&warned);
                if (now - old >= 60 && atomic_compare_exchange_strong(&warned, &old, now))
                    msg_warn("milter: out of file descriptors: new connections wait");
                nanosleep(&ts, NULL);  /* the listening socket stays readable */
            }
            return;
        }
        c = pl_xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->last = time(NULL);
        pl_msess_init(&c->s);
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
        lp->n++;
    }
}

static void conn_read(struct loop *lp, struct nconn *c)
{
    unsigned char buf[65536];
    char why[160] = "";
    int rc = 0;

    for (int i = 0; i < 64 && rc == 0; i++) {
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
        rc = 2;                        /* end of file or error: Postfix is gone */
    }
    c->last = time(NULL);
    if (rc < 0)
        msg_warn("milter: %s: session closed", why);
    if (conn_flush(lp, c) != 0 || rc != 0)
        conn_close(lp, c);
}

static void sweep(struct loop *lp, time_t now)
{
    struct nconn *c = lp->head, *next;
    for (; c; c = next) {
        next = c->next;
        if (now - c->last > (time_t)idle_timeout) {
            msg_info("milter: session idle for %u s (milter_timeout): closed", idle_timeout);
            conn_close(lp, c);
        }
    }
}

static void *loop_run(void *arg)
{
    struct loop *lp = arg;
    struct epoll_event evs[64];
    time_t last_sweep = time(NULL);

    while (!atomic_load(&ending)) {
        int n = epoll_wait(lp->ep, evs, 64, 1000);
        time_t now;
        for (int i = 0; i < n && !atomic_load(&ending); i++) {
            void *p = evs[i].data.ptr;
            if (p == &listen_tag)
                conn_accept(lp);
            else if (p == &wake_tag)
                ;                      /* ending is set */
            else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(lp, p);
            else if (evs[i].events & EPOLLOUT) {
                struct nconn *c = p;
                if (conn_flush(lp, c) != 0)
                    conn_close(lp, c);
            }
        }
        if ((now = time(NULL)) != last_sweep) {
            last_sweep = now;
            sweep(lp, now);
        }
    }
    while (lp->head)
        conn_close(lp, lp->head);
    return NULL;
}

int pl_native_run(unsigned threads, unsigned timeout_s)
{
    unsigned started = 0;

    idle_timeout = timeout_s;
    nloops = threads ? threads : 1;
    loops = pl_xcalloc(nloops, sizeof(*loops));
    for (unsigned i = 0; i < nloops; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &listen_tag};
        struct epoll_event wv = {.events = EPOLLIN, .data.ptr = &wake_tag};
        if ((loops[i].ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            epoll_ctl(loops[i].ep, EPOLL_CTL_ADD, lfd, &ev) != 0 ||
            epoll_ctl(loops[i].ep, EPOLL_CTL_ADD, wake[0], &wv) != 0) {
            msg_error("milter: epoll: %s", strerror(errno));
            return 1;
        }
    }
    for (unsigned i = 1; i < nloops; i++)
        if (pthread_create(&loops[i].th, NULL, loop_run, &loops[i]) == 0)
            started = i;
        else
            break;
    loop_run(&loops[0]);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(loops[i].th, NULL);
    for (unsigned i = 0; i < nloops; i++)
        close(loops[i].ep);
    free(loops);
    loops = NULL;
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
}
