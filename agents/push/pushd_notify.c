/* pushd_notify.c -- postlink-pushd's Web Push notifier (issue 14, point 3):
 * one thread that tells a device with a subscription (state/push_sub.h)
 * that mail waits for it, with a small encrypted notice
 * {"waiting":N,"first":"<id>"} (no message content), Topic postlink-mail
 * (a push service keeps only the newest pending notice), TTL
 * push_webpush_ttl, Urgency normal, signed with the VAPID key
 * push_vapid_key_file.  When the device does not come for its mail, the
 * notice is sent again after push_notify_interval, doubling, at most
 * push_notify_retries times (a temporary failure counts as one); new mail
 * starts it afresh, a fetch by the device ends it.  A gone subscription
 * (404/410) is dropped: the device stays on long-poll.
 *
 * The schedule lives in memory only.  What tells the thread: LMTP after a
 * commit (pushd_notify_user: the user is queued, nothing is sent on that
 * path), the HTTP side at a fetch (pushd_notify_fetched), and a scan of
 * every subscribed device each SCAN_MS that notices a user's mail order
 * number (pseq) moving -- mail the mirror stored -- and, at start, every
 * device with unfetched mail (restart-safe: each gets a notice). */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "monotime.h"
#include "push_sub.h"
#include "pushd.h"
#include "server.h"
#include "strutil.h"
#include "webpush_send.h"

#define SCAN_MS 5000                 /* look for mail stored by other processes */
#define PENDING_MAX 256              /* users queued by LMTP; more: scan at once */
#define SEND_TIMEOUT_MS 10000
#define INTERVAL_MAX_MS (86400LL * 1000)
#define TOPIC "postlink-mail"
#define URGENCY "normal"

/* one subscribed device the notifier knows */
struct nd {
    char sel[PL_PSEL_LEN + 1];
    char user[PL_ADDR_SIZE];
    char name[PL_PNAME_MAX + 1];
    uint64_t seq_seen;               /* the newest queued order number looked at */
    uint64_t pseq;                   /* the user's pseq at the last look */
    int active;                      /* notices are due while mail is unfetched */
    unsigned attempts;               /* for the current mail */
    long long next_ms, interval_ms;
    int present;                     /* found by the current scan */
};

static pthread_t thread;
static int started;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop, scan_now;
static char pending[PENDING_MAX][PL_ADDR_SIZE];
static size_t npending;
static char fetched[PENDING_MAX][PL_PSEL_LEN + 1];
static size_t nfetched;

static pl_vapid_key *vapid;          /* NULL: Web Push off */
static atomic_int on;                /* vapid is loaded: what other threads look at */
static struct nd *nds;               /* the thread's alone */
static size_t nnd, cap_nd;

int pushd_notify_open(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    char err[256];
    if (!cfg->push_vapid_key_file[0])
        return 0;
    if ((vapid = pl_vapid_load(cfg->push_vapid_key_file, err, sizeof(err))) == NULL) {
        msg_error("push_vapid_key_file %s: %s", cfg->push_vapid_key_file, err);
        return -1;
    }
    atomic_store(&on, 1);
    return 0;
}

int pushd_notify_enabled(void)
{
    return atomic_load(&on);
}

void pushd_notify_user(const char *user)
{
    if (!atomic_load(&on))
        return;
    pthread_mutex_lock(&mu);
    size_t i;
    for (i = 0; i < npending && strcmp(pending[i], user) != 0; i++)
        ;
    if (i == npending) {
        if (npending < PENDING_MAX && strlen(user) < PL_ADDR_SIZE)
            memcpy(pending[npending++], user, strlen(user) + 1);
        else
            scan_now = 1;
    }
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

void pushd_notify_fetched(const char *sel)
{
    if (!atomic_load(&on))
        return;
    pthread_mutex_lock(&mu);
    if (nfetched < PENDING_MAX) {
        snprintf(fetched[nfetched++], PL_PSEL_LEN + 1, "%s", sel);
        pthread_cond_signal(&cv);
    }
    pthread_mutex_unlock(&mu);
}

static struct nd *nd_find(const char *sel)
{
    for (size_t i = 0; i < nnd; i++)
        if (strcmp(nds[i].sel, sel) == 0)
            return &nds[i];
    return NULL;
}

static void nd_drop(struct nd *n)
{
    size_t i = (size_t)(n - nds);
    if (i != nnd - 1)
        nds[i] = nds[nnd - 1];
    nnd--;
}

/* ---- what waits for a user's devices ---------------------------------------- */

struct devinfo {
    struct pl_pdev d;
    int has_sub;
    struct pl_psub s;
    unsigned queued;                 /* W + S: what get=first walks */
    unsigned unfetched;              /* W */
    char first[PL_PID_LEN + 1];
    uint64_t newest;                 /* the newest queued order number */
};

struct userinfo {
    const char *user;
    struct devinfo *dv;
    size_t n, cap;
    uint64_t pseq;
};

static int ui_dev(void *ctx, const struct pl_pdev *d)
{
    struct userinfo *u = ctx;
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 8;
        u->dv = pl_xrealloc(u->dv, u->cap * sizeof(*u->dv));
    }
    memset(&u->dv[u->n], 0, sizeof(u->dv[0]));
    u->dv[u->n++].d = *d;
    return 0;
}

static int ui_msg(void *ctx, const struct pl_pmsg *m, const struct pl_pdstate *st, size_t n)
{
    struct userinfo *u = ctx;
    for (size_t i = 0; i < n; i++) {
        if (st[i].state != PL_PST_WAIT && st[i].state != PL_PST_SENT)
            continue;
        for (size_t k = 0; k < u->n; k++) {
            struct devinfo *di = &u->dv[k];
            if (strcmp(di->d.name, st[i].name) != 0)
                continue;
            if (di->queued++ == 0)
                memcpy(di->first, m->id, sizeof(di->first));
            di->unfetched += st[i].state == PL_PST_WAIT;
            if (m->seq > di->newest)
                di->newest = m->seq;
        }
    }
    return 0;
}

static int read_pseq(pl_txn *t, const char *user, uint64_t *seq)
{
    void *v = NULL;
    size_t len;
    int rc = pl_store_get(t, PL_T_PSEQ, user, strlen(user), &v, &len, 0);
    *seq = rc == PL_OK ? strtoull(v, NULL, 10) : 0;
    free(v);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

static int ui_fn(pl_txn *t, void *ctx)
{
    struct userinfo *u = ctx;
    int rc, any = 0;
    u->n = 0;
    if ((rc = pl_pdev_list(t, u->user, ui_dev, u)) != PL_OK)
        return rc;
    for (size_t k = 0; k < u->n; k++) {
        rc = pl_psub_get(t, u->dv[k].d.sel, &u->dv[k].s, 0);
        if (rc != PL_OK && rc != PL_NOTFOUND)
            return rc;
        any |= u->dv[k].has_sub = rc == PL_OK;
    }
    if (any && (rc = pl_pmsg_list(t, u->user, ui_msg, u)) != PL_OK)
        return rc;
    return read_pseq(t, u->user, &u->pseq);
}

/* ---- sending ---------------------------------------------------------------- */

struct noteop { const char *sel, *endpoint; int ok, gone; unsigned fails; };

static int note_fn(pl_txn *t, void *ctx)
{
    struct noteop *o = ctx;
    struct pl_psub s;
    int rc = pl_psub_get(t, o->sel, &s, 1);
    if (rc != PL_OK)
        return rc;
    if (strcmp(s.sub.endpoint, o->endpoint) != 0)
        return PL_OK;                  /* the device registered anew meanwhile */
    if (o->gone)
        return pl_psub_del(t, o->sel);
    return pl_psub_note(t, o->sel, time(NULL), o->ok, &o->fails);
}

/* Records the result for the subscription the notice went to. */
static void note(const char *sel, const char *endpoint, int ok, int gone, unsigned *fails)
{
    struct noteop o = {sel, endpoint, ok, gone, 0};
    int rc = pl_store_run(pd.store, PL_TXN_NOSYNC, note_fn, &o);
    if (rc != PL_OK && rc != PL_NOTFOUND)
        msg_warn("device %s: cannot record the Web Push result (store error %d)", sel, rc);
    if (fails)
        *fails = o.fails;
}

/* One notice to the device; schedules what follows. */
static void send_notice(struct nd *n, const struct devinfo *di)
{
    const struct pl_cfg *cfg = atomic_load(&pd.cfg);
    char payload[128], err[512];
    long status = 0;
    unsigned fails = 0;
    enum pl_wp_result r;
    int len;

    len = snprintf(payload, sizeof(payload), "{\"waiting\":%u,\"first\":\"%s\"}", di->queued,
                   di->first);
    n->attempts++;
    if (!pl_webpush_origin_allowed(di->s.sub.endpoint, cfg->push_webpush_services_list)) {
        /* registered before push_webpush_services was narrowed */
        msg_warn("%s/%s: Web Push endpoint no longer in push_webpush_services: subscription "
                 "dropped, the device stays on long-poll", n->user, n->name);
        note(n->sel, di->s.sub.endpoint, 0, 1, NULL);
        nd_drop(n);
        return;
    }
    r = pl_webpush_send(&di->s.sub, vapid, cfg->push_vapid_subject, payload, (size_t)len,
                        (unsigned)cfg->push_webpush_ttl, TOPIC, URGENCY, SEND_TIMEOUT_MS,
                        cfg->push_webpush_ca_file[0] ? cfg->push_webpush_ca_file : NULL,
                        &status, err, sizeof(err));
    switch (r) {
    case PL_WP_SENT:
        note(n->sel, di->s.sub.endpoint, 1, 0, NULL);
        msg_info("%s/%s: Web Push notice %u sent (%ld; %u waiting, first %s)", n->user, n->name,
                 n->attempts, status, di->queued, di->first);
        break;
    case PL_WP_GONE:
        note(n->sel, di->s.sub.endpoint, 0, 1, NULL);
        msg_info("%s/%s: subscription gone: device stays on long-poll (the push service "
                 "answered %ld)", n->user, n->name, status);
        nd_drop(n);
        return;
    case PL_WP_TEMP:
        note(n->sel, di->s.sub.endpoint, 0, 0, &fails);
        msg_warn("%s/%s: Web Push notice %u not delivered, trying later (%u failure(s) in a "
                 "row): %s", n->user, n->name, n->attempts, fails, err);
        break;
    case PL_WP_REFUSED:
    case PL_WP_BADARG:
    default:
        note(n->sel, di->s.sub.endpoint, 0, 0, &fails);
        msg_warn("%s/%s: Web Push notice refused (%ld; %u failure(s) in a row), no retry "
                 "until new mail: %s", n->user, n->name, status, fails, err);
        n->active = 0;
        return;
    }
    if (n->attempts > (unsigned)cfg->push_notify_retries) {
        n->active = 0;
        msg_info("%s/%s: %u Web Push notice(s) tried, the device did not come: no more "
                 "until new mail", n->user, n->name, n->attempts);
        return;
    }
    n->next_ms = pl_now_ms() + n->interval_ms;
    n->interval_ms = n->interval_ms * 2 > INTERVAL_MAX_MS ? INTERVAL_MAX_MS
                                                          : n->interval_ms * 2;
}

/* Looks at user's subscribed devices: new mail starts the notices, a
 * device with nothing unfetched ends them, a due notice goes out.  0, or
 * -1 when the store could not be read (nothing changed). */
static int examine_user(const char *user)
{
    const struct pl_cfg *cfg = atomic_load(&pd.cfg);
    struct userinfo u = {.user = user};
    int rc = pl_store_run(pd.store, PL_TXN_NOSYNC, ui_fn, &u);
    if (rc != PL_OK) {
        msg_warn("%s: cannot read the push store for Web Push (error %d): later", user, rc);
        free(u.dv);
        return -1;
    }
    for (size_t k = 0; k < u.n && !pl_server_stopping(); k++) {
        struct devinfo *di = &u.dv[k];
        struct nd *n = nd_find(di->d.sel);
        if (!di->has_sub) {
            if (n)
                nd_drop(n);
            continue;
        }
        if (n == NULL) {
            if (nnd == cap_nd) {
                cap_nd = cap_nd ? 2 * cap_nd : 16;
                nds = pl_xrealloc(nds, cap_nd * sizeof(*nds));
            }
            n = &nds[nnd++];
            memset(n, 0, sizeof(*n));
            memcpy(n->sel, di->d.sel, sizeof(n->sel));
            snprintf(n->user, sizeof(n->user), "%s", di->d.user);
            snprintf(n->name, sizeof(n->name), "%s", di->d.name);
        }
        n->present = 1;
        n->pseq = u.pseq;
        if (di->newest > n->seq_seen) {      /* new mail (or first look) */
            n->seq_seen = di->newest;
            if (di->unfetched > 0) {
                n->active = 1;
                n->attempts = 0;
                n->next_ms = 0;
                n->interval_ms = cfg->push_notify_interval * 1000;
            }
        }
        if (n->active && di->unfetched == 0)
            n->active = 0;
        if (n->active && n->next_ms <= pl_now_ms())
            send_notice(n, di);
    }
    free(u.dv);
    return 0;
}

/* ---- the scan --------------------------------------------------------------- */

struct scanrow { char user[PL_ADDR_SIZE]; char sel[PL_PSEL_LEN + 1]; uint64_t pseq; };
struct scanop { struct scanrow *r; size_t n, cap; pl_txn *t; int rc; };

static int scan_dev(void *ctx, const struct pl_pdev *d)
{
    struct scanop *o = ctx;
    struct pl_psub s;
    int rc = pl_psub_get(o->t, d->sel, &s, 0);
    if (rc == PL_NOTFOUND)
        return 0;
    if (rc != PL_OK)
        return o->rc = rc;
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->r = pl_xrealloc(o->r, o->cap * sizeof(*o->r));
    }
    snprintf(o->r[o->n].user, sizeof(o->r[0].user), "%s", d->user);
    memcpy(o->r[o->n].sel, d->sel, sizeof(o->r[0].sel));
    o->n++;
    return 0;
}

static int scan_fn(pl_txn *t, void *ctx)
{
    struct scanop *o = ctx;
    int rc;
    o->n = 0;
    o->rc = PL_OK;
    o->t = t;
    if ((rc = pl_pdev_list(t, NULL, scan_dev, o)) != PL_OK)
        return o->rc != PL_OK ? o->rc : rc;
    for (size_t i = 0; i < o->n; i++)
        if ((rc = read_pseq(t, o->r[i].user, &o->r[i].pseq)) != PL_OK)
            return rc;
    return PL_OK;
}

static void scan(void)
{
    struct scanop o = {0};
    int rc = pl_store_run(pd.store, PL_TXN_NOSYNC, scan_fn, &o);
    if (rc != PL_OK) {
        free(o.r);
        return;
    }
    for (size_t i = 0; i < nnd; i++)
        nds[i].present = 0;
    for (size_t i = 0; i < o.n && !pl_server_stopping(); i++) {
        struct nd *n = nd_find(o.r[i].sel);
        int again = 0;
        if (n && n->pseq == o.r[i].pseq) {
            n->present = 1;
            continue;                        /* nothing new for this user */
        }
        for (size_t k = 0; k < i && !again; k++)
            again = strcmp(o.r[k].user, o.r[i].user) == 0;
        if (!again)
            examine_user(o.r[i].user);
    }
    for (size_t i = 0; i < nnd;)             /* devices or subscriptions gone */
        if (!nds[i].present)
            nd_drop(&nds[i]);
        else
            i++;
    free(o.r);
}

/* ---- the thread ---------------------------------------------------------------- */

static void *notify_main(void *arg)
{
    long long next_scan = 0;
    char users[PENDING_MAX][PL_ADDR_SIZE], sels[PENDING_MAX][PL_PSEL_LEN + 1];
    (void)arg;
    for (;;) {
        size_t nu, ns;
        long long now = pl_now_ms(), due = next_scan;
        int full;
        for (size_t i = 0; i < nnd; i++)
            if (nds[i].active && nds[i].next_ms < due)
                due = nds[i].next_ms;
        pthread_mutex_lock(&mu);
        while (!stop && npending == 0 && nfetched == 0 && !scan_now && now < due) {
            struct timespec ts;
            long long wait = due - now;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&cv, &mu, &ts);
            now = pl_now_ms();
        }
        if (stop) {
            pthread_mutex_unlock(&mu);
            break;
        }
        nu = npending;
        ns = nfetched;
        memcpy(users, pending, nu * sizeof(users[0]));
        memcpy(sels, fetched, ns * sizeof(sels[0]));
        npending = nfetched = 0;
        full = scan_now;
        scan_now = 0;
        pthread_mutex_unlock(&mu);

        for (size_t i = 0; i < ns; i++) {    /* the device came: no more notices */
            struct nd *n = nd_find(sels[i]);
            if (n)
                n->active = 0;
        }
        for (size_t i = 0; i < nu; i++)
            examine_user(users[i]);
        now = pl_now_ms();
        if (full || now >= next_scan) {
            scan();
            next_scan = pl_now_ms() + SCAN_MS;
        }
        for (size_t i = 0; i < nnd && !pl_server_stopping(); i++) {
            if (nds[i].active && nds[i].next_ms <= pl_now_ms()) {
                char user[PL_ADDR_SIZE], sel[PL_PSEL_LEN + 1];
                struct nd *n;
                memcpy(user, nds[i].user, sizeof(user));
                memcpy(sel, nds[i].sel, sizeof(sel));
                if (examine_user(user) != 0) {
                    nds[i].next_ms = pl_now_ms() + SCAN_MS;   /* the store: later */
                } else if ((n = nd_find(sel)) != NULL && n->active &&
                           n->next_ms <= pl_now_ms()) {
                    n->active = 0;           /* the device went: nothing to send */
                }
                break;                       /* nds may have changed: look again */
            }
        }
    }
    return NULL;
}

int pushd_notify_start(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    if (vapid == NULL) {
        msg_info("Web Push is off (push_vapid_key_file is empty): devices use long-poll");
        return 0;
    }
    if (pthread_create(&thread, NULL, notify_main, NULL) != 0) {
        msg_error("cannot start the Web Push notifier thread");
        return -1;
    }
    started = 1;
    msg_info("Web Push notices on (VAPID key %s, public %s, subject %s)",
             cfg->push_vapid_key_file, pl_vapid_public(vapid), cfg->push_vapid_subject);
    return 0;
}

void pushd_notify_stop(void)
{
    atomic_store(&on, 0);
    if (started) {
        pthread_mutex_lock(&mu);
        stop = 1;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(thread, NULL);
        started = 0;
    }
    free(nds);
    nds = NULL;
    nnd = cap_nd = 0;
    pl_vapid_free(vapid);
    vapid = NULL;
}
