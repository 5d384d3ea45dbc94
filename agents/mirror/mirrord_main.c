/* mirrord_main.c -- postlink-mirrord, capability 2: keeps a copy of each
 * mirror account's primary POP3 mailbox at its destination, never
 * fetching a message twice and never changing the primary
 * (mirrord_sync.c).  This file is the scheduler: each account is synced
 * at its interval, at its times of day and when postlinkctl (or a device)
 * asks; failures back off (doubling, up to mirror_backoff_max; a refused
 * login waits mirror_auth_backoff); at most mirror_max_concurrency syncs
 * run at once and never two of one account, also across processes (an
 * fcntl lock).  Its life is the server skeleton's.  See postlink-mirrord(8). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mirrord.h"
#include "server.h"
#include "strutil.h"

struct mirrord md;

struct acct {                        /* what the scheduler knows of an account */
    char user[256];
    time_t next;                     /* 0: not planned yet */
    unsigned fails;
    int running, seen;
    time_t last_try;
};

struct work { struct pl_maccount a; char what[PL_UIDL_MAX + 16]; struct work *next; };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct work *queue_head, **queue_tail = &queue_head;
static struct acct *accts;
static size_t naccts;
static pthread_t *workers;
static size_t nworkers;
static int quitting;
static char lock_path[1200];

static struct acct *acct_find(const char *user)
{
    for (size_t i = 0; i < naccts; i++)
        if (strcmp(accts[i].user, user) == 0)
            return &accts[i];
    return NULL;
}

/* The next of the account's times of day after now (0 if none). */
static time_t next_time_of_day(const char *times, time_t now)
{
    time_t best = 0;
    for (const char *p = times; *p;) {
        struct tm tm;
        time_t t;
        localtime_r(&now, &tm);
        tm.tm_hour = (p[0] - '0') * 10 + (p[1] - '0');
        tm.tm_min = (p[3] - '0') * 10 + (p[4] - '0');
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        if (t <= now) {
            tm.tm_mday++;
            tm.tm_isdst = -1;
            t = mktime(&tm);
        }
        if (best == 0 || t < best)
            best = t;
        p += 5;
        if (*p == ',')
            p++;
    }
    return best;
}

static time_t plan_next(const struct pl_maccount *a, time_t now, const struct msync_result *r,
                        unsigned fails)
{
    const struct pl_cfg *cfg = atomic_load(&md.cfg);
    time_t next = 0, tod = next_time_of_day(a->times, now);
    if (r && !r->ok) {
        unsigned long long wait = 30;
        if (r->auth_failed)
            return now + (time_t)cfg->mirror_auth_backoff;
        for (unsigned i = 1; i < fails && wait < (unsigned long long)cfg->mirror_backoff_max; i++)
            wait *= 2;
        if (wait > (unsigned long long)cfg->mirror_backoff_max)
            wait = (unsigned long long)cfg->mirror_backoff_max;
        return now + (time_t)wait;
    }
    if (a->interval)
        next = now + (time_t)a->interval;
    if (tod && (next == 0 || tod < next))
        next = tod;
    return next ? next : (time_t)INT64_MAX / 2;     /* only on demand */
}

/* ---- the status record ------------------------------------------------ */

struct status_op { const char *user; const char *text; const char *what; int adopted; };

static int status_fn(pl_txn *t, void *ctx)
{
    struct status_op *o = ctx;
    struct pl_maccount acc;
    int rc = pl_maccount_get(t, o->user, &acc);
    if (rc == PL_NOTFOUND)
        return PL_OK;               /* deleted during the sync: no status comes back */
    if (rc == PL_OK)
        rc = pl_mstatus_put(t, o->user, o->text);
    if (rc == PL_OK && o->what)
        rc = pl_mreq_del(t, o->user, o->what);
    if (rc == PL_NOTFOUND)
        rc = PL_OK;
    if (rc == PL_OK && o->adopted) {
        struct pl_maccount a;
        if (pl_maccount_get(t, o->user, &a) == PL_OK && a.adopt) {
            a.adopt = 0;
            rc = pl_maccount_put(t, &a, 1, NULL);
        }
    }
    return rc;
}

/* Free text for one "name=value" line: a multi-line reply must not
 * start fields of its own. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

static void write_status(const struct pl_maccount *a, const char *what, int from_request,
                         const struct msync_result *r0, unsigned fails, time_t next, char *old)
{
    struct msync_result rr = *r0, *r = &rr;
    struct pl_strbuf b = {0};
    char v[64];
    unsigned long long tf = 0, tb = 0;
    struct status_op o;

    one_line(rr.error);
    one_line(rr.warning);
    pl_mstatus_field(old ? old : "", "total_fetched", v, sizeof(v));
    tf = strtoull(v, NULL, 10) + r->fetched;
    pl_mstatus_field(old ? old : "", "total_bytes", v, sizeof(v));
    tb = strtoull(v, NULL, 10) + r->bytes_in;
    pl_strbuf_addf(&b, "last=%lld\nok=%d\nwhat=%s\nerror=%s\nwarning=%s\nfails=%u\nnext=%lld\n",
                   (long long)time(NULL), r->ok, what, r->error, r->warning, fails,
                   (long long)next);
    pl_strbuf_addf(&b, "listed=%lu\nstat=%lu\ncomplete=%d\nfetched=%zu\nwithdrawn=%zu\n"
                   "marked=%zu\nforgotten=%zu\nmissing=%zu\nheld_back=%zu\nguard=%d\n",
                   r->listed, r->stat_count, r->complete, r->fetched, r->withdrawn, r->marked,
                   r->forgotten, r->missing, r->held_back, r->guard);
    pl_strbuf_addf(&b, "hidden=%zu\nexpired=%zu\nfailed=%zu\noversize=%zu\nadopted=%zu\n"
                   "remapped=%zu\nbad_lines=%zu\nbytes=%llu\nseconds=%.3f\nexpire=%ld\n"
                   "auth_failed=%d\ntotal_fetched=%llu\ntotal_bytes=%llu\nwithdraw_failed=%zu\npurged=%zu\n"
                   "ordered=%d\nfull_at=%lld\nprobes=%lu\nprobed=%d\n",
                   r->hidden, r->expired, r->failed, r->oversize, r->adopted, r->remapped,
                   r->bad_lines, r->bytes_in, r->seconds, r->expire_days, r->auth_failed, tf, tb,
                   r->withdraw_failed, r->purged, r->ordered, (long long)r->full_at, r->probes,
                   r->probed);
    o.user = a->user;
    o.text = b.s;
    o.what = from_request ? what : NULL;
    o.adopted = a->adopt && r->ok;
    if (pl_store_run(md.store, PL_TXN_SYNC, status_fn, &o) != PL_OK)
        msg_warn("mirror %s: cannot record the sync's status", a->user);
    pl_strbuf_free(&b);
}

static int get_status(pl_txn *t, void *ctx)
{
    char **p = ctx;
    void *u = p[1];
    int rc = pl_mstatus_get(t, (const char *)u, p);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

/* ---- the workers ------------------------------------------------------- */

static int lock_account(int fd, const char *user, int lock)
{
    unsigned h = 5381;
    struct flock fl = {0};
    for (const char *p = user; *p; p++)
        h = h * 33u + (unsigned char)*p;
    fl.l_type = lock ? F_WRLCK : F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)(h % 1048576u);
    fl.l_len = 1;
    return fcntl(fd, F_OFD_SETLK, &fl);
}

static void run_one(struct work *w, int lockfd)
{
    struct msync_result r;
    struct acct *ac;
    unsigned fails;
    time_t next;
    int from_request = strcmp(w->what, "scheduled") != 0;
    char *old[2] = {NULL, w->a.user};
    const char *what = from_request ? w->what : "sync";

    if (lockfd >= 0 && lock_account(lockfd, w->a.user, 1) != 0) {
        msg_info("mirror %s: another postlink-mirrord syncs this account now: skipped",
                 w->a.user);
        pthread_mutex_lock(&mu);
        if ((ac = acct_find(w->a.user)) != NULL) {
            ac->running = 0;
            ac->next = time(NULL) + 10;
        }
        pthread_mutex_unlock(&mu);
        return;
    }
    mirrord_sync(&w->a, what, &r);
    if (lockfd >= 0)
        lock_account(lockfd, w->a.user, 0);
    pthread_mutex_lock(&mu);
    ac = acct_find(w->a.user);
    fails = ac ? (r.ok ? 0 : ac->fails + 1) : 0;
    next = plan_next(&w->a, time(NULL), &r, fails);
    if (ac) {
        ac->fails = fails;
        ac->next = next;
        ac->running = 0;
    }
    pthread_mutex_unlock(&mu);
    if (r.ok)
        msg_info("mirror %s: %s done in %.2f s: %lu listed%s, %zu fetched, %zu withdrawn, "
                 "%zu marked, %zu forgotten, %zu missing, %zu held back, %llu bytes read%s",
                 w->a.user, what, r.seconds, r.listed, r.complete ? "" : " (incomplete listing)",
                 r.fetched, r.withdrawn, r.marked, r.forgotten, r.missing, r.held_back,
                 r.bytes_in, r.probed ? " (listed by UIDL n probes)" : "");
    else
        msg_warn("mirror %s: %s failed (%u in a row, next try in %lld s): %s", w->a.user, what,
                 fails, (long long)(next - time(NULL)), r.error);
    pl_store_run(md.store, PL_TXN_SYNC, get_status, old);
    write_status(&w->a, what, from_request, &r, fails, next, old[0]);
    free(old[0]);
}

static void *worker(void *arg)
{
    int lockfd = lock_path[0] ? open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    (void)arg;
    if (lock_path[0] && lockfd < 0)
        msg_warn("cannot open %s: %s (syncs are not locked against other processes)", lock_path,
                 strerror(errno));
    for (;;) {
        struct work *w;
        pthread_mutex_lock(&mu);
        while (queue_head == NULL && !quitting)
            pthread_cond_wait(&cv, &mu);
        if (quitting) {
            pthread_mutex_unlock(&mu);
            break;
        }
        w = queue_head;
        queue_head = w->next;
        if (queue_head == NULL)
            queue_tail = &queue_head;
        pthread_mutex_unlock(&mu);
        run_one(w, lockfd);
        free(w);
    }
    if (lockfd >= 0)
        close(lockfd);
    return NULL;
}

/* ---- the scheduler ------------------------------------------------------- */

struct tick {
    time_t now;
    struct pl_maccount *as;
    size_t nas, cap;
    struct { char user[256]; char what[PL_UIDL_MAX + 16]; } *reqs;
    size_t nreqs, capreqs;
};

static int tick_account(void *ctx, const struct pl_maccount *a)
{
    struct tick *t = ctx;
    if (t->nas == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->as = pl_xrealloc(t->as, t->cap * sizeof(*t->as));
    }
    t->as[t->nas++] = *a;
    return 0;
}

static int tick_request(void *ctx, const char *user, const char *what, int64_t when)
{
    struct tick *t = ctx;
    (void)when;
    if (strlen(what) >= sizeof(t->reqs[0].what))
        return 0;
    if (t->nreqs == t->capreqs) {
        t->capreqs = t->capreqs ? 2 * t->capreqs : 16;
        t->reqs = pl_xrealloc(t->reqs, t->capreqs * sizeof(*t->reqs));
    }
    snprintf(t->reqs[t->nreqs].user, sizeof(t->reqs[0].user), "%s", user);
    snprintf(t->reqs[t->nreqs++].what, sizeof(t->reqs[0].what), "%s", what);
    return 0;
}

static int tick_load(pl_txn *txn, void *ctx)
{
    struct tick *t = ctx;
    int rc;
    t->nas = t->nreqs = 0;
    if ((rc = pl_maccount_list(txn, tick_account, t)) != PL_OK)
        return rc;
    return pl_mreq_list(txn, tick_request, t);
}

static void enqueue(const struct pl_maccount *a, const char *what)
{
    struct work *w = pl_xcalloc(1, sizeof(*w));
    w->a = *a;
    snprintf(w->what, sizeof(w->what), "%s", what);
    *queue_tail = w;
    queue_tail = &w->next;
    pthread_cond_signal(&cv);
}

static void tick(struct tick *t)
{
    t->now = time(NULL);
    if (pl_store_run(md.store, PL_TXN_SYNC, tick_load, t) != PL_OK)
        return;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < naccts; i++)
        accts[i].seen = 0;
    for (size_t i = 0; i < t->nas; i++) {
        struct pl_maccount *a = &t->as[i];
        struct acct *ac = acct_find(a->user);
        const char *what = NULL;
        if (ac == NULL) {
            accts = pl_xrealloc(accts, (naccts + 1) * sizeof(*accts));
            ac = &accts[naccts++];
            memset(ac, 0, sizeof(*ac));
            snprintf(ac->user, sizeof(ac->user), "%s", a->user);
            /* a new account (or a restart): its first sync soon, unless it
             * has only times of day */
            ac->next = a->interval ? t->now
                       : a->times[0] ? next_time_of_day(a->times, t->now)
                                     : (time_t)INT64_MAX / 2;   /* on demand only */
        }
        ac->seen = 1;
        if (ac->running)
            continue;
        for (size_t k = 0; k < t->nreqs && what == NULL; k++)
            if (strcmp(t->reqs[k].user, a->user) == 0)
                what = t->reqs[k].what;
        if (what == NULL && ac->next <= t->now)
            what = "scheduled";
        if (what == NULL)
            continue;
        ac->running = 1;
        ac->last_try = t->now;
        enqueue(a, what);
    }
    /* accounts deleted meanwhile */
    for (size_t i = 0; i < naccts;)
        if (!accts[i].seen && !accts[i].running)
            accts[i] = accts[--naccts];
        else
            i++;
    pthread_mutex_unlock(&mu);
}

/* ---- the service --------------------------------------------------------- */

static int mirrord_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                             size_t errlen)
{
    (void)conf;
    if (!reload) {
        if (pl_server_read_secret("imap_password_file", cfg->imap_password_file,
                                  &md.imap_password, err, errlen) != 0)
            return -1;
        md.hostname = pl_server_hostname(cfg);
        snprintf(lock_path, sizeof(lock_path), "%s/mirror.lock", cfg->db_home);
    }
    atomic_store(&md.cfg, cfg);
    return 0;
}

struct gpurge { int64_t before; unsigned n; };

static int gpurge_fn(pl_txn *t, void *ctx)
{
    struct gpurge *g = ctx;
    return pl_mguard_purge(t, g->before, &g->n);
}

static int mirrord_run(void)
{
    const struct pl_cfg *cfg = atomic_load(&md.cfg);
    struct tick t = {0};
    time_t last_purge = 0;

    md.store = pl_server_store();
    nworkers = (size_t)cfg->mirror_max_concurrency;
    workers = pl_xcalloc(nworkers, sizeof(*workers));
    for (size_t i = 0; i < nworkers; i++)
        if (pthread_create(&workers[i], NULL, worker, NULL) != 0) {
            msg_error("cannot start a sync thread");
            nworkers = i;
            return 71;
        }
    msg_info("postlink-mirrord %s: %zu sync thread(s), copies to %s", PACKAGE_VERSION, nworkers,
             cfg->mirror_inject_url[0] ? cfg->mirror_inject_url : cfg->reinject_url);
    do {
        time_t now = time(NULL);
        tick(&t);
        if (now - last_purge >= 3600) {
            struct gpurge g = {(int64_t)now - atomic_load(&md.cfg)->mirror_tombstone_ttl, 0};
            if (pl_store_run(md.store, PL_TXN_SYNC, gpurge_fn, &g) == PL_OK && g.n)
                msg_info("forgot %u old hand-over token(s)", g.n);
            last_purge = now;
        }
        pl_store_maintain(md.store, 0);
    } while (!pl_server_nap_ms(250));     /* postlinkctl rings after a request */
    free(t.as);
    free(t.reqs);
    return 0;
}

static void mirrord_wake(void)
{
    pthread_mutex_lock(&mu);
    quitting = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void mirrord_finish(void)
{
    mirrord_wake();
    for (size_t i = 0; i < nworkers; i++)
        pthread_join(workers[i], NULL);
    free(workers);
    while (queue_head) {
        struct work *w = queue_head;
        queue_head = w->next;
        free(w);
    }
    free(accts);
    if (md.imap_password)
        explicit_bzero(md.imap_password, strlen(md.imap_password));
    free(md.imap_password);
}

static const struct pl_service service = {
    .name = "postlink-mirrord",
    .needs_store = 1,
    .configure = mirrord_configure,
    .open = NULL,
    .run = mirrord_run,
    .wake = mirrord_wake,
    .finish = mirrord_finish,
    .doorbell = "mirrord",
};

int main(int argc, char **argv)
{
    return pl_server_main(&service, argc, argv);
}
