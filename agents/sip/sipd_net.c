/* sipd_net.c -- the few socket operations postlink-sipd's calls need, each
 * bounded in time: listen on the media address, accept one connection,
 * connect to the peer's, read the token line. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sipd.h"

long sipd_ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

void sipd_deadline(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int sockaddr_of(const char *addr, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -1;
}

int sipd_listen(const char *addr, unsigned *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;
    if (sockaddr_of(addr, 0, &ss, &len) != 0) {
        snprintf(err, errlen, "%s is not a numeric address", addr);
        return -1;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "listen on %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

int sipd_accept(int lfd, unsigned ms, char *peer, size_t peerlen)
{
    struct pollfd p = {lfd, POLLIN, 0};
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd, r;
    do
        r = poll(&p, 1, (int)ms);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return -1;
    if ((fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC)) < 0)
        return -1;
    if (peer) {
        const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                                : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (inet_ntop(ss.ss_family, a, peer, (socklen_t)peerlen) == NULL)
            snprintf(peer, peerlen, "unknown");
    }
    return fd;
}

static int is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

int sipd_connect(const char *addr, unsigned port, unsigned ms, const char *src, char *err,
                 size_t errlen)
{
    /* from the media address, where it can reach the peer (a loopback
     * destination only from a loopback source, the same family) */
    if (src && (is_loopback(src) != is_loopback(addr) ||
                (strchr(src, ':') != NULL) != (strchr(addr, ':') != NULL)))
        src = NULL;                    /* another scope or family: any source */
    return pl_smtpc_connect_tcp_from(addr, port, src, ms, err, errlen);
}

long sipd_read_line(int fd, char *buf, size_t max, unsigned ms)
{
    struct timespec t0;
    size_t n = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (n < max) {
        long left = (long)ms - sipd_ms_since(&t0);
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        if ((r = read(fd, buf + n, 1)) <= 0)     /* one byte: SMTP may follow */
            return -1;
        if (buf[n++] == '\n')
            return (long)n;
    }
    return -1;
}

int sipd_accept_token(int lfd, unsigned ms, const char *token, const char *call_id, char *peer,
                      size_t peerlen)
{
    struct timespec t0;
    char line[PL_SDP_TOKEN_LINE_MAX + 2];
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long left = (long)ms - sipd_ms_since(&t0), n;
        int fd;
        if (left <= 0)
            return -1;
        if ((fd = sipd_accept(lfd, (unsigned)left, peer, peerlen)) < 0)
            return -1;
        left = (long)ms - sipd_ms_since(&t0);
        n = sipd_read_line(fd, line, sizeof(line) - 1, left > 0 ? (unsigned)left : 1);
        if (n > 0 && pl_sdp_token_line_check(line, (size_t)n, token))
            return fd;
        msg_warn("Call-ID %s: a connection from %s without this call's token: closed", call_id, peer);
        close(fd);
    }
}

int sipd_peer_addr_ok(const char *addr)
{
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    const char *h = cfg->sip_server + 4;              /* after "sip:" */
    if (!is_loopback(addr))
        return 1;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]", 5) == 0 || strncmp(h, "localhost", 9) == 0;
}

static void *watch_main(void *arg)
{
    struct sipd_watch *w = arg;
    struct timespec dl;
    sipd_deadline(&dl, w->ms);
    pthread_mutex_lock(&w->mu);
    while (w->armed && pthread_cond_timedwait(&w->cv, &w->mu, &dl) == 0)
        ;
    if (w->armed) {
        shutdown(w->fd, SHUT_RDWR);
        w->fired = 1;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void sipd_watch_start(struct sipd_watch *w, int fd, unsigned ms)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->fd = fd;
    w->ms = ms;
    w->armed = 1;
    w->fired = 0;
    w->running = pthread_create(&w->th, NULL, watch_main, w) == 0;
}

int sipd_watch_stop(struct sipd_watch *w)
{
    pthread_mutex_lock(&w->mu);
    w->armed = 0;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->running)
        pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    return w->fired;
}
