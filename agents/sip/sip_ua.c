/* sip_ua.c -- the SIP user agent's thread and its thread-safe API
 * (sip_ua.h): one thread owns the sofia-sip root and nua; other threads
 * queue commands under ua->mu, wake it through a pipe registered with the
 * su_root, and wait on their own condition variable. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sip_ua_int.h"

#include <sofia-sip/su_log.h>
#include <sofia-sip/url.h>

#include "log.h"

long sip_ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Under ua->mu: tell the thread waiting in *wp that it is done. */
void sip_waiter_done(struct pl_sip_ua *ua, struct sip_waiter **wp, int result)
{
    (void)ua;
    if (*wp) {
        (*wp)->result = result;
        (*wp)->done = 1;
        pthread_cond_signal(&(*wp)->cv);
        *wp = NULL;
    }
}

static int sofia_verbose;

static void sofia_logger(void *stream, char const *fmt, va_list ap)
{
    (void)stream;
    if (!sofia_verbose)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n > 0)
        msg_debug("sofia: %s", line);
}

/* Addresses of the SIP server: an INVITE from anywhere else is refused. */
static int resolve_proxy(struct pl_sip_ua *ua, char *err, size_t errlen)
{
    url_t *u = url_make(ua->home, ua->proxy);
    if (!u || !u->url_host) {
        snprintf(err, errlen, "bad SIP server URI '%s'", ua->proxy);
        return -1;
    }
    char host[256];
    snprintf(host, sizeof host, "%s", u->url_host);
    if (host[0] == '[') {               /* [v6] */
        memmove(host, host + 1, strlen(host));
        char *e = strchr(host, ']');
        if (e)
            *e = '\0';
    }
    const char *port = u->url_port && *u->url_port ? u->url_port : "5060";
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "SIP server '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai && ua->n_proxy_addr < SIP_MAX_PROXY_ADDRS; ai = ai->ai_next)
        memcpy(&ua->proxy_addr[ua->n_proxy_addr++], ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void run_queue(struct pl_sip_ua *ua)
{
    for (;;) {
        pthread_mutex_lock(&ua->mu);
        struct sip_cmd *c = ua->q_head;
        if (c) {
            ua->q_head = c->next;
            if (!ua->q_head)
                ua->q_tail = NULL;
        }
        pthread_mutex_unlock(&ua->mu);
        if (!c)
            return;
        switch (c->kind) {
        case CMD_CALL:
            sip_leg_start_call(ua, c->leg);
            break;
        case CMD_HANGUP:
            sip_leg_hangup(ua, c->leg);
            break;
        case CMD_HANGUP_IN:
            sip_leg_hangup_incoming(ua, c->call_id, c->waiter);
            break;
        case CMD_STOP:
            sip_ua_shutdown(ua);
            break;
        }
        free(c);
    }
}

static int on_wake(struct pl_sip_ua *ua, su_wait_t *w, struct pl_sip_ua *arg)
{
    (void)w;
    (void)arg;
    char buf[64];
    while (read(ua->wake[0], buf, sizeof buf) > 0)
        ;
    run_queue(ua);
    return 0;
}

/* From any thread but the SIP one: queue c and wake the SIP thread. */
static void enqueue(struct pl_sip_ua *ua, struct sip_cmd *c)
{
    c->next = NULL;
    pthread_mutex_lock(&ua->mu);
    if (ua->q_tail)
        ua->q_tail->next = c;
    else
        ua->q_head = c;
    ua->q_tail = c;
    pthread_mutex_unlock(&ua->mu);
    ssize_t n;
    do
        n = write(ua->wake[1], "", 1);
    while (n < 0 && errno == EINTR);
}

static void stop_timeout(struct pl_sip_ua *magic, su_timer_t *t, void *arg)
{
    struct pl_sip_ua *ua = arg;
    (void)magic;
    (void)t;
    if (!ua->shutting_down) {
        msg_warn("sip: no answer to the unregistration: shutting down anyway");
        ua->shutting_down = 1;
        nua_shutdown(ua->nua);
        su_timer_set_interval(ua->stop_timer, stop_timeout, ua, 4000);
    } else {
        msg_warn("sip: sofia-sip shutdown did not finish in time");
        su_root_break(ua->root);
    }
}

/* In the SIP thread: unregister (bounded), then nua_shutdown, whose
 * completion (nua_r_shutdown) breaks the loop. */
void sip_ua_shutdown(struct pl_sip_ua *ua)
{
    if (ua->unregistering || ua->shutting_down)
        return;
    ua->stop_timer = su_timer_create(su_root_task(ua->root), 2000);
    if (ua->reg_nh && ua->reg_ok) {
        ua->unregistering = 1;
        nua_unregister(ua->reg_nh, TAG_END());
        su_timer_set_interval(ua->stop_timer, stop_timeout, ua, 2000);
    } else {
        ua->shutting_down = 1;
        nua_shutdown(ua->nua);
        su_timer_set_interval(ua->stop_timer, stop_timeout, ua, 4000);
    }
}

static void start_result(struct pl_sip_ua *ua, int ok, const char *fmt, ...) PL_PRINTF(3, 4);
static void start_result(struct pl_sip_ua *ua, int ok, const char *fmt, ...)
{
    pthread_mutex_lock(&ua->mu);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ua->start_err, sizeof ua->start_err, fmt, ap);
        va_end(ap);
    }
    ua->started = ok ? 1 : -1;
    pthread_cond_broadcast(&ua->cv);
    pthread_mutex_unlock(&ua->mu);
}

static void *sip_thread(void *arg)
{
    struct pl_sip_ua *ua = arg;
    su_wait_t w[1];
    int reg_index = -1;
    char from[512];

    su_init();
    su_home_init(ua->home);
    su_log_redirect(NULL, sofia_logger, NULL);
    su_log_set_level(NULL, (unsigned)ua->verbose);
    ua->root = su_root_create(ua);
    if (!ua->root) {
        start_result(ua, 0, "cannot create the sofia-sip root");
        goto out;
    }
    char err[256] = "";
    if (resolve_proxy(ua, err, sizeof err) < 0) {
        start_result(ua, 0, "%s", err);
        goto out;
    }
    if (su_wait_create(w, ua->wake[0], SU_WAIT_IN) < 0 ||
        (reg_index = su_root_register(ua->root, w, on_wake, NULL, 0)) < 0) {
        start_result(ua, 0, "cannot watch the wake-up pipe");
        goto out;
    }
    snprintf(from, sizeof from, "<sip:%s@%s>", ua->number ? ua->number : "postlink", ua->domain);
    ua->nua = nua_create(ua->root, sip_ua_event, ua,
                         NUTAG_URL(URL_STRING_MAKE(ua->bind)),
                         NUTAG_PROXY(URL_STRING_MAKE(ua->proxy)),
                         NUTAG_REGISTRAR(URL_STRING_MAKE(ua->proxy)),
                         SIPTAG_FROM_STR(from),
                         NUTAG_MEDIA_ENABLE(0),
                         NUTAG_AUTOANSWER(0), NUTAG_AUTOALERT(0), NUTAG_AUTOACK(1),
                         NUTAG_ENABLEMESSAGE(0),
                         NUTAG_SESSION_TIMER(0),
                         NUTAG_OUTBOUND("no-options-keepalive no-validate no-natify"),
                         NUTAG_KEEPALIVE(0),
                         TAG_IF(ua->number, NUTAG_M_USERNAME(ua->number)),
                         SIPTAG_USER_AGENT_STR("postlink-sipd/" PACKAGE_VERSION),
                         TAG_END());
    if (!ua->nua) {
        start_result(ua, 0, "cannot start the SIP stack on %s (address in use or bad URI?)", ua->bind);
        goto out;
    }
    if (ua->number)
        sip_ua_register(ua);
    start_result(ua, 1, NULL);
    msg_info("sip: user agent on %s, SIP server %s%s%s", ua->bind, ua->proxy,
             ua->number ? ", registering " : "", ua->number ? ua->number : "");
    su_root_run(ua->root);
    if (ua->shutting_down != 2)
        msg_warn("sip: leaving without a complete sofia-sip shutdown");
    /* whoever still waits gets an answer */
    sip_leg_abort_all(ua);
    run_queue(ua);
    if (ua->stop_timer)
        su_timer_destroy(ua->stop_timer);
    if (ua->reg_timer)
        su_timer_destroy(ua->reg_timer);
    if (ua->shutting_down == 2)
        nua_destroy(ua->nua);
    ua->nua = NULL;
out:
    if (reg_index >= 0)
        su_root_deregister(ua->root, reg_index);
    if (ua->root)
        su_root_destroy(ua->root);
    su_home_deinit(ua->home);
    su_deinit();
    return NULL;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void ua_free(struct pl_sip_ua *ua)
{
    if (ua->wake[0] >= 0)
        close(ua->wake[0]);
    if (ua->wake[1] >= 0)
        close(ua->wake[1]);
    free(ua->proxy); free(ua->bind); free(ua->domain); free(ua->number);
    free(ua->auth_user); free(ua->auth_password);
    pthread_mutex_destroy(&ua->mu);
    pthread_cond_destroy(&ua->cv);
    free(ua);
}

struct pl_sip_ua *pl_sip_ua_start(const struct pl_sip_ua_conf *conf,
                                  const struct pl_sip_ua_callbacks *cb, void *ctx,
                                  char *err, size_t errlen)
{
    if (!conf->proxy || !conf->bind || !conf->domain) {
        snprintf(err, errlen, "SIP user agent: proxy, bind and domain are required");
        return NULL;
    }
    struct pl_sip_ua *ua = calloc(1, sizeof *ua);
    if (!ua) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ua->wake[0] = ua->wake[1] = -1;
    pthread_mutex_init(&ua->mu, NULL);
    pthread_cond_init(&ua->cv, NULL);
    ua->proxy = strdup(conf->proxy);
    ua->bind = strdup(conf->bind);
    ua->domain = strdup(conf->domain);
    ua->number = conf->number && *conf->number ? strdup(conf->number) : NULL;
    ua->auth_user = dup_or_null(conf->auth_user);
    ua->auth_password = dup_or_null(conf->auth_password);
    ua->expires_s = conf->register_expires_s ? conf->register_expires_s : 600;
    ua->invite_timeout_ms = conf->invite_timeout_ms ? conf->invite_timeout_ms : 30000;
    ua->max_incoming = conf->max_incoming ? conf->max_incoming : 16;
    ua->verbose = conf->verbose;
    sofia_verbose = conf->verbose;
    if (cb)
        ua->cb = *cb;
    ua->ctx = ctx;
    if (!ua->proxy || !ua->bind || !ua->domain || pipe(ua->wake) < 0) {
        snprintf(err, errlen, "SIP user agent: %s", strerror(errno ? errno : ENOMEM));
        ua_free(ua);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(ua->wake[i], F_SETFL, O_NONBLOCK);
        fcntl(ua->wake[i], F_SETFD, FD_CLOEXEC);
    }
    if ((errno = pthread_create(&ua->thread, NULL, sip_thread, ua)) != 0) {
        snprintf(err, errlen, "SIP user agent: cannot start its thread: %s", strerror(errno));
        ua_free(ua);
        return NULL;
    }
    pthread_mutex_lock(&ua->mu);
    while (ua->started == 0)
        pthread_cond_wait(&ua->cv, &ua->mu);
    pthread_mutex_unlock(&ua->mu);
    if (ua->started < 0) {
        snprintf(err, errlen, "SIP user agent: %s", ua->start_err);
        pthread_join(ua->thread, NULL);
        ua_free(ua);
        return NULL;
    }
    return ua;
}

static void deadline_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int pl_sip_ua_wait_registered(struct pl_sip_ua *ua, unsigned timeout_ms, int *status)
{
    struct timespec dl;
    deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&ua->mu);
    while (!ua->reg_ok && ua->reg_status == 0 && ua->number)
        if (pthread_cond_timedwait(&ua->cv, &ua->mu, &dl) == ETIMEDOUT)
            break;
    int ok = ua->reg_ok, st = ua->reg_status;
    pthread_mutex_unlock(&ua->mu);
    if (status)
        *status = st;
    return ok ? 0 : -1;
}

void pl_sip_ua_stop(struct pl_sip_ua *ua)
{
    if (!ua)
        return;
    struct sip_cmd *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = CMD_STOP;
        enqueue(ua, c);
    }
    pthread_mutex_lock(&ua->mu);
    ua->stopping = 1;
    pthread_mutex_unlock(&ua->mu);
    pthread_join(ua->thread, NULL);
    ua_free(ua);
}

/* Wait for w->done; on timeout, detach it from *slot (under ua->mu). */
static int wait_done(struct pl_sip_ua *ua, struct sip_waiter *w, struct sip_waiter **slot,
                     unsigned ms)
{
    struct timespec dl;
    deadline_in(&dl, ms);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &ua->mu, &dl) == ETIMEDOUT)
            break;
    if (!w->done && slot && *slot == w)
        *slot = NULL;
    return w->done;
}

static int in_sip_thread(struct pl_sip_ua *ua)
{
    return pthread_equal(pthread_self(), ua->thread);
}

int pl_sip_call(struct pl_sip_ua *ua, const char *number, const char *offer_sdp,
                struct pl_sip_call *out)
{
    memset(out, 0, sizeof *out);
    out->ms_180 = out->ms_final = out->ms_bye = -1;
    if (in_sip_thread(ua)) {
        snprintf(out->reason, sizeof out->reason, "pl_sip_call from the SIP thread");
        return -1;
    }
    struct sip_leg *leg = calloc(1, sizeof *leg);
    struct sip_cmd *c = calloc(1, sizeof *c);
    size_t tl = strlen(number) + strlen(ua->domain) + 8;
    if (leg)
        leg->to = malloc(tl);
    if (leg)
        leg->offer = strdup(offer_sdp ? offer_sdp : "");
    if (!leg || !c || !leg->to || !leg->offer) {
        if (leg)
            sip_leg_free(leg);
        free(c);
        snprintf(out->reason, sizeof out->reason, "out of memory");
        return -1;
    }
    snprintf(leg->to, tl, "sip:%s@%s", number, ua->domain);
    leg->ua = ua;
    leg->kind = LEG_OUT;
    leg->res = out;
    struct sip_waiter w = { .done = 0 };
    pthread_cond_init(&w.cv, NULL);
    leg->waiter = &w;
    c->kind = CMD_CALL;
    c->leg = leg;
    enqueue(ua, c);
    pthread_mutex_lock(&ua->mu);
    /* the SIP thread answers within invite_timeout_ms + its cancel grace */
    if (!wait_done(ua, &w, &leg->waiter, ua->invite_timeout_ms + 10000)) {
        leg->res = NULL;            /* the SIP thread hangs up and frees it */
        out->status = 0;
        snprintf(out->reason, sizeof out->reason, "timeout (the SIP thread did not answer)");
    }
    pthread_mutex_unlock(&ua->mu);
    pthread_cond_destroy(&w.cv);
    return out->status == 200 && out->leg ? 0 : -1;
}

void pl_sip_hangup(struct pl_sip_ua *ua, struct pl_sip_call *call)
{
    struct sip_leg *leg = call->leg;
    free(call->answer_sdp);
    call->answer_sdp = NULL;
    if (!leg || in_sip_thread(ua))
        return;
    call->leg = NULL;
    struct sip_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return;
    struct sip_waiter w = { .done = 0 };
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&ua->mu);
    leg->res = call;
    leg->waiter = &w;
    pthread_mutex_unlock(&ua->mu);
    c->kind = CMD_HANGUP;
    c->leg = leg;
    enqueue(ua, c);
    pthread_mutex_lock(&ua->mu);
    if (!wait_done(ua, &w, &leg->waiter, 6000)) {
        leg->res = NULL;
        call->bye_status = 0;
    }
    pthread_mutex_unlock(&ua->mu);
    pthread_cond_destroy(&w.cv);
}

int pl_sip_hangup_incoming(struct pl_sip_ua *ua, const char *call_id)
{
    if (in_sip_thread(ua)) {
        sip_leg_hangup_incoming(ua, call_id, NULL);
        return 0;
    }
    struct sip_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    struct sip_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        free(c);
        return -1;
    }
    pthread_cond_init(&w->cv, NULL);
    c->kind = CMD_HANGUP_IN;
    snprintf(c->call_id, sizeof c->call_id, "%s", call_id);
    c->waiter = w;
    enqueue(ua, c);
    pthread_mutex_lock(&ua->mu);
    int done = wait_done(ua, w, NULL, 6000), r = done ? w->result : 0;
    /* not done: the SIP thread still holds w; it frees it (result -2) */
    if (!done)
        w->result = -2;
    pthread_mutex_unlock(&ua->mu);
    if (done) {
        pthread_cond_destroy(&w->cv);
        free(w);
    }
    return r;
}
