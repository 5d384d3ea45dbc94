/* sip_ua_leg.c -- what the SIP thread does with nua's events: the
 * registration (with digest auth), outgoing calls (INVITE, timeout and
 * CANCEL, BYE) and incoming ones (who may call us, on_invite, BYE). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sip_ua_int.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/su_tagarg.h>

#include "log.h"

#define ANSWER_MAX 8192
#define CANCEL_GRACE_MS 2000
#define SIP_REG_RETRY_MS 30000

static const char *cid(const struct sip_leg *leg)
{
    return leg && leg->call_id[0] ? leg->call_id : "-";
}

void sip_leg_free(struct sip_leg *leg)
{
    if (leg->timer)
        su_timer_destroy(leg->timer);
    free(leg->to);
    free(leg->offer);
    free(leg->answer);
    free(leg);
}

static void leg_unlink(struct pl_sip_ua *ua, struct sip_leg *leg)
{
    for (struct sip_leg **p = &ua->legs; *p; p = &(*p)->next)
        if (*p == leg) {
            *p = leg->next;
            return;
        }
}

/* Free the leg once nua is done with it and nobody else holds it. */
static void leg_maybe_free(struct pl_sip_ua *ua, struct sip_leg *leg)
{
    if (!leg->terminated || !leg->released)
        return;
    leg_unlink(ua, leg);
    sip_leg_free(leg);
}

/* The waiter of a hangup_incoming: done, or freed if it gave up. */
static void in_waiter_finish(struct pl_sip_ua *ua, struct sip_waiter **slot, int result)
{
    pthread_mutex_lock(&ua->mu);
    struct sip_waiter *w = *slot;
    *slot = NULL;
    if (w && w->result == -2) {
        pthread_cond_destroy(&w->cv);
        free(w);
    } else if (w) {
        w->result = result;
        w->done = 1;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&ua->mu);
}

static void leg_call_end(struct pl_sip_ua *ua, struct sip_leg *leg, int by_peer)
{
    if (leg->ended || !leg->up)
        return;
    leg->ended = 1;
    msg_info("sip: Call-ID %s: call ended by %s", cid(leg), by_peer ? "the peer" : "us");
    if (ua->cb.on_call_end)
        ua->cb.on_call_end(ua->ctx, leg->call_id, by_peer);
}

static void bye(struct sip_leg *leg)
{
    if (leg->bye_sent || !leg->nh)
        return;
    leg->bye_sent = 1;
    clock_gettime(CLOCK_MONOTONIC, &leg->t_bye);
    nua_bye(leg->nh, TAG_END());
}

/* ---- digest authentication --------------------------------------------- */

/* Answer a 401/407 with our credentials; 0 when a retry is under way. */
static int authenticate(struct pl_sip_ua *ua, nua_handle_t *nh, sip_t const *sip, int *tries,
                        const char *what)
{
    if (!ua->auth_user || !ua->auth_password || !sip)
        return -1;
    msg_auth_t const *au = sip->sip_www_authenticate ? sip->sip_www_authenticate
                                                     : sip->sip_proxy_authenticate;
    if (!au || !au->au_scheme)
        return -1;
    /* a second challenge means the password was refused, unless the
     * server only says our nonce went stale */
    const char *stale = msg_params_find(au->au_params, "stale=");
    if (*tries >= 1 && !(stale && su_casematch(stale, "true") && *tries < 3))
        return -1;
    ++*tries;
    const char *realm = msg_params_find(au->au_params, "realm=");
    if (!realm)
        return -1;
    char cred[1024];
    snprintf(cred, sizeof cred, "%s:%s:%s:%s", au->au_scheme, realm, ua->auth_user,
             ua->auth_password);
    msg_info("sip: %s: digest authentication as %s (realm %s)", what, ua->auth_user, realm);
    nua_authenticate(nh, NUTAG_AUTH(cred), TAG_END());
    return 0;
}

/* ---- registration ------------------------------------------------------- */

void sip_ua_register(struct pl_sip_ua *ua)
{
    char aor[512], exp[16];
    snprintf(aor, sizeof aor, "<sip:%s@%s>", ua->number, ua->domain);
    snprintf(exp, sizeof exp, "%u", ua->expires_s);
    ua->reg_nh = nua_handle(ua->nua, NULL, SIPTAG_TO_STR(aor), SIPTAG_FROM_STR(aor), TAG_END());
    nua_register(ua->reg_nh, NUTAG_M_USERNAME(ua->number), SIPTAG_EXPIRES_STR(exp),
                 NUTAG_OUTBOUND("no-options-keepalive no-validate no-natify"), TAG_END());
}

static void reg_retry(struct pl_sip_ua *magic, su_timer_t *t, void *arg)
{
    struct pl_sip_ua *ua = arg;
    (void)magic;
    (void)t;
    if (!ua->reg_nh && !ua->unregistering && !ua->shutting_down) {
        msg_info("sip: registering %s@%s again", ua->number, ua->domain);
        sip_ua_register(ua);
    }
}

static void reg_reply(struct pl_sip_ua *ua, int status, const char *phrase, sip_t const *sip)
{
    if (status < 200)
        return;
    if ((status == 401 || status == 407) &&
        authenticate(ua, ua->reg_nh, sip, &ua->reg_auth_tries, "REGISTER") == 0)
        return;
    if (status < 300)
        ua->reg_auth_tries = 0;
    pthread_mutex_lock(&ua->mu);
    int was = ua->reg_ok;
    ua->reg_status = status;
    ua->reg_ok = status >= 200 && status < 300;
    pthread_cond_broadcast(&ua->cv);
    pthread_mutex_unlock(&ua->mu);
    if (status < 300) {
        if (!was)
            msg_info("sip: registered %s@%s at %s", ua->number, ua->domain, ua->proxy);
    } else {
        msg_warn("sip: registration of %s@%s at %s failed: %d %s (trying again in %d s)",
                 ua->number, ua->domain, ua->proxy, status, phrase, SIP_REG_RETRY_MS / 1000);
        /* nua keeps a failed (e.g. unanswered 401) handle alive, which
         * would hold up its shutdown: drop it and start afresh later */
        nua_handle_destroy(ua->reg_nh);
        ua->reg_nh = NULL;
        ua->reg_auth_tries = 0;
        if (!ua->reg_timer)
            ua->reg_timer = su_timer_create(su_root_task(ua->root), SIP_REG_RETRY_MS);
        if (ua->reg_timer)
            su_timer_set(ua->reg_timer, reg_retry, ua);
    }
}

/* ---- outgoing calls ----------------------------------------------------- */

static void new_call_id(char *buf, size_t len)
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)((t.tv_nsec >> (i % 8)) ^ (uintptr_t)buf >> i);
    }
    size_t o = 0;
    for (size_t i = 0; i < sizeof r && o + 3 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%02x", r[i]);
    snprintf(buf + o, len - o, "@postlink");
}

/* The result of an outgoing INVITE is known: tell the waiting thread. */
static void out_finish(struct pl_sip_ua *ua, struct sip_leg *leg, int status, const char *reason,
                       sip_t const *sip)
{
    leg->final = 1;
    if (leg->timer) {
        su_timer_destroy(leg->timer);
        leg->timer = NULL;
    }
    long ms = sip_ms_since(&leg->t0);
    pthread_mutex_lock(&ua->mu);
    struct pl_sip_call *res = leg->res;
    if (res) {
        res->status = status;
        snprintf(res->reason, sizeof res->reason, "%s", reason ? reason : "");
        res->ms_final = ms;
        snprintf(res->call_id, sizeof res->call_id, "%s", leg->call_id);
        if (status == 200) {
            res->leg = leg;
            if (sip && sip->sip_payload && sip->sip_payload->pl_data) {
                res->answer_sdp = malloc(sip->sip_payload->pl_len + 1);
                if (res->answer_sdp) {
                    memcpy(res->answer_sdp, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
                    res->answer_sdp[sip->sip_payload->pl_len] = '\0';
                }
            }
        }
        sip_waiter_done(ua, &leg->waiter, status);
        if (status != 200)
            leg->res = NULL;
    }
    pthread_mutex_unlock(&ua->mu);
    if (status == 200 && leg->up)
        msg_info("sip: Call-ID %s: %s answered 200 in %ld ms", cid(leg), leg->to, ms);
    else
        msg_info("sip: Call-ID %s: call to %s failed: %d %s (%ld ms)", cid(leg), leg->to,
                 status, reason ? reason : "", ms);
    if (!res) {                     /* nobody waits (any more): end it here */
        leg->released = 1;
        if (status == 200)
            bye(leg);
    } else if (status != 200) {
        leg->released = 1;
    }
    leg_maybe_free(ua, leg);
}

static void invite_timer(struct pl_sip_ua *magic, su_timer_t *t, void *arg)
{
    struct sip_leg *leg = arg;
    (void)magic;
    (void)t;
    if (leg->final)
        return;
    if (!leg->cancelled) {
        leg->cancelled = 1;
        msg_info("sip: Call-ID %s: no answer from %s within %u ms: CANCEL", cid(leg), leg->to,
                 leg->ua->invite_timeout_ms);
        nua_cancel(leg->nh, TAG_END());
        su_timer_set_interval(leg->timer, invite_timer, leg, CANCEL_GRACE_MS);
        return;
    }
    char r[96];
    snprintf(r, sizeof r, "timeout (no answer within %u ms)", leg->ua->invite_timeout_ms);
    out_finish(leg->ua, leg, 0, r, NULL);
}

void sip_leg_start_call(struct pl_sip_ua *ua, struct sip_leg *leg)
{
    new_call_id(leg->call_id, sizeof leg->call_id);
    leg->next = ua->legs;
    ua->legs = leg;
    clock_gettime(CLOCK_MONOTONIC, &leg->t0);
    if (ua->shutting_down || ua->unregistering) {
        leg->terminated = 1;
        out_finish(ua, leg, 0, "the SIP user agent is stopping", NULL);
        return;
    }
    leg->nh = nua_handle(ua->nua, leg, SIPTAG_TO_STR(leg->to), TAG_END());
    leg->timer = su_timer_create(su_root_task(ua->root), ua->invite_timeout_ms);
    if (!leg->nh || !leg->timer) {
        if (leg->nh)
            nua_handle_destroy(leg->nh);
        leg->nh = NULL;
        leg->terminated = 1;
        out_finish(ua, leg, 0, "out of memory", NULL);
        return;
    }
    su_timer_set(leg->timer, invite_timer, leg);
    msg_info("sip: Call-ID %s: INVITE %s via %s", cid(leg), leg->to, ua->proxy);
    nua_invite(leg->nh, SIPTAG_CALL_ID_STR(leg->call_id),
               SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(leg->offer),
               TAG_END());
}

static void out_reply(struct pl_sip_ua *ua, struct sip_leg *leg, int status, const char *phrase,
                      sip_t const *sip)
{
    if (sip && sip->sip_call_id && strcmp(sip->sip_call_id->i_id, leg->call_id) != 0)
        snprintf(leg->call_id, sizeof leg->call_id, "%s", sip->sip_call_id->i_id);
    if (leg->final) {
        if (status == 200 && !leg->up) {    /* a late 200 after our result */
            leg->up = 1;
            bye(leg);
        }
        return;
    }
    if (status < 200) {
        if (status >= 180) {
            pthread_mutex_lock(&ua->mu);
            if (leg->res && leg->res->ms_180 < 0) {
                leg->res->ms_180 = sip_ms_since(&leg->t0);
                leg->res->ringing = status == 180 || leg->res->ringing;
            }
            pthread_mutex_unlock(&ua->mu);
        }
        return;
    }
    if (status == 401 || status == 407) {
        if (authenticate(ua, leg->nh, sip, &leg->auth_tries, leg->call_id) == 0)
            return;
        /* refused credentials: nua would wait for more, so end it here */
        out_finish(ua, leg, status, phrase, sip);
        leg->terminated = 1;
        nua_handle_bind(leg->nh, NULL);
        nua_handle_destroy(leg->nh);
        leg->nh = NULL;
        leg_maybe_free(ua, leg);
        return;
    }
    if (leg->cancelled) {
        char r[96];
        snprintf(r, sizeof r, "timeout (no answer within %u ms)", ua->invite_timeout_ms);
        if (status == 200)
            leg->up = 1;
        out_finish(ua, leg, 0, r, NULL);
        if (status == 200)
            bye(leg);
        return;
    }
    /* sofia's own answers to transport trouble (no reply at all, could
     * not connect) carry no To tag: those are local errors, status 0 */
    int local = !sip || !sip->sip_to || !sip->sip_to->a_tag || status >= 900;
    if (local && status >= 300) {
        char r[128];
        snprintf(r, sizeof r, "local: %d %s", status, phrase);
        out_finish(ua, leg, 0, r, NULL);
        return;
    }
    if (status >= 200 && status < 300) {
        leg->up = 1;
        out_finish(ua, leg, 200, phrase, sip);
        return;
    }
    out_finish(ua, leg, status, phrase, sip);
}

void sip_leg_hangup(struct pl_sip_ua *ua, struct sip_leg *leg)
{
    leg->released = 1;
    if (leg->terminated || !leg->nh || leg->ended) {
        pthread_mutex_lock(&ua->mu);
        if (leg->res) {
            leg->res->bye_status = -1;
            leg->res->ms_bye = -1;
        }
        sip_waiter_done(ua, &leg->waiter, -1);
        leg->res = NULL;
        pthread_mutex_unlock(&ua->mu);
        leg_maybe_free(ua, leg);
        return;
    }
    msg_info("sip: Call-ID %s: BYE", cid(leg));
    bye(leg);
}

static void bye_reply(struct pl_sip_ua *ua, struct sip_leg *leg, int status, const char *phrase)
{
    if (status < 200)
        return;
    long ms = sip_ms_since(&leg->t_bye);
    msg_info("sip: Call-ID %s: BYE answered %d %s in %ld ms", cid(leg), status, phrase, ms);
    if (leg->kind == LEG_OUT) {
        pthread_mutex_lock(&ua->mu);
        if (leg->res) {
            leg->res->bye_status = status;
            leg->res->ms_bye = ms;
        }
        sip_waiter_done(ua, &leg->waiter, status);
        leg->res = NULL;
        pthread_mutex_unlock(&ua->mu);
    } else {
        in_waiter_finish(ua, &leg->waiter, status);
    }
    leg_call_end(ua, leg, 0);
}

/* ---- incoming calls ----------------------------------------------------- */

static int same_ip(const struct sockaddr *a, const struct sockaddr_storage *b, int check_port)
{
    if (a->sa_family == AF_INET && b->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_addr.s_addr == y->sin_addr.s_addr && (!check_port || x->sin_port == y->sin_port);
    }
    if (a->sa_family == AF_INET6 && b->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0 &&
               (!check_port || x->sin6_port == y->sin6_port);
    }
    if (a->sa_family == AF_INET6 && b->ss_family == AF_INET) {  /* v4-mapped */
        const struct sockaddr_in6 *x = (const void *)a;
        const struct sockaddr_in *y = (const void *)b;
        return IN6_IS_ADDR_V4MAPPED(&x->sin6_addr) &&
               memcmp(x->sin6_addr.s6_addr + 12, &y->sin_addr, 4) == 0 &&
               (!check_port || x->sin6_port == y->sin_port);
    }
    return 0;
}

/* Where the INVITE came from: "ADDR:PORT" in src; 1 if that is the SIP
 * server (any of its addresses; over UDP also its port, since Kamailio
 * sends from its listening socket; over TCP it may connect from any). */
static int from_proxy(struct pl_sip_ua *ua, nua_t *nua, char *src, size_t len, const char **tp)
{
    msg_t *m = nua_current_request(nua);
    su_addrinfo_t *ai = m ? msg_addrinfo(m) : NULL;
    snprintf(src, len, "?");
    *tp = "?";
    if (!ai || !ai->ai_addr)
        return 0;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ai->ai_addr->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)ai->ai_addr;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        port = ntohs(s->sin_port);
    } else if (ai->ai_addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)ai->ai_addr;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        port = ntohs(s->sin6_port);
    }
    snprintf(src, len, "%s:%u", host, port);
    int udp = ai->ai_protocol == IPPROTO_UDP || ai->ai_socktype == SOCK_DGRAM;
    *tp = udp ? "udp" : ai->ai_protocol == IPPROTO_TCP ? "tcp" : "other";
    for (int i = 0; i < ua->n_proxy_addr; i++)
        if (same_ip(ai->ai_addr, &ua->proxy_addr[i], udp))
            return 1;
    return 0;
}

static void respond(struct sip_leg *leg, int status, const char *phrase)
{
    nua_respond(leg->nh, status, phrase ? phrase : sip_status_phrase(status), TAG_END());
}

static void incoming_invite(struct pl_sip_ua *ua, nua_t *nua, nua_handle_t *nh, sip_t const *sip)
{
    struct sip_leg *leg = calloc(1, sizeof *leg);
    if (!leg) {
        nua_respond(nh, 500, "Server Internal Error", TAG_END());
        nua_handle_destroy(nh);
        return;
    }
    leg->ua = ua;
    leg->kind = LEG_IN;
    leg->nh = nh;
    leg->released = 1;
    clock_gettime(CLOCK_MONOTONIC, &leg->t0);
    nua_handle_bind(nh, leg);
    leg->next = ua->legs;
    ua->legs = leg;
    if (sip && sip->sip_call_id)
        snprintf(leg->call_id, sizeof leg->call_id, "%s", sip->sip_call_id->i_id);

    char src[INET6_ADDRSTRLEN + 8], from[512] = "";
    char *fs;
    const char *tp;
    const char *user = sip && sip->sip_request && sip->sip_request->rq_url->url_user
                           ? sip->sip_request->rq_url->url_user : "";
    if (sip && sip->sip_from &&
        (fs = sip_header_as_string(ua->home, (sip_header_t const *)sip->sip_from))) {
        snprintf(from, sizeof from, "%s", fs);
        su_free(ua->home, fs);
    }
    if (!from_proxy(ua, nua, src, sizeof src, &tp)) {
        msg_warn("sip: Call-ID %s: INVITE for %s from %s (%s), not from the SIP server: 403",
                 cid(leg), user, src, tp);
        respond(leg, 403, "Forbidden");
        return;
    }
    if (!ua->number || strcmp(user, ua->number) != 0) {
        msg_warn("sip: Call-ID %s: INVITE for '%s', not our number: 404", cid(leg), user);
        respond(leg, 404, "Not Found");
        return;
    }
    if (ua->n_in >= ua->max_incoming) {
        if (ua->n_refused_busy++ == 0)
            msg_warn("sip: Call-ID %s: %u incoming calls already (max_incoming): refusing "
                     "with 486 until one ends", cid(leg), ua->n_in);
        respond(leg, 486, "Busy Here");
        return;
    }
    if (ua->n_refused_busy) {
        msg_info("sip: accepting calls again after refusing %u (max_incoming)", ua->n_refused_busy);
        ua->n_refused_busy = 0;
    }
    ua->n_in++;
    leg->counted = 1;
    msg_info("sip: Call-ID %s: INVITE for %s from %s via %s (%s)", cid(leg), user, from, src, tp);
    respond(leg, 180, "Ringing");

    struct pl_sip_incoming in = {
        .call_id = leg->call_id, .from = from, .ruri_user = user, .src = src, .transport = tp,
    };
    char *offer = NULL;
    if (sip && sip->sip_payload && sip->sip_payload->pl_data) {
        offer = malloc(sip->sip_payload->pl_len + 1);
        if (offer) {
            memcpy(offer, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
            offer[sip->sip_payload->pl_len] = '\0';
        }
    }
    in.offer_sdp = offer ? offer : "";
    char *answer = calloc(1, ANSWER_MAX);
    int st = 480;
    if (answer && ua->cb.on_invite)
        st = ua->cb.on_invite(ua->ctx, &in, answer, ANSWER_MAX);
    free(offer);
    if (st == 200 && answer && answer[0]) {
        leg->answer = answer;
        leg->up = 1;
        msg_info("sip: Call-ID %s: answering 200", cid(leg));
        nua_respond(nh, 200, "OK", SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                    SIPTAG_PAYLOAD_STR(leg->answer), TAG_END());
        return;
    }
    free(answer);
    if (st < 300 || st > 699)
        st = 500;
    msg_info("sip: Call-ID %s: answering %d", cid(leg), st);
    respond(leg, st, NULL);
}

/* A re-INVITE in an established incoming call: the same answer again. */
static void reinvite(struct sip_leg *leg)
{
    if (leg->kind == LEG_IN && leg->up && leg->answer)
        nua_respond(leg->nh, 200, "OK", SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                    SIPTAG_PAYLOAD_STR(leg->answer), TAG_END());
    else
        nua_respond(leg->nh, 488, "Not Acceptable Here", TAG_END());
}

void sip_leg_hangup_incoming(struct pl_sip_ua *ua, const char *call_id, struct sip_waiter *w)
{
    struct sip_leg *leg;
    for (leg = ua->legs; leg; leg = leg->next)
        if (leg->kind == LEG_IN && leg->up && !leg->ended && !leg->bye_sent && leg->nh &&
            strcmp(leg->call_id, call_id) == 0)
            break;
    if (!leg) {
        struct sip_waiter *slot = w;
        in_waiter_finish(ua, &slot, -1);
        return;
    }
    msg_info("sip: Call-ID %s: BYE (callee side)", cid(leg));
    leg->waiter = w;
    bye(leg);
}

/* nua says the dialog is over: on_call_end, destroy the handle. */
static void leg_terminated(struct pl_sip_ua *ua, struct sip_leg *leg)
{
    if (leg->terminated)
        return;
    if (leg->kind == LEG_OUT && !leg->final)
        out_finish(ua, leg, 0, "call terminated before a final answer", NULL);
    leg_call_end(ua, leg, !leg->bye_sent);
    if (leg->kind == LEG_IN) {
        if (leg->counted)
            ua->n_in--;
        leg->counted = 0;
        in_waiter_finish(ua, &leg->waiter, leg->bye_sent ? 0 : -1);
    } else {
        pthread_mutex_lock(&ua->mu);
        if (leg->res && leg->bye_sent && leg->res->bye_status == 0)
            sip_waiter_done(ua, &leg->waiter, 0);   /* BYE never answered */
        pthread_mutex_unlock(&ua->mu);
    }
    leg->terminated = 1;
    if (leg->nh) {
        nua_handle_bind(leg->nh, NULL);
        nua_handle_destroy(leg->nh);
        leg->nh = NULL;
    }
    leg_maybe_free(ua, leg);
}

/* Stop: every thread still waiting gets its answer; all legs go. */
void sip_leg_abort_all(struct pl_sip_ua *ua)
{
    while (ua->legs) {
        struct sip_leg *leg = ua->legs;
        ua->legs = leg->next;
        pthread_mutex_lock(&ua->mu);
        if (leg->res && !leg->final) {
            leg->res->status = 0;
            snprintf(leg->res->reason, sizeof leg->res->reason, "the SIP user agent stopped");
        }
        sip_waiter_done(ua, &leg->waiter, 0);
        pthread_mutex_unlock(&ua->mu);
        if (leg->kind == LEG_IN)
            in_waiter_finish(ua, &leg->waiter, -1);
        sip_leg_free(leg);
    }
}

/* ---- the nua callback --------------------------------------------------- */

void sip_ua_event(nua_event_t ev, int status, char const *phrase, nua_t *nua,
                  struct pl_sip_ua *ua, nua_handle_t *nh, struct sip_leg *leg,
                  sip_t const *sip, tagi_t tags[])
{
    switch (ev) {
    case nua_r_register:
        reg_reply(ua, status, phrase, sip);
        break;
    case nua_r_unregister:
        if (status >= 200) {
            msg_info("sip: unregistered %s: %d %s", ua->number, status, phrase);
            ua->reg_ok = 0;
            if (!ua->shutting_down) {
                ua->shutting_down = 1;
                nua_shutdown(ua->nua);
            }
        }
        break;
    case nua_r_shutdown:
        if (status >= 200) {
            ua->shutting_down = 2;
            su_root_break(ua->root);
        }
        break;
    case nua_i_invite:
        if (leg)
            reinvite(leg);
        else
            incoming_invite(ua, nua, nh, sip);
        break;
    case nua_r_invite:
        if (leg && leg->kind == LEG_OUT)
            out_reply(ua, leg, status, phrase, sip);
        break;
    case nua_r_bye:
        if (leg)
            bye_reply(ua, leg, status, phrase);
        break;
    case nua_i_bye:
        if (leg)
            msg_info("sip: Call-ID %s: BYE from the peer", cid(leg));
        break;
    case nua_i_cancel:
        if (leg)
            msg_info("sip: Call-ID %s: CANCEL from the peer", cid(leg));
        break;
    case nua_i_state: {
        int cs = -1;
        tl_gets(tags, NUTAG_CALLSTATE_REF(cs), TAG_END());
        if (leg && cs == nua_callstate_terminated)
            leg_terminated(ua, leg);
        break;
    }
    case nua_i_terminated:
        if (leg)
            leg_terminated(ua, leg);
        break;
    case nua_r_cancel:
    case nua_i_ack:
    case nua_i_active:
    case nua_i_outbound:
        break;
    default:
        if (status >= 300)
            msg_info("sip: Call-ID %s: %s: %d %s", cid(leg), nua_event_name(ev), status, phrase);
        else if (ev == nua_i_options && !leg && nh && nh != ua->reg_nh)
            nua_handle_destroy(nh);     /* answered by nua; we keep no state */
        break;
    }
}
