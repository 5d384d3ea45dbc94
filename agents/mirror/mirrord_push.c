/* mirrord_push.c -- postlink-mirrord's push destination (--deliver-to
 * push, capability 5): a mirrored copy goes into the push store of the
 * account's user (state/push.h) instead of to Postfix.  The put and the
 * id's "held" record are one store transaction: a crash before its
 * commit reaches the disk leaves neither (the id is pending and fetched
 * again), after it both -- no duplicate, no loss, no guard needed.  The
 * copy's push reference is its hand-over token, so that a message read on
 * the primary can be withdrawn from the queues of the devices that have
 * not been sent it yet.  In mark mode a new message becomes a short notice
 * (From, Subject, Date); "postlinkctl mirror fetch" stores the whole. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "header.h"
#include "log.h"
#include "mirrord.h"
#include "push.h"
#include "strutil.h"

int mirrord_is_push(const struct pl_maccount *a)
{
    return strcmp(a->deliver_to, "push") == 0;
}

struct putop {
    const struct pl_maccount *a;
    struct pl_pmsg_in in;
    const struct pl_mrec *rec;
    struct pl_pmsg m;
    int no_account;
};

static int put_fn(pl_txn *t, void *ctx)
{
    struct putop *p = ctx;
    struct pl_maccount acc;
    int rc;
    p->no_account = 0;
    if ((rc = pl_maccount_get(t, p->a->user, &acc)) != PL_OK) {
        p->no_account = rc == PL_NOTFOUND;
        return rc;
    }
    if ((rc = pl_pmsg_put(t, &p->in, p->rec->changed, &p->m)) != PL_OK)
        return rc;                  /* PL_NOTFOUND: no device */
    return pl_mrec_put(t, p->a->user, p->rec);
}

/* One header field's value for the notice: "" when absent, control
 * characters as spaces, at most 900 bytes. */
static void field(const struct pl_headers *hs, const char *name, char *out, size_t outlen)
{
    const char *v = pl_headers_get(hs, name, 0);
    size_t n = 0;
    if (outlen > 901)
        outlen = 901;
    for (; v && *v && n + 1 < outlen; v++)
        out[n++] = (unsigned char)*v < 0x20 || *v == 0x7f ? ' ' : *v;
    out[n] = '\0';
}

/* The short notice of mark mode: the original's From, Subject and Date,
 * and how to ask for the whole message. */
static void notice(struct pl_strbuf *b, const struct pl_maccount *a, const struct pl_mrec *rec,
                   const struct pl_headers *hs)
{
    char v[901];
    field(hs, "From", v, sizeof(v));
    pl_strbuf_addf(b, "From: %s\r\n", v[0] ? v : "<>");
    field(hs, "Subject", v, sizeof(v));
    pl_strbuf_addf(b, "Subject: %s\r\n", v);
    field(hs, "Date", v, sizeof(v));
    if (v[0])
        pl_strbuf_addf(b, "Date: %s\r\n", v);
    pl_strbuf_addf(b, "To: <%s>\r\nMessage-ID: <mirror-notice.%s@%s>\r\n", a->user, rec->token,
                   md.hostname);
    if (rec->msgid[0])
        pl_strbuf_addf(b, "X-Postlink-Mirror-Of: %s\r\n", rec->msgid);
    pl_strbuf_addf(b, "X-Postlink-Mirror-Notice: %s\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                      "A message of %llu bytes is on your primary mailbox (%s, id %s).\r\n"
                      "It is not copied here (mirror mode \"mark\"); the whole message:\r\n"
                      "postlinkctl mirror fetch %s %s\r\n",
                   rec->id, rec->size, a->primary, rec->id, a->user, rec->id);
}

int mirrord_push_put(const struct pl_maccount *a, const struct pl_mrec *rec, const char *msg,
                     size_t len, int whole, char *pid, char *why, size_t whylen)
{
    struct pl_headers hs = {0};
    struct pl_strbuf nb = {0};
    struct putop p;
    const char *dv;
    int rc;

    memset(&p, 0, sizeof(p));
    pid[0] = '\0';
    p.a = a;
    p.rec = rec;
    p.in.user = a->user;
    p.in.ref = rec->token;
    if (pl_headers_parse(&hs, msg, len) == 0 && (dv = pl_headers_get(&hs, "Date", 0)) != NULL &&
        pl_date_parse(dv, &p.in.date) != 0)
        p.in.date = 0;
    if (a->mode == PL_MIRROR_MARK && !whole) {
        notice(&nb, a, rec, &hs);
        p.in.bytes = nb.s;
        p.in.len = nb.len;
    } else {
        p.in.bytes = msg;
        p.in.len = len;
    }
    pl_headers_free(&hs);
    /* Written to the OS, not flushed: the primary still holds the message,
     * and the copy and its record commit together, so a machine crash that
     * loses this commit loses both -- the id is pending again and fetched
     * again, never lost, never twice.  The sync's status record (durable,
     * mirrord_main.c) and any device's acknowledgement (durable, in
     * postlink-pushd) flush the log, and with it every copy before them. */
    rc = pl_store_run(md.store, PL_TXN_WRITE_NOSYNC, put_fn, &p);
    pl_strbuf_free(&nb);
    if (rc == PL_OK) {
        snprintf(pid, PL_PID_LEN + 1, "%s", p.m.id);
        return 0;
    }
    if (p.no_account) {
        snprintf(why, whylen, "the account was deleted during the sync");
        return -1;
    }
    if (rc == PL_NOTFOUND)
        snprintf(why, whylen, "%s has no push device: nothing is stored, the ids stay pending "
                 "(postlinkctl push device add)", a->user);
    else
        snprintf(why, whylen, "cannot store the copy of %s in the push store (%s)", rec->id,
                 rc == PL_TEMP ? "busy" : "error");
    return -1;
}

struct wdop { const char *user; const char *const *refs; size_t n; int *found; };

static int withdraw_fn(pl_txn *t, void *ctx)
{
    struct wdop *w = ctx;
    for (size_t i = 0; i < w->n; i++) {
        unsigned n = 0;
        int rc = w->refs[i][0] ? pl_pmsg_withdraw(t, w->user, w->refs[i], &n) : PL_NOTFOUND;
        if (rc != PL_OK && rc != PL_NOTFOUND)
            return rc;
        /* not found: every device has it acknowledged already, or none is left */
        w->found[i] = rc == PL_OK ? (int)n : 0;
    }
    return PL_OK;
}

int mirrord_push_withdraw(const struct pl_maccount *a, const char *const *tokens, size_t n,
                          int *found, char *why, size_t whylen)
{
    struct wdop w = {a->user, tokens, n, found};
    int rc;
    for (size_t i = 0; i < n; i++)
        found[i] = 0;
    if (n == 0)
        return 0;
    rc = pl_store_run(md.store, PL_TXN_SYNC, withdraw_fn, &w);
    if (rc != PL_OK) {
        for (size_t i = 0; i < n; i++)
            found[i] = 0;
        snprintf(why, whylen, "the push store: %s", rc == PL_TEMP ? "busy" : "error");
        return -1;
    }
    return 0;
}
