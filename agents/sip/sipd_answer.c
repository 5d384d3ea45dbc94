/* sipd_answer.c -- the answering side: a call from another site's
 * postlink-sipd (the SIP user agent has already refused what did not come
 * through the SIP server or is not for our number, and calls beyond
 * sip_max_incoming).  The offer must be one TCP connection for SMTP with
 * a postlink token; we answer with our own token, passive (we listen) or
 * active (we connect) as sip_answer_setup prefers and RFC 4145 allows.  A
 * thread per call then takes the connection, checks its token line,
 * connects to this site's Postfix (sip_deliver_to), tells it the caller's
 * address with XCLIENT so that its normal checks apply to the caller, and
 * copies bytes both ways until the caller is done; then it waits a
 * moment for the caller's BYE and sends its own if none came. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "netmatch.h"
#include "sipd.h"

struct answered {
    char call_id[256], peer_token[PL_SDP_TOKEN_LEN + 1], my_token[PL_SDP_TOKEN_LEN + 1];
    char peer_addr[64];
    unsigned peer_port;
    int lfd;                 /* passive: our listening socket; -1 when active */
    int fd, pfd;             /* the caller's connection, Postfix's */
    int ended;               /* the caller hung up */
    pthread_cond_t cond;
    struct answered *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gone = PTHREAD_COND_INITIALIZER;
static struct answered *calls;
static unsigned live;
static int stopping;            /* sipd_answer_drain: no new calls, no more BYEs of ours */

/* The call's fds change only under the lock: sipd_answer_drain shuts
 * them down from another thread and must never hit a reused number. */
static void set_fd(int *which, int fd)
{
    pthread_mutex_lock(&lock);
    *which = fd;
    pthread_mutex_unlock(&lock);
}

static void close_fd(int *which)
{
    pthread_mutex_lock(&lock);
    if (*which >= 0)
        close(*which);
    *which = -1;
    pthread_mutex_unlock(&lock);
}

static void forget(struct answered *a)
{
    pthread_mutex_lock(&lock);
    for (struct answered **p = &calls; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    live--;
    pthread_cond_broadcast(&gone);
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

/* Copy both ways until both sides closed, nothing moved for idle_ms, or
 * the call's deadline passed.  Writes are bounded too (SO_SNDTIMEO), so a
 * peer that stops reading cannot hold the thread. */
static void splice_fds(struct answered *a, unsigned idle_ms, const struct timespec *t0,
                       long deadline_ms, unsigned long long *up, unsigned long long *down)
{
    char buf[16384];
    int open_in = 1, open_out = 1;   /* caller -> postfix, postfix -> caller */
    struct timeval tv = {(time_t)(idle_ms / 1000), (suseconds_t)(idle_ms % 1000) * 1000};
    setsockopt(a->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(a->pfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (open_in || open_out) {
        long left = deadline_ms - sipd_ms_since(t0);
        struct pollfd p[2] = {{open_in ? a->fd : -1, POLLIN, 0}, {open_out ? a->pfd : -1, POLLIN, 0}};
        int r;
        if (left <= 0) {
            msg_warn("Call-ID %s: the SMTP session over the call passed its limit of %ld s: cut",
                     a->call_id, deadline_ms / 1000);
            return;
        }
        r = poll(p, 2, (int)(left < (long)idle_ms ? left : (long)idle_ms));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        for (int i = 0; i < 2; i++) {
            int from = i == 0 ? a->fd : a->pfd, to = i == 0 ? a->pfd : a->fd;
            ssize_t n;
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(from, buf, sizeof(buf));
            if (n <= 0) {
                shutdown(to, SHUT_WR);
                if (i == 0)
                    open_in = 0;
                else
                    open_out = 0;
                continue;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(to, buf + off, (size_t)(n - off));
                if (w <= 0)
                    return;
                off += w;
            }
            *(i == 0 ? up : down) += (unsigned long long)n;
        }
    }
}

/* Connect to this site's Postfix and, where allowed, say who the caller
 * is.  Returns Postfix's fd with the greeting the caller must see in
 * greet (empty: none read, splice from the start). */
static int to_postfix(struct answered *a, const char *peer_ip, char *greet, size_t glen, int *xc)
{
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    char host[64], err[256];
    unsigned ms = (unsigned)cfg->sip_connect_timeout * 1000u, port;
    int fd;
    struct pl_smtpc c;
    struct pl_smtpc_xclient x = {peer_ip, "[UNAVAILABLE]", "ESMTP", NULL};

    greet[0] = '\0';
    *xc = 0;
    if (pl_hostport_split(cfg->sip_deliver_to, host, sizeof(host), &port) != 0)
        return -1;                    /* check_hostport refused it already */
    if ((fd = sipd_connect(host, port, ms, sipd.media_addr, err, sizeof(err))) < 0) {
        msg_warn("Call-ID %s: cannot reach Postfix at %s: %s", a->call_id, cfg->sip_deliver_to, err);
        return -1;
    }
    if (!cfg->sip_xclient)
        return fd;
    pl_smtpc_init(&c, fd, NULL);
    if (pl_smtpc_open(&c, NULL, sipd.hostname) != 0) {
        msg_warn("Call-ID %s: Postfix at %s: %s", a->call_id, cfg->sip_deliver_to, c.err);
        close(fd);
        return -1;
    }
    /* Fail closed: without XCLIENT ADDR, Postfix would judge the caller
     * by our own address (often in mynetworks: an open relay). */
    if (!(c.caps.xclient_attrs & PL_SMTP_XCLIENT_ADDR)) {
        msg_error("Call-ID %s: Postfix at %s does not offer XCLIENT ADDR to postlink-sipd "
                  "(smtpd_authorized_xclient_hosts): call refused, its checks would see "
                  "postlink-sipd's address instead of the caller's (or set sip_xclient = no "
                  "on a listener without permit_mynetworks)", a->call_id, cfg->sip_deliver_to);
        pl_smtpc_quit(&c);
        close(fd);
        return -1;
    }
    switch (pl_smtpc_xclient(&c, &x)) {
    case 0:
        *xc = 1;
        break;
    default:
        msg_warn("Call-ID %s: XCLIENT refused by Postfix at %s: %s", a->call_id, cfg->sip_deliver_to, c.err);
        close(fd);
        return -1;
    }
    pl_smtp_reply_format(&c.greeting, greet, glen);
    return fd;
}

static void *serve(void *arg)
{
    struct answered *a = arg;
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    unsigned ms = (unsigned)cfg->sip_connect_timeout * 1000u;
    char peer[64] = "", line[PL_SDP_TOKEN_LINE_MAX + 2], greet[PL_SMTP_TEXT_MAX + 64], err[256];
    unsigned long long up = 0, down = 0;
    struct timespec t0;
    int xc = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (a->lfd >= 0) {
        set_fd(&a->fd, sipd_accept_token(a->lfd, ms, a->my_token, a->call_id, peer, sizeof(peer)));
        close(a->lfd);
        a->lfd = -1;
        if (a->fd < 0)
            msg_warn("Call-ID %s: the caller did not connect with this call's token within %u ms",
                     a->call_id, ms);
    } else {
        set_fd(&a->fd, sipd_connect(a->peer_addr, a->peer_port, ms, sipd.media_addr, err, sizeof(err)));
        if (a->fd < 0)
            msg_warn("Call-ID %s: %s", a->call_id, err);
        else {
            size_t k = (size_t)pl_sdp_token_line(line, sizeof(line), a->peer_token);
            snprintf(peer, sizeof(peer), "%s", a->peer_addr);
            if (write(a->fd, line, k) != (ssize_t)k)
                close_fd(&a->fd);
        }
    }
    if (a->fd >= 0)
        set_fd(&a->pfd, to_postfix(a, peer, greet, sizeof(greet), &xc));
    if (a->fd >= 0 && a->pfd < 0) {
        static const char busy[] = "421 4.3.0 postlink-sipd cannot reach its mail server\r\n";
        if (write(a->fd, busy, sizeof(busy) - 1) < 0)
            msg_debug("Call-ID %s: the caller is gone", a->call_id);
    }
    if (a->fd >= 0 && a->pfd >= 0) {
        size_t gl = strlen(greet);
        if (gl == 0 || write(a->fd, greet, gl) == (ssize_t)gl) {
            msg_info("Call-ID %s: SMTP from %s handed to %s%s", a->call_id, peer,
                     cfg->sip_deliver_to, xc ? " (XCLIENT: Postfix sees the caller's address)" : "");
            splice_fds(a, 2u * (unsigned)cfg->sip_smtp_timeout * 1000u, &t0,
                       10L * cfg->sip_smtp_timeout * 1000L, &up, &down);
        }
        msg_info("Call-ID %s: SMTP over the call ended after %ld ms (%llu bytes in, %llu out)",
                 a->call_id, sipd_ms_since(&t0), up, down);
    }
    close_fd(&a->pfd);
    close_fd(&a->fd);
    /* The caller sends BYE once SMTP is done: give it a moment, then end
     * the call ourselves. */
    pthread_mutex_lock(&lock);
    struct timespec dl;
    sipd_deadline(&dl, 2000);
    while (!a->ended && pthread_cond_timedwait(&a->cond, &lock, &dl) == 0)
        ;
    int ended = a->ended || stopping;
    pthread_mutex_unlock(&lock);
    if (!ended)
        pl_sip_hangup_incoming(sipd.ua, a->call_id);
    forget(a);
    return NULL;
}

int sipd_on_invite(void *ctx, const struct pl_sip_incoming *in, char *answer_sdp, size_t len)
{
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    struct pl_sdp_tcp offer, ans = {0};
    enum pl_sdp_setup pref = strcmp(cfg->sip_answer_setup, "active") == 0 ? PL_SETUP_ACTIVE : PL_SETUP_PASSIVE;
    char err[256];
    uint64_t sess = 0;
    struct answered *a;
    pthread_t th;
    pthread_attr_t at;
    (void)ctx;

    pthread_mutex_lock(&lock);
    unsigned busy = live, stop = (unsigned)stopping;
    pthread_mutex_unlock(&lock);
    if (stop)
        return 503;
    /* The user agent counts calls while their dialog is up; this counts
     * them until their SMTP is done too. */
    if (busy >= (unsigned)cfg->sip_max_incoming) {
        msg_warn("Call-ID %s: 486: %u calls are still handing SMTP over (sip_max_incoming)",
                 in->call_id, busy);
        return 486;
    }
    if (pl_sdp_parse(in->offer_sdp, strlen(in->offer_sdp), &offer, err, sizeof(err)) != 0) {
        msg_warn("Call-ID %s from %s: 488: the offer is no TCP connection for SMTP: %s", in->call_id,
                 in->from, err);
        return 488;
    }
    if (!pl_sdp_token_ok(offer.token)) {
        msg_warn("Call-ID %s from %s: 488: the offer has no postlink-token", in->call_id, in->from);
        return 488;
    }
    if (pl_sdp_answer_setup(offer.setup, pref, &ans.setup) != 0) {
        msg_warn("Call-ID %s: 488: cannot answer a=setup:%s", in->call_id, pl_sdp_setup_name(offer.setup));
        return 488;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return 503;
    a->lfd = a->fd = a->pfd = -1;
    snprintf(a->call_id, sizeof(a->call_id), "%s", in->call_id);
    snprintf(a->peer_token, sizeof(a->peer_token), "%s", offer.token);
    snprintf(a->peer_addr, sizeof(a->peer_addr), "%s", offer.addr);
    a->peer_port = offer.port;
    pthread_cond_init(&a->cond, NULL);
    snprintf(ans.addr, sizeof(ans.addr), "%.45s", sipd.media_addr);
    ans.family = sipd.media_family;
    ans.connection_new = 1;
    if (pl_sdp_i_connect(ans.setup)) {
        if (offer.port == PL_SDP_DISCARD_PORT) {
            msg_warn("Call-ID %s: 488: the offer names no port to connect to", in->call_id);
            pthread_cond_destroy(&a->cond);
            free(a);
            return 488;
        }
        if (!sipd_peer_addr_ok(offer.addr)) {
            msg_warn("Call-ID %s: 488: the offer names %s, which we do not connect to", in->call_id,
                     offer.addr);
            pthread_cond_destroy(&a->cond);
            free(a);
            return 488;
        }
        ans.port = PL_SDP_DISCARD_PORT;
    } else if ((a->lfd = sipd_listen(sipd.media_addr, &ans.port, err, sizeof(err))) < 0) {
        msg_warn("Call-ID %s: 503: %s", in->call_id, err);
        pthread_cond_destroy(&a->cond);
        free(a);
        return 503;
    }
    if (pl_sdp_token_new(a->my_token) != 0 || getrandom(&sess, sizeof(sess), 0) != sizeof(sess)) {
        if (a->lfd >= 0)
            close(a->lfd);
        pthread_cond_destroy(&a->cond);
        free(a);
        return 503;
    }
    snprintf(ans.token, sizeof(ans.token), "%s", a->my_token);
    if (pl_sdp_build(answer_sdp, len, sess >> 1, 1, &ans) < 0) {
        if (a->lfd >= 0)
            close(a->lfd);
        pthread_cond_destroy(&a->cond);
        free(a);
        return 503;
    }
    pthread_mutex_lock(&lock);
    a->next = calls;
    calls = a;
    live++;
    pthread_mutex_unlock(&lock);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, serve, a) != 0) {
        pthread_attr_destroy(&at);
        if (a->lfd >= 0)
            close(a->lfd);
        forget(a);
        return 503;
    }
    pthread_attr_destroy(&at);
    msg_info("Call-ID %s from %s via %s: answered, we are %s", in->call_id, in->from, in->src,
             pl_sdp_setup_name(ans.setup));
    return 200;
}

void sipd_on_call_end(void *ctx, const char *call_id, int by_peer)
{
    (void)ctx;
    pthread_mutex_lock(&lock);
    for (struct answered *a = calls; a; a = a->next)
        if (strcmp(a->call_id, call_id) == 0 && by_peer) {
            a->ended = 1;
            pthread_cond_signal(&a->cond);
        }
    pthread_mutex_unlock(&lock);
}

int sipd_answer_drain(unsigned ms)
{
    struct timespec dl;
    sipd_deadline(&dl, ms);
    pthread_mutex_lock(&lock);
    stopping = 1;
    while (live > 0 && pthread_cond_timedwait(&gone, &lock, &dl) == 0)
        ;
    if (live > 0) {
        /* cut them: Postfix drops a message whose DATA was cut, the caller
         * falls back or defers */
        for (struct answered *a = calls; a; a = a->next) {
            if (a->fd >= 0)
                shutdown(a->fd, SHUT_RDWR);
            if (a->pfd >= 0)
                shutdown(a->pfd, SHUT_RDWR);
        }
        sipd_deadline(&dl, 3000);
        while (live > 0 && pthread_cond_timedwait(&gone, &lock, &dl) == 0)
            ;
    }
    int left = (int)live;
    pthread_mutex_unlock(&lock);
    if (left > 0)
        msg_warn("stopping with %d answered call(s) still handing SMTP over", left);
    return left == 0;
}
