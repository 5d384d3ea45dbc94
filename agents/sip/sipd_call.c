/* sipd_call.c -- the calling side of a session (seed Fig. 4): listen on
 * the media address, INVITE the number through the SIP server with an
 * actpass offer of one TCP connection carrying our token, take the 200 OK
 * (sofia ACKs it), then either connect to the answer's address and send
 * the line "POSTLINK <their token>" (they chose passive) or accept their
 * connection and check that its first line is ours (they chose active).
 * Then the callee's SMTP greeting and the reply to our EHLO, which says
 * what the peer supports (the seed's T3/R3; our MAIL FROM is T4). */
#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sipd.h"

static void fail(struct sipd_session *s, enum sipd_fail f, const char *fmt, ...) PL_PRINTF(3, 4);
static void fail(struct sipd_session *s, enum sipd_fail f, const char *fmt, ...)
{
    va_list ap;
    s->fail = f;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
}

enum sipd_fail sipd_session_open(const char *number, struct sipd_session *s)
{
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    unsigned connect_ms = (unsigned)cfg->sip_connect_timeout * 1000u, lport = 0;
    unsigned smtp_ms = (unsigned)cfg->sip_smtp_timeout * 1000u;
    struct pl_sdp_tcp mine = {0}, theirs;
    enum pl_sdp_setup role;
    char offer[2048], err[256], first[PL_SDP_TOKEN_LINE_MAX + 1];
    char peer[64];
    uint64_t sess = 0;
    struct timespec t0;
    int lfd;
    struct pl_smtpc_timeouts to = {connect_ms, smtp_ms, smtp_ms, smtp_ms, smtp_ms, 2 * smtp_ms, smtp_ms};

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->ms_invite = s->ms_connected = -1;
    if (sipd.ua == NULL) {
        fail(s, SIPD_F_LOCAL, "no SIP user agent (sip_server is empty)");
        return s->fail;
    }
    if ((lfd = sipd_listen(sipd.media_addr, &lport, err, sizeof(err))) < 0) {
        fail(s, SIPD_F_LOCAL, "%s", err);
        return s->fail;
    }
    snprintf(mine.addr, sizeof(mine.addr), "%.45s", sipd.media_addr);
    mine.family = sipd.media_family;
    mine.port = lport;
    mine.setup = PL_SETUP_ACTPASS;
    mine.connection_new = 1;
    if (pl_sdp_token_new(mine.token) != 0 || getrandom(&sess, sizeof(sess), 0) != sizeof(sess) ||
        pl_sdp_build(offer, sizeof(offer), sess >> 1, 1, &mine) < 0) {
        close(lfd);
        fail(s, SIPD_F_LOCAL, "cannot make the SDP offer");
        return s->fail;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pl_sip_call(sipd.ua, number, offer, &s->call) != 0) {
        char st[16];
        close(lfd);
        snprintf(st, sizeof(st), "%d", s->call.status);
        if (s->call.status == 0)
            fail(s, SIPD_F_TIMEOUT, "no answer: %s", s->call.reason);
        else
            fail(s, SIPD_F_REFUSED, "SIP %s %s", st, s->call.reason);
        return s->fail;
    }
    s->ms_invite = sipd_ms_since(&t0);
    if (s->call.answer_sdp == NULL ||
        pl_sdp_parse(s->call.answer_sdp, strlen(s->call.answer_sdp), &theirs, err, sizeof(err)) != 0) {
        close(lfd);
        fail(s, SIPD_F_SDP, "the 200 OK's SDP is not usable: %s", s->call.answer_sdp ? err : "no body");
        return s->fail;
    }
    if (!pl_sdp_token_ok(theirs.token)) {
        close(lfd);
        fail(s, SIPD_F_SDP, "the 200 OK's SDP has no postlink-token");
        return s->fail;
    }
    if (pl_sdp_offer_setup(theirs.setup, &role) != 0) {
        close(lfd);
        fail(s, SIPD_F_SDP, "the answer's a=setup:%s does not fit our actpass offer",
             pl_sdp_setup_name(theirs.setup));
        return s->fail;
    }
    first[0] = '\0';
    if (pl_sdp_i_connect(role)) {
        char port[16];
        close(lfd);
        snprintf(port, sizeof(port), "%u", theirs.port);
        if (!sipd_peer_addr_ok(theirs.addr)) {
            fail(s, SIPD_F_SDP, "the answer names %s, which we do not connect to", theirs.addr);
            return s->fail;
        }
        if (theirs.port == PL_SDP_DISCARD_PORT) {
            fail(s, SIPD_F_SDP, "the answer is passive but names port 9 (no port to connect to)");
            return s->fail;
        }
        if ((s->fd = sipd_connect(theirs.addr, theirs.port, connect_ms, sipd.media_addr, err, sizeof(err))) < 0) {
            fail(s, SIPD_F_CONNECT, "%s", err);
            return s->fail;
        }
        pl_sdp_token_line(first, sizeof(first), theirs.token);
    } else {
        s->fd = sipd_accept_token(lfd, connect_ms, mine.token, s->call.call_id, peer, sizeof(peer));
        close(lfd);
        if (s->fd < 0) {
            fail(s, SIPD_F_CONNECT, "the callee (active) did not connect to us with our token");
            return s->fail;
        }
    }
    pl_smtpc_init(&s->smtp, s->fd, &to);
    if (pl_smtpc_open(&s->smtp, first[0] ? first : NULL, sipd.hostname) != 0) {
        fail(s, SIPD_F_CONNECT, "SMTP over the call: %s", s->smtp.err);
        return s->fail;
    }
    s->ms_connected = sipd_ms_since(&t0);
    return SIPD_OK;
}

void sipd_session_close(struct sipd_session *s)
{
    if (s->fd >= 0) {
        if (s->fail == SIPD_OK && !s->smtp.broken)
            pl_smtpc_quit(&s->smtp);
        close(s->fd);
        s->fd = -1;
    }
    if (s->call.leg)
        pl_sip_hangup(sipd.ua, &s->call);
    else
        free(s->call.answer_sdp);
    s->call.answer_sdp = NULL;
}
