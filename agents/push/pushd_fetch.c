/* pushd_fetch.c -- what the device API's requests do with the store
 * (seed Figs. 3-7): a fetch checks its ack, finds the message asked for
 * and the one after it, and checks that it fits the device's room; only
 * once the response went out in full (pushd_after) is the message marked
 * sent and the ack applied, in one durable transaction.  A response that
 * fails changes nothing, so asking again gives the same message.  A wait
 * answers as soon as something is in the device's queue. */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "monotime.h"
#include "pushd.h"
#include "server.h"
#include "strutil.h"

void pushd_reply_header(struct pushd_reply *r, const char *name, const char *fmt, ...)
{
    va_list ap;
    if (r->nhdr >= PUSHD_HDR_MAX)
        return;
    snprintf(r->hdr[r->nhdr].name, sizeof(r->hdr[0].name), "%s", name);
    va_start(ap, fmt);
    vsnprintf(r->hdr[r->nhdr].value, sizeof(r->hdr[0].value), fmt, ap);
    va_end(ap);
    r->nhdr++;
}

void pushd_reply_text(struct pushd_reply *r, unsigned status, const char *error,
                      const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    strcat(buf, "\n");
    free(r->body);
    r->status = status;
    r->error = error;
    r->body = pl_xstrdup(buf);
    r->len = strlen(buf);
    r->type = "text/plain; charset=utf-8";
}

static void http_date(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

struct auth_q { const char *token; struct pl_pdev *d; };

static int auth_fn(pl_txn *t, void *ctx)
{
    struct auth_q *q = ctx;
    return pl_pdev_auth(t, q->token, q->d);
}

int pushd_auth(const char *token, struct pl_pdev *d)
{
    struct auth_q q = {token, d};
    return pl_store_run(pd.store, PL_TXN_NOSYNC, auth_fn, &q);
}

/* ---- fetch ------------------------------------------------------------- */

struct fetch_q {
    const struct pl_preq *q;
    const struct pl_pdev *d;
    int ack_rc;
    int get_rc;
    struct pl_pmsg m;
    char state;
    char next[PL_PID_LEN + 1];
    char first[PL_PID_LEN + 1];     /* when get's id is not in the queue */
    int64_t room_bytes, room_count; /* in force for this request */
    int fits;
    int no_memory;                  /* push_memory_limit reached: 503 */
    uint64_t mem;                   /* reserved for bytes */
    uint64_t mem_limit;
    void *bytes;
    size_t len;
};

/* the request's ack of id is to be applied after the response */
static int acked_here(const struct fetch_q *f, const char *id)
{
    return f->q->has_ack && f->ack_rc == PL_OK && strcmp(f->q->ack, id) == 0;
}

/* m is the first waiting and acknowledged by this request: the one after
 * it instead (next holds its id on entry) */
static int first_after(pl_txn *t, const struct fetch_q *f, struct pl_pmsg *m, char *state,
                       char *next)
{
    char id[PL_PID_LEN + 1];
    if (next[0] == '\0')
        return PL_NOTFOUND;
    memcpy(id, next, sizeof(id));
    return pl_pq_get(t, f->d, id, m, state, next);
}

static int fetch_fn(pl_txn *t, void *ctx)
{
    struct fetch_q *f = ctx;
    struct pl_pdev cur;
    int rc;
    free(f->bytes);
    f->bytes = NULL;
    if (f->mem)                     /* a retry of the transaction */
        pushd_mem_release(f->mem);
    f->mem = 0;
    f->no_memory = 0;
    f->ack_rc = PL_OK;
    f->get_rc = PL_NOTFOUND;
    f->first[0] = '\0';
    /* the room in force: reported now, else the device's record as it is
     * now (read while the device is held, not at authentication) */
    if ((rc = pl_pdev_get(t, f->d->user, f->d->name, &cur)) != PL_OK)
        return rc;                  /* PL_NOTFOUND: deleted meanwhile */
    if (strcmp(cur.sel, f->d->sel) != 0)
        return PL_NOTFOUND;         /* deleted and added again: another token */
    f->room_bytes = f->q->room >= 0 ? f->q->room : cur.room_bytes;
    f->room_count = f->q->slots >= 0 ? f->q->slots : cur.room_count;
    if (f->q->has_ack && (f->ack_rc = pl_pq_ack_check(t, f->d, f->q->ack)) < 0)
        return f->ack_rc;
    if (f->ack_rc != PL_OK && f->ack_rc != PL_PACK_DONE)
        return PL_OK;                       /* refused: nothing else is looked at */
    if (!f->q->has_get)
        return PL_OK;
    rc = pl_pq_get(t, f->d, f->q->get, &f->m, &f->state, f->next);
    if (rc < 0)
        return rc;
    /* get=first with the ack of the first one: the one after it (the
     * acknowledged message is not offered again) */
    if (rc == PL_OK && !f->q->get[0] && acked_here(f, f->m.id))
        rc = first_after(t, f, &f->m, &f->state, f->next);
    if (rc < 0)
        return rc;
    f->get_rc = rc;
    if (rc == PL_NOTFOUND) {
        struct pl_pmsg m1;
        char st, nx[PL_PID_LEN + 1];
        if (f->q->get[0] && (rc = pl_pq_get(t, f->d, NULL, &m1, &st, nx)) < 0)
            return rc;
        if (f->q->get[0] && rc == PL_OK && acked_here(f, m1.id) &&
            (rc = first_after(t, f, &m1, &st, nx)) < 0)
            return rc;
        if (f->q->get[0] && rc == PL_OK)
            memcpy(f->first, m1.id, sizeof(f->first));
        return PL_OK;
    }
    f->fits = (f->room_bytes < 0 || f->m.size <= (uint64_t)f->room_bytes) &&
              f->room_count != 0;
    if (!f->fits)
        return PL_OK;
    if (pushd_mem_try(f->m.size, f->mem_limit) != 0) {
        f->no_memory = 1;           /* never wait inside the transaction */
        return PL_OK;
    }
    f->mem = f->m.size;
    if ((rc = pl_pmsg_get(t, f->m.id, &f->bytes, &f->len)) != PL_OK)
        return rc == PL_NOTFOUND ? PL_ERR : rc;       /* a record without its bytes */
    return PL_OK;
}

static void msg_headers(struct pushd_reply *r, const struct fetch_q *f)
{
    char date[64];
    pushd_reply_header(r, "Postlink-Id", "%s", f->m.id);
    pushd_reply_header(r, "Postlink-Next", "%s", f->next[0] ? f->next : "none");
    pushd_reply_header(r, "Postlink-Size", "%" PRIu64, f->m.size);
    http_date(f->m.date ? f->m.date : f->m.arrived, date, sizeof(date));
    pushd_reply_header(r, "Postlink-Date", "%s", date);
}

void pushd_fetch(const struct pl_preq *q, const struct pl_pdev *d, struct pushd_reply *r,
                 struct pushd_after *a)
{
    struct fetch_q f;
    int rc;
    memset(&f, 0, sizeof(f));
    f.q = q;
    f.d = d;
    f.mem_limit = (uint64_t)atomic_load(&pd.cfg)->push_memory_limit;
    if ((rc = pushd_store_run(PL_TXN_NOSYNC, fetch_fn, &f, 2000)) != PL_OK) {
        free(f.bytes);
        if (f.mem)
            pushd_mem_release(f.mem);
        if (rc == PL_NOTFOUND) {
            pushd_reply_text(r, 401, "unauthorized", "unknown device token");
            return;
        }
        pushd_reply_text(r, 503, "store", "the store is busy; try again");
        pushd_reply_header(r, "Retry-After", "5");
        return;
    }
    if (q->has_ack && f.ack_rc != PL_OK && f.ack_rc != PL_PACK_DONE) {
        /* another user's id is "unknown" too: nothing tells it exists */
        int notsent = f.ack_rc == PL_PACK_NOTSENT;
        pushd_reply_text(r, 409, notsent ? "ack-not-sent" : "ack-unknown",
                         notsent ? "ack=%s: that message was not sent to this device; nothing "
                                   "was changed or sent"
                                 : "ack=%s: no such message for this device; nothing was "
                                   "changed or sent", q->ack);
        msg_warn("device %s/%s (%s): refused ack of %s (%s)", d->user, d->name, d->sel, q->ack,
                 notsent ? "not sent to it" : "unknown");
        return;
    }
    if (q->has_ack && f.ack_rc == PL_OK) {
        a->ack = 1;
        memcpy(a->ack_id, q->ack, sizeof(a->ack_id));
        a->move = q->move;
    }
    a->rep_bytes = q->room;
    a->rep_count = q->slots;
    if (!q->has_get) {
        r->status = 204;
        return;
    }
    if (f.get_rc == PL_NOTFOUND && q->get[0] == '\0') {
        r->status = 204;
        pushd_reply_header(r, "Postlink-Next", "none");
        return;
    }
    if (f.get_rc == PL_NOTFOUND) {
        pushd_reply_text(r, 404, "no-such-message",
                         "get=%s: not waiting for this device (acknowledged, withdrawn or "
                         "unknown); Postlink-Next names the first waiting one", q->get);
        pushd_reply_header(r, "Postlink-Next", "%s", f.first[0] ? f.first : "none");
        return;
    }
    if (!f.fits) {
        pushd_reply_text(r, 507, "storage-full",
                         "message %s needs %" PRIu64 " bytes; the device has room for %s%lld "
                         "bytes and %s%lld messages: report room= (and slots=) to get it",
                         f.m.id, f.m.size, f.room_bytes < 0 ? "any " : "",
                         (long long)(f.room_bytes < 0 ? 0 : f.room_bytes),
                         f.room_count < 0 ? "any " : "",
                         (long long)(f.room_count < 0 ? 0 : f.room_count));
        msg_headers(r, &f);
        return;
    }
    if (f.no_memory) {
        pushd_reply_text(r, 503, "busy", "postlink-pushd is sending as much as "
                         "push_memory_limit allows; try again");
        pushd_reply_header(r, "Retry-After", "1");
        return;
    }
    r->status = 200;
    a->mem = f.mem;                 /* released once the response is done */
    r->body = f.bytes;
    r->len = f.len;
    snprintf(r->type_buf, sizeof(r->type_buf), "%s", f.m.type[0] ? f.m.type : "message/rfc822");
    r->type = r->type_buf;
    msg_headers(r, &f);
    a->sent = 1;
    memcpy(a->sent_id, f.m.id, sizeof(a->sent_id));
    a->sent_size = f.m.size;
}

/* ---- after the response ------------------------------------------------ */

struct after_q { const struct pushd_after *a; int ack_rc, sent_rc; };

/* One transaction: the ack, the sent mark, the room.  It may run again
 * (a deadlock): everything it computes starts from a, which it does not
 * change, and from the store as it is now. */
static int after_fn(pl_txn *t, void *ctx)
{
    struct after_q *x = ctx;
    const struct pushd_after *a = x->a;
    int64_t now = time(NULL);
    struct pl_pdev cur;
    int rc;
    x->ack_rc = x->sent_rc = PL_OK;
    if (a->ack &&
        (x->ack_rc = pl_pq_ack(t, &a->dev, a->ack_id,
                               a->move ? PL_PDISP_MOVE : PL_PDISP_DELETE, now)) < 0)
        return x->ack_rc;
    if (a->sent && (x->sent_rc = pl_pq_sent(t, &a->dev, a->sent_id, now)) < 0)
        return x->sent_rc;
    /* sent in full, but its row went meanwhile (withdrawn, or over a
     * retention limit): the device has it, so its ack must not be refused */
    if (a->sent && x->sent_rc == PL_NOTFOUND &&
        (rc = pl_pack_note(t, &a->dev, a->sent_id, now)) < 0)
        return rc;
    if (a->rep_bytes >= 0 || a->rep_count >= 0 || a->sent) {
        int64_t b, c;
        if ((rc = pl_pdev_get(t, a->dev.user, a->dev.name, &cur)) != PL_OK)
            return rc == PL_NOTFOUND ? PL_OK : rc;        /* the device is gone */
        if (strcmp(cur.sel, a->dev.sel) != 0)
            return PL_OK;           /* deleted and added again: not this device's room */
        b = a->rep_bytes >= 0 ? a->rep_bytes : cur.room_bytes;
        c = a->rep_count >= 0 ? a->rep_count : cur.room_count;
        if (a->sent && b >= 0)
            b = b > (int64_t)a->sent_size ? b - (int64_t)a->sent_size : 0;
        if (a->sent && c > 0)
            c--;
        if (b != cur.room_bytes || c != cur.room_count) {
            cur.room_bytes = b;
            cur.room_count = c;
            if ((rc = pl_pdev_set_room(t, &cur)) < 0)
                return rc;
        }
    }
    return PL_OK;
}

void pushd_after(struct pushd_after *a, int ok)
{
    struct after_q x = {a, 0, 0};
    const struct pl_pdev *d = &a->dev;
    if (!a->have_dev)
        return;
    if (ok && (a->ack || a->sent || a->rep_bytes >= 0 || a->rep_count >= 0)) {
        pushd_crash_point("after-send");
        if (pushd_store_run(PL_TXN_SYNC, after_fn, &x, 5000) != PL_OK)
            msg_error("device %s/%s (%s): cannot record what was sent (%s%s%s): the device "
                      "will be offered it again", d->user, d->name, d->sel,
                      a->sent ? a->sent_id : "", a->sent && a->ack ? ", ack of " : "",
                      a->ack ? a->ack_id : "");
        else {
            pushd_crash_point("after-apply");
            if (a->sent)
                msg_info("device %s/%s: sent %s (%" PRIu64 " bytes)%s", d->user, d->name,
                         a->sent_id, a->sent_size,
                         x.sent_rc == PL_NOTFOUND ? ", withdrawn meanwhile" : "");
            if (a->ack && x.ack_rc == PL_OK)
                msg_info("device %s/%s: %s %s", d->user, d->name,
                         a->move ? "moved" : "deleted", a->ack_id);
            else if (a->ack && x.ack_rc != PL_PACK_DONE)
                msg_warn("device %s/%s: the ack of %s no longer applies (code %d)", d->user,
                         d->name, a->ack_id, x.ack_rc);
        }
    } else if (!ok && (a->sent || a->ack))
        msg_info("device %s/%s: the response%s%s did not go out in full (the device went "
                 "away or stopped reading): nothing recorded", d->user, d->name,
                 a->sent ? " with " : "", a->sent ? a->sent_id : "");
    if (a->mem)
        pushd_mem_release(a->mem);
    a->mem = 0;
    if (a->busy)
        pushd_dev_release(d->sel);
    a->busy = 0;
}

/* ---- wait -------------------------------------------------------------- */

struct wait_q { const struct pl_pdev *d; int rc; char first[PL_PID_LEN + 1]; };

static int wait_fn(pl_txn *t, void *ctx)
{
    struct wait_q *w = ctx;
    struct pl_pmsg m;
    char st, nx[PL_PID_LEN + 1];
    int rc = pl_pq_get(t, w->d, NULL, &m, &st, nx);
    w->rc = rc;
    if (rc == PL_OK)
        memcpy(w->first, m.id, sizeof(w->first));
    return rc < 0 ? rc : PL_OK;
}

void pushd_wait(const struct pl_preq *q, const struct pl_pdev *d, struct pushd_reply *r)
{
    const struct pl_cfg *cfg = atomic_load(&pd.cfg);
    long long limit = cfg->push_wait_timeout;
    int64_t end;
    struct wait_q w = {d, 0, ""};
    unsigned long gen = pushd_wait_begin(d->sel);
    if (q->timeout >= 0 && q->timeout < limit)
        limit = q->timeout;
    end = pl_now_ms() + limit * 1000;
    for (;;) {
        int64_t left;
        if (pushd_wait_superseded(d->sel, gen)) {
            pushd_wait_end(d->sel, gen);
            r->status = 204;
            pushd_reply_header(r, "Postlink-Next", "none");
            pushd_reply_header(r, "Postlink-Wait", "superseded");
            return;
        }
        if (pl_store_run(pd.store, PL_TXN_NOSYNC, wait_fn, &w) != PL_OK) {
            pushd_wait_end(d->sel, gen);
            pushd_reply_text(r, 503, "store", "the store is busy; try again");
            pushd_reply_header(r, "Retry-After", "5");
            return;
        }
        if (w.rc == PL_OK) {
            pushd_wait_end(d->sel, gen);
            pushd_reply_text(r, 200, NULL, "mail waiting");
            pushd_reply_header(r, "Postlink-Next", "%s", w.first);
            return;
        }
        left = end - pl_now_ms();
        if (left <= 0 || pl_server_stopping())
            break;
        /* woken at once by mail committed here; mail another process put
         * (the mirror) is seen within half a second */
        pushd_mail_wait(left < 500 ? (unsigned)left : 500);
    }
    pushd_wait_end(d->sel, gen);
    if (pl_server_stopping()) {
        pushd_reply_text(r, 503, "stopping", "postlink-pushd is stopping; wait again");
        pushd_reply_header(r, "Retry-After", "2");
        return;
    }
    r->status = 204;
    pushd_reply_header(r, "Postlink-Next", "none");
}
