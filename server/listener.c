/* listener.c -- the accept loop and connection pool (listener.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "lmtp_server.h"
#include "log.h"
#include "privs.h"
#include "strutil.h"

#define CUT_GRACE_S 5          /* after the drain bound: cut sockets, wait this long */

struct conn {
    struct conn *next, *prev;
    int fd;                    /* the listener's copy, for shutdown() */
    pl_listener *l;
    int fd_for_serve;
};

struct pl_listener {
    int fd;
    int wake[2];               /* a byte here ends the accept thread */
    char *unix_path;           /* removed at stop */
    char *endpoint;
    const char *what;
    unsigned max_conns;
    pl_conn_fn fn;
    void *ctx;
    pthread_t th;
    int running, stopped;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* live changed */
    struct conn *conns;
    unsigned live;
};

static int inet_listen(const char *spec, char *err, size_t errlen)
{
    char port[32], host[256];
    struct addrinfo hints, *res = NULL, *ai;
    const char *at = strchr(spec, '@');
    int fd = -1, on = 1, rc;

    if (at == NULL || (size_t)(at - spec) >= sizeof(port) || strlen(at + 1) >= sizeof(host)) {
        snprintf(err, errlen, "inet:%s: expected inet:port@host", spec);
        return -1;
    }
    snprintf(port, sizeof(port), "%.*s", (int)(at - spec), spec);
    snprintf(host, sizeof(host), "%s", at + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "inet:%s: %s", spec, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0)) < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on inet:%s: %s", spec, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

pl_listener *pl_listener_open(const char *endpoint, const char *user, char *err,
                              size_t errlen)
{
    pl_listener *l;
    const char *path = NULL;
    int fd;

    if (strncmp(endpoint, "inet:", 5) == 0) {
        fd = inet_listen(endpoint + 5, err, errlen);
    } else {
        path = strncmp(endpoint, "unix:", 5) == 0 ? endpoint + 5 : endpoint;
        if (path[0] != '/') {
            snprintf(err, errlen, "%s: a unix socket needs an absolute path", endpoint);
            return NULL;
        }
        fd = pl_unix_listen(path, 0, err, errlen);
        if (fd >= 0 && pl_socket_for_postfix(path, user, err, errlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        return NULL;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    l = pl_xcalloc(1, sizeof(*l));
    l->fd = fd;
    l->endpoint = pl_xstrdup(endpoint);
    l->unix_path = path ? pl_xstrdup(path) : NULL;
    if (pipe(l->wake) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(fd);
        free(l->endpoint);
        free(l->unix_path);
        free(l);
        return NULL;
    }
    fcntl(l->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl(l->wake[1], F_SETFD, FD_CLOEXEC);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    return l;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    pl_listener *l = c->l;

    l->fn(c->fd_for_serve, l->ctx);
    pthread_mutex_lock(&l->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->live--;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait for a free slot in the pool; 0 when stopping. */
static int wait_for_slot(pl_listener *l)
{
    int ok;
    pthread_mutex_lock(&l->mu);
    while (l->live >= l->max_conns && !l->stopped)
        pthread_cond_wait(&l->cv, &l->mu);
    ok = !l->stopped;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static void *accept_main(void *arg)
{
    pl_listener *l = arg;
    pthread_attr_t attr;
    long backoff = 0;
    time_t last_full = 0, last_emfile = 0;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        struct pollfd p[2] = {{l->fd, POLLIN, 0}, {l->wake[0], POLLIN, 0}};
        struct conn *c;
        pthread_t th;
        int fd, n;

        if (l->live >= l->max_conns && time(NULL) - last_full >= 60) {
            msg_warn("%s: all %u connection slots busy; new connections wait", l->what,
                     l->max_conns);
            last_full = time(NULL);
        }
        if (!wait_for_slot(l))
            break;
        n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (p[1].revents)
            break;
        if (n <= 0 || !(p[0].revents & POLLIN))
            continue;
        if ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (time(NULL) - last_emfile >= 60) {
                    msg_warn("%s: cannot accept a connection: %s; backing off", l->what,
                             strerror(errno));
                    last_emfile = time(NULL);
                }
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 50;
                sleep_ms(backoff);
            }
            continue;
        }
        backoff = 0;
        c = pl_xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->l = l;
        if ((c->fd_for_serve = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            /* Out of descriptors for the copy the drain uses: serve it
             * anyway, without one (a stop waits for it to end by itself). */
            if (time(NULL) - last_emfile >= 60) {
                msg_warn("%s: %s: serving a connection without a drain handle; backing off",
                         l->what, strerror(errno));
                last_emfile = time(NULL);
            }
            c->fd_for_serve = fd;
            c->fd = -1;
        }
        pthread_mutex_lock(&l->mu);
        c->next = l->conns;
        if (l->conns)
            l->conns->prev = c;
        l->conns = c;
        l->live++;
        pthread_mutex_unlock(&l->mu);
        if (pthread_create(&th, &attr, conn_main, c) != 0) {
            msg_warn("%s: cannot start a connection thread: closing the connection", l->what);
            pthread_mutex_lock(&l->mu);
            l->conns = c->next;
            if (c->next)
                c->next->prev = NULL;
            l->live--;
            pthread_mutex_unlock(&l->mu);
            if (c->fd >= 0)
                close(c->fd_for_serve);
            close(fd);
            free(c);
            sleep_ms(50);
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

int pl_listener_start(pl_listener *l, const char *what, unsigned max_conns, pl_conn_fn fn,
                      void *ctx)
{
    int rc = 0;
    l->what = what;
    l->max_conns = max_conns ? max_conns : 1;
    l->fn = fn;
    l->ctx = ctx;
    pthread_mutex_lock(&l->mu);
    if (!l->stopped) {                 /* a stop that came first wins */
        if (pthread_create(&l->th, NULL, accept_main, l) == 0) {
            l->running = 1;
        } else {
            msg_error("%s: cannot start the accept thread", what);
            rc = -1;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int pl_listener_fd(const pl_listener *l)
{
    return l->fd;
}

void pl_listener_stop(pl_listener *l)
{
    int first, running;
    pthread_mutex_lock(&l->mu);
    first = !l->stopped;
    l->stopped = 1;
    running = l->running;
    l->running = 0;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (!first)
        return;
    if (write(l->wake[1], "x", 1) < 0)
        msg_warn("%s: cannot wake the accept thread: %s", l->what ? l->what : l->endpoint,
                 strerror(errno));
    if (running)
        pthread_join(l->th, NULL);
    close(l->fd);
    l->fd = -1;
    if (l->unix_path && unlink(l->unix_path) < 0 && errno != ENOENT)
        msg_debug("cannot remove %s: %s", l->unix_path, strerror(errno));
}

static void shut_all(pl_listener *l, int how)
{
    for (struct conn *c = l->conns; c; c = c->next)
        if (c->fd >= 0)
            shutdown(c->fd, how);
}

static unsigned wait_live(pl_listener *l, unsigned secs)
{
    struct timespec deadline;
    unsigned live;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += secs;
    pthread_mutex_lock(&l->mu);
    while (l->live > 0 && pthread_cond_timedwait(&l->cv, &l->mu, &deadline) == 0)
        ;
    live = l->live;
    pthread_mutex_unlock(&l->mu);
    return live;
}

unsigned pl_listener_drain(pl_listener *l, unsigned timeout_s)
{
    unsigned live;

    pthread_mutex_lock(&l->mu);
    shut_all(l, SHUT_RD);              /* idle clients see the end now */
    pthread_mutex_unlock(&l->mu);
    if ((live = wait_live(l, timeout_s)) == 0)
        return 0;
    msg_warn("%s: %u connection(s) still busy after %u s (shutdown_timeout): cutting them",
             l->what, live, timeout_s);
    pthread_mutex_lock(&l->mu);
    shut_all(l, SHUT_RDWR);
    pthread_mutex_unlock(&l->mu);
    return wait_live(l, CUT_GRACE_S);
}

void pl_listener_free(pl_listener *l)
{
    if (l == NULL)
        return;
    pl_listener_stop(l);
    close(l->wake[0]);
    close(l->wake[1]);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->endpoint);
    free(l->unix_path);
    free(l);
}
