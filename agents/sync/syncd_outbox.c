/* syncd_outbox.c -- postlink-syncd carries out the outbox: copies of
 * controls go to Postfix's re-injection listener over SMTP, state changes
 * go to the user's IMAP mailbox.  An entry is deleted only after it was
 * carried out (or refused for good, or too old: logged), so a crash
 * repeats it rather than losing it. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "address.h"
#include "log.h"
#include "mailout.h"
#include "outbox.h"
#include "strutil.h"
#include "sync.h"
#include "server.h"
#include "syncd.h"

#define BATCH 64
#define IMAP_WAIT_ATTEMPTS 10   /* outbox_retry_time apart */

struct job {
    uint64_t id;
    enum pl_outbox_kind kind;
    unsigned attempts;
    char *tag, *from, *msg, *user, *msgid, *flags;
    size_t msglen;
    struct pl_strvec rcpts;
    int add;
};

struct collect {
    const char *tag;
    int64_t now;
    struct job jobs[BATCH];
    size_t n;
    unsigned waiting;     /* entries of the selection (tag mode) */
};

/* Entries being carried out right now, by any thread of this process: a
 * second flusher skips them, so nothing is sent twice and no lock is held
 * across network I/O. */
static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t claimed[4 * BATCH];
static size_t nclaimed;

static int is_claimed(uint64_t id)
{
    for (size_t i = 0; i < nclaimed; i++)
        if (claimed[i] == id)
            return 1;
    return 0;
}

static int claim(uint64_t id)
{
    int ok;
    pthread_mutex_lock(&claim_lock);
    ok = !is_claimed(id) && nclaimed < sizeof(claimed) / sizeof(claimed[0]);
    if (ok)
        claimed[nclaimed++] = id;
    pthread_mutex_unlock(&claim_lock);
    return ok;
}

static void unclaim(uint64_t id)
{
    pthread_mutex_lock(&claim_lock);
    for (size_t i = 0; i < nclaimed; i++)
        if (claimed[i] == id) {
            claimed[i] = claimed[--nclaimed];
            break;
        }
    pthread_mutex_unlock(&claim_lock);
}

static int collect_fn(void *ctx, const struct pl_outbox_entry *e)
{
    struct collect *c = ctx;
    struct job *j;

    if (c->tag) {
        if (e->kind != PL_OB_SMTP || strcmp(e->tag, c->tag) != 0)
            return 0;
        c->waiting++;
    } else if (e->next_try > c->now) {
        return 0;
    }
    if (c->n == BATCH)
        return c->tag ? 0 : 1;
    j = &c->jobs[c->n++];
    memset(j, 0, sizeof(*j));
    j->id = e->id;
    j->kind = e->kind;
    j->attempts = e->attempts;
    j->tag = pl_xstrdup(e->tag);
    if (e->kind == PL_OB_SMTP) {
        j->from = pl_xstrdup(e->from);
        for (size_t i = 0; i < e->nrcpts; i++)
            pl_strvec_add(&j->rcpts, e->rcpts[i]);
        j->msg = pl_xstrndup(e->msg, e->msglen);
        j->msglen = e->msglen;
    } else {
        j->user = pl_xstrdup(e->user);
        j->msgid = pl_xstrdup(e->msgid);
        j->flags = pl_xstrdup(e->flags);
        j->add = e->add;
    }
    return 0;
}

static void job_free(struct job *j);

static int scan_fn(pl_txn *t, void *ctx)
{
    struct collect *c = ctx;
    for (size_t i = 0; i < c->n; i++)      /* a retried transaction starts over */
        job_free(&c->jobs[i]);
    c->n = 0;
    c->waiting = 0;
    return pl_outbox_scan(t, 0, 0, collect_fn, c);
}

static void job_free(struct job *j)
{
    free(j->tag);
    free(j->from);
    free(j->msg);
    free(j->user);
    free(j->msgid);
    free(j->flags);
    pl_strvec_free(&j->rcpts);
}

const char *syncd_imap_url(const char *user)
{
    return pl_cfg_list_map(sd.cfg->imap_url_list, pl_addr_domain(user));
}

static int do_imap(const struct job *j, char *err, size_t errlen)
{
    struct pl_strbuf login = {0};
    struct pl_imap_login l;
    int matched = 0, rc;

    for (const char *p = sd.imap_login; *p; p++) {
        if (p[0] == '%' && p[1] == 'u') {
            pl_strbuf_adds(&login, j->user);
            p++;
        } else {
            pl_strbuf_addc(&login, *p);
        }
    }
    l.url = syncd_imap_url(j->user);
    l.user = login.s;
    l.password = sd.imap_password ? sd.imap_password : "";
    if (l.url == NULL) {
        pl_strbuf_free(&login);
        snprintf(err, errlen, "no imap_url for this domain any more");
        return PL_OUT_PERM;
    }
    rc = pl_imap_set_flags(&l, j->msgid, j->flags, j->add, 30, &matched, err, errlen);
    if (rc == PL_OUT_OK && matched == 0 && j->attempts < IMAP_WAIT_ATTEMPTS) {
        /* a state released when its target arrived is queued before Dovecot
         * has the message: look again a few times */
        snprintf(err, errlen, "%s not in the mailbox (yet)", j->msgid);
        rc = PL_OUT_TEMP;
    } else if (rc == PL_OUT_OK)
        msg_info("imap: %s %s%s on %s: %d message(s)", j->user, j->add ? "+" : "-", j->flags,
                 j->msgid, matched);
    pl_strbuf_free(&login);
    return rc;
}

struct finish { uint64_t id; int drop; int64_t next; };

static int finish_fn(pl_txn *t, void *ctx)
{
    struct finish *f = ctx;
    int rc = f->drop ? pl_outbox_del(t, f->id) : pl_outbox_retry_later(t, f->id, f->next);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

/* "<a>, <b>" (SMTP: one device since each copy has its own entry; entries
 * queued by older versions may list several) or the IMAP user. */
static void job_rcpts(const struct job *j, char *out, size_t outlen)
{
    struct pl_strbuf b = {0};
    if (j->kind != PL_OB_SMTP)
        pl_strbuf_addf(&b, "imap:%s", j->user);
    for (size_t i = 0; j->kind == PL_OB_SMTP && i < j->rcpts.n; i++)
        pl_strbuf_addf(&b, "%s<%s>", i ? ", " : "", j->rcpts.v[i]);
    snprintf(out, outlen, "%s", b.s ? b.s : "");
    pl_strbuf_free(&b);
}

static int carry_out(struct job *j, int64_t now)
{
    char err[512] = "", to[512];
    struct finish f = {j->id, 1, 0};
    int rc;

    if (j->kind == PL_OB_SMTP)
        rc = pl_smtp_send(sd.reinject_url, sd.hostname, j->from,
                          (const char *const *)j->rcpts.v, j->rcpts.n, j->msg, j->msglen, 30,
                          err, sizeof(err));
    else
        rc = do_imap(j, err, sizeof(err));
    syncd_crash_point("injected");
    job_rcpts(j, to, sizeof(to));
    if (rc == PL_OUT_PERM) {
        msg_warn("outbox %" PRIu64 " (%s) to %s dropped, refused for good: %s", j->id, j->tag,
                 to, err);
    } else if (rc == PL_OUT_TEMP) {
        if ((int64_t)(j->attempts + 1) * sd.retry_time >= sd.max_age) {
            msg_warn("outbox %" PRIu64 " (%s) to %s dropped after %u attempts: %s", j->id, j->tag,
                     to, j->attempts + 1, err);
        } else {
            msg_info("outbox %" PRIu64 " (%s) to %s deferred: %s", j->id, j->tag, to, err);
            f.drop = 0;
            f.next = now + sd.retry_time;
        }
    } else if (j->kind == PL_OB_SMTP) {
        msg_info("outbox %" PRIu64 ": copy for %s to %s handed to Postfix", j->id, j->tag, to);
    }
    if (pl_store_run(sd.store, PL_TXN_SYNC, finish_fn, &f) != PL_OK)
        return -1;
    return f.drop ? 0 : 1;
}

static int exists_fn(pl_txn *t, void *ctx)
{
    char key[24];
    void *v = NULL;
    int rc;
    snprintf(key, sizeof(key), "%020" PRIu64, *(uint64_t *)ctx);
    rc = pl_store_get(t, PL_T_OUTBOX, key, 20, &v, NULL, 0);
    free(v);
    return rc;
}

/* PL_OK if the entry still waits, PL_NOTFOUND if someone carried it out. */
static int still_there(uint64_t id)
{
    return pl_store_run(sd.store, PL_TXN_NOSYNC, exists_fn, &id);
}

unsigned syncd_flush(const char *tag)
{
    struct collect *c = pl_xcalloc(1, sizeof(*c));
    unsigned left = 0;

    c->tag = tag;
    c->now = time(NULL);
    if (pl_store_run(sd.store, PL_TXN_NOSYNC, scan_fn, c) != PL_OK) {
        for (size_t i = 0; i < c->n; i++)
            job_free(&c->jobs[i]);
        free(c);
        return 1;
    }
    left = c->waiting;
    for (size_t i = 0; i < c->n; i++) {
        struct job *j = &c->jobs[i];
        /* housekeeping stops between jobs on a stop: each one may take a
         * while (an SMTP or IMAP server), and the rest waits in the store */
        if (tag == NULL && pl_server_stopping()) {
            job_free(j);
            continue;
        }
        if (claim(j->id)) {           /* else another thread is on it: still waiting */
            int rc = still_there(j->id);
            if (rc == PL_NOTFOUND || (rc == PL_OK && carry_out(j, c->now) == 0)) {
                if (left > 0)         /* done, by us or by another thread meanwhile */
                    left--;
            }
            unclaim(j->id);
        }
        job_free(j);
    }
    free(c);
    return tag ? left : 0;
}
