/* sipd_deliver.c -- what postlink-sipd does with a message Postfix's
 * lmtp(8) client hands it (the FILTER that X-Postlink-Route triggers):
 *   - the route token in X-Postlink-Route names postlink-route's decision:
 *     a number per routed recipient; the header itself is removed;
 *   - per number, one call and one SMTP transaction over it for that
 *     number's recipients; the peer's replies become the LMTP replies, so
 *     Postfix delivers, bounces (5xx, with the peer's text) or defers (4xx)
 *     at once;
 *   - fallback: a call that cannot be made, or a dialogue broken before
 *     the final dot was sent, sends those recipients the normal way
 *     (through the re-injection listener, DSN parameters kept), and so do
 *     recipients with no number.  A fallback is recorded (never SIP again)
 *     before the re-injection, and its queue id after it, before Postfix
 *     is told: a restart after a crash answers from the record instead of
 *     sending again;
 *   - a connection lost after the final dot was sent is deferred, not
 *     fallen back: the peer may have the message. */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "netmatch.h"
#include "siproute.h"
#include "sipd.h"
#include "strutil.h"

enum kind { K_NORMAL, K_SIP, K_FALLBACK, K_DONE };

struct rcpt {
    const char *addr;               /* as Postfix gave it */
    char number[PL_PHONE_MAX], rule[32];
    enum kind kind;
    int recorded;                   /* fallback-pending already in the store */
    char why[320];                  /* the SIP side of a fallback, for the log */
};

struct job {
    const struct pl_lmtp_envelope *env;
    char (*replies)[PL_LMTP_REPLY_MAX];
    char token[PL_RTOKEN_LEN + 1];
    char qid[32];
    struct rcpt *r;
    char *msg;                      /* without X-Postlink-Route */
    size_t msglen;
    struct timespec t0;             /* sip_delivery_budget counts from here */
};

/* Tokens being delivered now: Postfix may retry a delivery it gave up on
 * while the first one still runs; the second must not call again. */
#define BUSY_MAX 256
static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static char busy[BUSY_MAX][PL_RTOKEN_LEN + 1];

static int busy_take(const char *token)
{
    int slot = -1;
    pthread_mutex_lock(&busy_mu);
    for (int i = 0; i < BUSY_MAX; i++) {
        if (strcmp(busy[i], token) == 0) {
            slot = -2;
            break;
        }
        if (slot == -1 && busy[i][0] == '\0')
            slot = i;
    }
    if (slot >= 0)
        memcpy(busy[slot], token, PL_RTOKEN_LEN + 1);
    pthread_mutex_unlock(&busy_mu);
    return slot;            /* -2 busy, -1 no room (then not tracked) */
}

static void busy_put(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&busy_mu);
    busy[slot][0] = '\0';
    pthread_mutex_unlock(&busy_mu);
}

/* A hook for the crash tests: POSTLINK_SIPD_TEST_KILL=<point> makes the
 * process kill itself there (see postlink-sipd(8), TESTING). */
static void test_point(const char *name)
{
    const char *k = getenv("POSTLINK_SIPD_TEST_KILL");
    if (k && strcmp(k, name) == 0) {
        msg_warn("test point %s: SIGKILL", name);
        kill(getpid(), SIGKILL);
    }
}

/* snprintf that may cut: reply texts and log details are bounded on purpose. */
static void sfmt(char *out, size_t len, const char *fmt, ...) PL_PRINTF(3, 4);
static void sfmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}

/* ---- the message -------------------------------------------------------- */

static size_t header_end(const char *m, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (m[i] == '\n' && (m[i + 1] == '\n' || (m[i + 1] == '\r' && i + 2 < len && m[i + 2] == '\n')))
            return i + 1;
    return len;
}

static int is_route_field(const char *line, size_t n)
{
    static const char name[] = "X-Postlink-Route:";
    return n >= sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0;
}

/* Copy the message without X-Postlink-Route, taking the token of the
 * last one (the milter removes any the sender wrote and adds its own). */
static void strip_route(struct job *j)
{
    const char *m = j->env->msg;
    size_t len = j->env->msglen, hend = header_end(m, len), i = 0, o = 0;
    int skipping = 0;
    j->msg = pl_xmalloc(len + 1);
    while (i < len) {
        const char *nl = memchr(m + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (m + i)) + 1 : len - i;
        if (i < hend) {
            int cont = m[i] == ' ' || m[i] == '\t';
            if (!cont)
                skipping = is_route_field(m + i, n);
            if (skipping) {
                if (!cont) {
                    const char *v = m + i + 17;
                    size_t k = 0;
                    while (v < m + i + n && (*v == ' ' || *v == '\t'))
                        v++;
                    while (v + k < m + i + n && isxdigit((unsigned char)v[k]) && k < PL_RTOKEN_LEN)
                        k++;
                    memcpy(j->token, v, k);
                    j->token[k] = '\0';
                }
                i += n;
                continue;
            }
        }
        memcpy(j->msg + o, m + i, n);
        o += n;
        i += n;
    }
    j->msglen = o;
    if (!pl_rtoken_ok(j->token))
        j->token[0] = '\0';
}

/* ---- the store ---------------------------------------------------------- */

static int plan_fn(pl_txn *t, void *ctx)
{
    struct job *j = ctx;
    char *rec = NULL, outcome[64], detail[512];
    size_t pos = 0;
    const char *qid = NULL;
    struct pl_rdecision d;
    int rc;

    for (size_t i = 0; i < j->env->nrcpts; i++) {
        j->r[i].kind = K_NORMAL;
        j->r[i].recorded = 0;
    }
    sfmt(j->qid, sizeof(j->qid), "NOQUEUE");
    if (j->token[0] == '\0')
        return PL_OK;
    if ((rc = pl_rdecide_get(t, j->token, &rec)) == PL_NOTFOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    while (pl_rdecide_next(rec, &pos, &qid, &d))
        for (size_t i = 0; i < j->env->nrcpts; i++)
            if (strcasecmp(j->r[i].addr, d.addr) == 0 && j->r[i].kind == K_NORMAL) {
                j->r[i].kind = K_SIP;
                sfmt(j->r[i].number, sizeof(j->r[i].number), "%s", d.number);
                sfmt(j->r[i].rule, sizeof(j->r[i].rule), "%s", d.rule);
            }
    if (qid)
        sfmt(j->qid, sizeof(j->qid), "%s", qid);
    free(rec);
    /* what an earlier attempt already did */
    for (size_t i = 0; i < j->env->nrcpts; i++) {
        rc = pl_rresult_get(t, j->token, j->r[i].addr, outcome, sizeof(outcome), detail, sizeof(detail));
        if (rc == PL_NOTFOUND)
            continue;
        if (rc != PL_OK)
            return rc;
        if (strcmp(outcome, "fallback-pending") == 0) {
            j->r[i].kind = K_FALLBACK;
            j->r[i].recorded = 1;
            sfmt(j->r[i].why, sizeof(j->r[i].why), "fell back before: %s", detail);
        } else if (strcmp(outcome, "sent") == 0 || strcmp(outcome, "sip") == 0) {
            j->r[i].kind = K_DONE;
            sfmt(j->replies[i], PL_LMTP_REPLY_MAX, "250 2.0.0 already %s %.400s",
                     strcmp(outcome, "sip") == 0 ? "delivered over SIP:" : "sent the normal way:",
                     detail);
        }
    }
    return PL_OK;
}

struct rec_op { struct job *j; const size_t *idx; size_t n; const char *outcome, *detail; };

static int record_fn(pl_txn *t, void *ctx)
{
    struct rec_op *op = ctx;
    int64_t now = (int64_t)time(NULL);
    for (size_t k = 0; k < op->n; k++) {
        struct rcpt *r = &op->j->r[op->idx[k]];
        const char *detail = op->detail ? op->detail : r->why;
        int rc = pl_rresult_put(t, op->j->token, r->addr, op->outcome, detail, now);
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

/* Record outcome for the recipients idx[0..n) (committed, synced). */
static int record(struct job *j, const size_t *idx, size_t n, const char *outcome, const char *detail)
{
    struct rec_op op = {j, idx, n, outcome, detail};
    if (j->token[0] == '\0' || n == 0)
        return PL_OK;
    return pl_store_run(sipd.store, PL_TXN_SYNC, record_fn, &op);
}

/* ---- one number: a call and its SMTP transaction ------------------------ */

static void reply_from(char *out, const struct pl_smtp_reply *r, const char *prefix)
{
    char text[PL_LMTP_REPLY_MAX];
    sfmt(text, sizeof(text), "%.400s", r->text);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    sfmt(out, PL_LMTP_REPLY_MAX, "%d %s %s%s", r->code, r->enh[0] ? r->enh : (r->code / 100 == 2 ? "2.0.0" : r->code / 100 == 4 ? "4.0.0" : "5.0.0"),
             prefix, text);
}

static void fill_rcpts(struct job *j, const size_t *idx, size_t n, struct pl_smtpc_rcpt *out)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        out[k] = (struct pl_smtpc_rcpt){j->r[i].addr, j->env->notify ? j->env->notify[i] : NULL,
                                        j->env->orcpt ? j->env->orcpt[i] : NULL, {0}};
    }
}

static void fill_msg(struct job *j, struct pl_smtpc_msg *m, struct pl_smtpc_rcpt *rc, size_t n)
{
    memset(m, 0, sizeof(*m));
    m->sender = j->env->sender;
    m->ret = j->env->ret;
    m->envid = j->env->envid;
    m->body = j->env->body;
    m->smtputf8 = j->env->smtputf8;
    m->size = j->msglen;
    m->rcpts = rc;
    m->nrcpts = n;
    m->data = j->msg;
    m->len = j->msglen;
}

static void to_fallback(struct job *j, size_t i, const char *why)
{
    j->r[i].kind = K_FALLBACK;
    sfmt(j->r[i].why, sizeof(j->r[i].why), "%s", why);
}

static void over_sip(struct job *j, const char *number, const size_t *idx, size_t n)
{
    struct sipd_session s;
    struct pl_smtpc_rcpt *rc = pl_xcalloc(n, sizeof(*rc));
    struct pl_smtpc_msg m;
    struct pl_smtpc_result res;
    char why[320];
    size_t nfb = 0, ok[n ? n : 1], nok = 0;

    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    long left = (long)cfg->sip_delivery_budget * 1000L - sipd_ms_since(&j->t0);
    struct sipd_watch w;
    if (left < 2000) {
        for (size_t k = 0; k < n; k++) {
            sfmt(j->replies[idx[k]], PL_LMTP_REPLY_MAX, "451 4.4.7 postlink-sipd's time for this "
                 "delivery (sip_delivery_budget) is used up; later over SIP");
            j->r[idx[k]].kind = K_DONE;
        }
        msg_qid(LOG_WARNING, j->qid, "postlink-sipd: number=%s: sip_delivery_budget used up: %zu "
                "recipient(s) deferred", number, n);
        free(rc);
        return;
    }
    if (sipd_session_open(number, &s) != SIPD_OK) {
        sfmt(why, sizeof(why), "Call-ID %s: %s", s.call.call_id[0] ? s.call.call_id : "-", s.why);
        for (size_t k = 0; k < n; k++)
            to_fallback(j, idx[k], why);
        msg_qid(LOG_INFO, j->qid, "postlink-sipd: number=%s %s: %zu recipient(s) the normal way",
                number, why, n);
        sipd_session_close(&s);
        free(rc);
        return;
    }
    fill_rcpts(j, idx, n, rc);
    fill_msg(j, &m, rc, n);
    left = (long)cfg->sip_delivery_budget * 1000L - sipd_ms_since(&j->t0);
    sipd_watch_start(&w, s.fd, left > 1000 ? (unsigned)left : 1000u);
    int sent = pl_smtpc_send(&s.smtp, &m, &res) == 0;
    if (sipd_watch_stop(&w))
        msg_qid(LOG_WARNING, j->qid, "postlink-sipd: number=%s Call-ID %s: the SMTP session passed "
                "sip_delivery_budget and was cut at %s", number, s.call.call_id,
                pl_smtpc_stage_name(res.stage));
    if (res.dsn_dropped)
        msg_qid(LOG_WARNING, j->qid, "postlink-sipd: number=%s Call-ID %s: the peer does not announce "
                "DSN: the sender's NOTIFY is dropped", number, s.call.call_id);
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        const struct pl_smtp_reply *rr = &rc[k].reply;
        char *out = j->replies[i];
        if (res.local == PL_SMTPC_LOCAL_PERM) {
            sfmt(why, sizeof(why), "Call-ID %s: the peer cannot take this message: %s", s.call.call_id, res.err);
            to_fallback(j, i, why);
        } else if (res.mail.code >= 400) {
            reply_from(out, &res.mail, "over SIP: ");          /* MAIL refused: for all */
            j->r[i].kind = K_DONE;
        } else if (rr->code >= 400) {
            reply_from(out, rr, "over SIP: ");                 /* this recipient refused */
            j->r[i].kind = K_DONE;
        } else if (sent && rr->code / 100 == 2 && res.dot.code / 100 == 2) {
            char pre[300];
            sfmt(pre, sizeof(pre), "delivered over SIP to %s (Call-ID %s): ", number, s.call.call_id);
            reply_from(out, &res.dot, pre);
            j->r[i].kind = K_DONE;
            ok[nok++] = i;
        } else if (sent && rr->code / 100 == 2) {
            reply_from(out, &res.dot, "over SIP: ");          /* refused at the final dot */
            j->r[i].kind = K_DONE;
        } else if (res.stage == PL_SMTPC_AFTER_DOT && rr->code / 100 == 2) {
            sfmt(out, PL_LMTP_REPLY_MAX, "451 4.4.2 connection lost after the final dot over "
                     "SIP (Call-ID %s): the peer may have the message; deferred", s.call.call_id);
            j->r[i].kind = K_DONE;
        } else {
            sfmt(why, sizeof(why), "Call-ID %s: SMTP over the call broke at %s: %s", s.call.call_id,
                     pl_smtpc_stage_name(res.stage), res.err[0] ? res.err : s.smtp.err);
            to_fallback(j, i, why);
            nfb++;
        }
        if (j->r[i].kind == K_DONE)
            msg_qid(LOG_INFO, j->qid, "postlink-sipd: to=<%s> number=%s Call-ID %s: %s", j->r[i].addr,
                    number, s.call.call_id, out);
    }
    if (nfb)
        msg_qid(LOG_INFO, j->qid, "postlink-sipd: number=%s Call-ID %s: %zu recipient(s) the normal way: "
                "the dialogue broke before the final dot", number, s.call.call_id, nfb);
    if (nok) {
        char detail[400];
        sfmt(detail, sizeof(detail), "to %s, Call-ID %s", number, s.call.call_id);
        if (record(j, ok, nok, "sip", detail) != PL_OK)
            msg_qid(LOG_WARNING, j->qid, "postlink-sipd: cannot record the SIP delivery (a retry "
                    "after a crash could send it again)");
    }
    sipd_session_close(&s);
    if (s.call.bye_status > 0 || s.call.bye_status == -1)
        msg_debug("Call-ID %s: BYE %d in %ld ms", s.call.call_id, s.call.bye_status, s.call.ms_bye);
    free(rc);
}

/* ---- the normal way ----------------------------------------------------- */

static int reinject_target(char *host, size_t hlen, unsigned *port)
{
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    const char *u = cfg->reinject_url;
    if (strncmp(u, "smtp://", 7) != 0)
        return -1;
    return pl_hostport_split(u + 7, host, hlen, port) == 0 ? 0 : -1;
}

static void queued_as(const struct pl_smtp_reply *dot, char *out, size_t len)
{
    const char *q = strstr(dot->text, "queued as ");
    size_t n = 0;
    if (q) {
        q += 10;
        while (q[n] && isalnum((unsigned char)q[n]) && n + 1 < len)
            n++;
    }
    memcpy(out, q ? q : "?", q ? n : 1);
    out[q ? n : 1] = '\0';
}

static void the_normal_way(struct job *j)
{
    size_t n = 0, idx[j->env->nrcpts ? j->env->nrcpts : 1], pend[j->env->nrcpts ? j->env->nrcpts : 1], np = 0;
    char host[128], err[256], qid[64], detail[400];
    unsigned port = 0;
    int fd;

    for (size_t i = 0; i < j->env->nrcpts; i++)
        if (j->r[i].kind == K_NORMAL || j->r[i].kind == K_FALLBACK) {
            idx[n++] = i;
            if (j->r[i].kind == K_FALLBACK && !j->r[i].recorded)
                pend[np++] = i;
        }
    if (n == 0)
        return;
    /* never over SIP again, whatever happens next */
    if (record(j, pend, np, "fallback-pending", NULL) != PL_OK) {
        for (size_t k = 0; k < n; k++)
            sfmt(j->replies[idx[k]], PL_LMTP_REPLY_MAX, "451 4.3.0 postlink-sipd cannot record the fallback");
        return;
    }
    if (np > 0)
        test_point("fallback-pending");
    struct pl_smtpc_rcpt *rc = pl_xcalloc(n, sizeof(*rc));
    struct pl_smtpc_msg m;
    struct pl_smtpc_result res;
    struct pl_smtpc c;
    fill_rcpts(j, idx, n, rc);
    fill_msg(j, &m, rc, n);
    memset(&res, 0, sizeof(res));
    if (reinject_target(host, sizeof(host), &port) != 0 ||
        (fd = pl_smtpc_connect_tcp(host, port, 10000, err, sizeof(err))) < 0) {
        for (size_t k = 0; k < n; k++)
            sfmt(j->replies[idx[k]], PL_LMTP_REPLY_MAX,
                     "451 4.4.1 postlink-sipd cannot reach the re-injection listener");
        msg_qid(LOG_WARNING, j->qid, "postlink-sipd: re-injection: %s", port ? err : "reinject_url is not smtp://HOST:PORT");
        free(rc);
        return;
    }
    pl_smtpc_init(&c, fd, NULL);
    int done = pl_smtpc_open(&c, NULL, sipd.hostname) == 0 && pl_smtpc_send(&c, &m, &res) == 0;
    queued_as(&res.dot, qid, sizeof(qid));
    size_t sent[n], ns = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        if (done && rc[k].reply.code / 100 == 2 && res.dot.code / 100 == 2)
            sent[ns++] = i;
        else if (rc[k].reply.code >= 400)
            reply_from(j->replies[i], &rc[k].reply, "the normal way: ");
        else if (res.mail.code >= 400)
            reply_from(j->replies[i], &res.mail, "the normal way: ");
        else if (done && res.dot.code >= 400)
            reply_from(j->replies[i], &res.dot, "the normal way: ");
        else
            sfmt(j->replies[i], PL_LMTP_REPLY_MAX, "451 4.4.2 re-injection failed: %s",
                     c.err[0] ? c.err : res.err);
    }
    if (done)
        pl_smtpc_quit(&c);
    close(fd);
    sfmt(detail, sizeof(detail), "queued as %s", qid);
    if (ns > 0 && record(j, sent, ns, "sent", detail) != PL_OK)
        msg_qid(LOG_WARNING, j->qid, "postlink-sipd: cannot record the re-injection (a retry after a "
                "crash could send it again)");
    test_point("fallback-recorded");
    for (size_t k = 0; k < ns; k++) {
        struct rcpt *r = &j->r[sent[k]];
        sfmt(j->replies[sent[k]], PL_LMTP_REPLY_MAX, "250 2.0.0 sent the normal way: queued as %s%s",
                 qid, r->kind == K_FALLBACK ? " (fallback from SIP)" : "");
        if (r->kind == K_FALLBACK)
            msg_qid(LOG_INFO, j->qid, "postlink-sipd: to=<%s> fallback: queued as %s (%s)", r->addr, qid, r->why);
        else
            msg_qid(LOG_INFO, j->qid, "postlink-sipd: to=<%s> no number: queued as %s", r->addr, qid);
    }
    free(rc);
}

/* ---- the LMTP delivery -------------------------------------------------- */

void sipd_deliver(void *ctx, const struct pl_lmtp_envelope *env, char (*replies)[PL_LMTP_REPLY_MAX])
{
    struct job j;
    size_t n = env->nrcpts;
    int slot = -1;
    (void)ctx;

    memset(&j, 0, sizeof(j));
    j.env = env;
    j.replies = replies;
    j.r = pl_xcalloc(n ? n : 1, sizeof(*j.r));
    for (size_t i = 0; i < n; i++) {
        j.r[i].addr = env->rcpts[i];
        replies[i][0] = '\0';
    }
    clock_gettime(CLOCK_MONOTONIC, &j.t0);
    strip_route(&j);
    if (j.token[0] && (slot = busy_take(j.token)) == -2) {
        for (size_t i = 0; i < n; i++)
            sfmt(replies[i], PL_LMTP_REPLY_MAX, "451 4.3.0 this message is being delivered by "
                 "another postlink-sipd session; later");
        goto out;
    }
    if (pl_store_run(sipd.store, 0, plan_fn, &j) != PL_OK) {
        for (size_t i = 0; i < n; i++)
            sfmt(replies[i], PL_LMTP_REPLY_MAX, "451 4.3.0 postlink-sipd cannot read the routing store");
        goto out;
    }
    if (j.token[0] == '\0')
        msg_warn("a message without a valid X-Postlink-Route reached postlink-sipd: sent the normal way");
    /* one call per number */
    for (size_t i = 0; i < n; i++) {
        size_t idx[n], k = 0;
        if (j.r[i].kind != K_SIP)
            continue;
        for (size_t x = i; x < n; x++)
            if (j.r[x].kind == K_SIP && strcmp(j.r[x].number, j.r[i].number) == 0)
                idx[k++] = x;
        char number[PL_PHONE_MAX];
        sfmt(number, sizeof(number), "%s", j.r[i].number);
        over_sip(&j, number, idx, k);
        for (size_t x = 0; x < k; x++)
            if (j.r[idx[x]].kind == K_SIP)             /* not decided: never leave it */
                to_fallback(&j, idx[x], "no result over SIP");
    }
    the_normal_way(&j);
out:
    busy_put(slot);
    for (size_t i = 0; i < n; i++)
        if (replies[i][0] == '\0')
            sfmt(replies[i], PL_LMTP_REPLY_MAX, "451 4.3.0 postlink-sipd: no result");
    free(j.msg);
    free(j.r);
}
