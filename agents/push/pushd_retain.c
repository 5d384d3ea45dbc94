/* pushd_retain.c -- postlink-pushd's retention rule (issue 14, point 7):
 * nothing leaves the store silently.  Every minute each push user's mail
 * is held against push_max_count, push_max_bytes and push_max_age (mail
 * still waiting for a device) and push_processed_age (what devices moved
 * to their processed store).  What is over a limit is handled by the
 * explicit rule push_over_action and logged: "bounce" sends the envelope
 * sender a delivery status notification (RFC 3464) through Postfix and
 * then removes the message (a failed hand-over keeps it for the next
 * round); "drop" removes it.  Only the queues of devices that were not
 * sent the message lose it (a device that was keeps it until it
 * acknowledges, a processed store keeps its copy), and no bounce goes out
 * when a device has it.  Processed entries over their age are dropped.
 * Mail from the null sender is never bounced.  Runs in a thread of its
 * own, so a slow bounce holds up nothing else. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "header.h"
#include "log.h"
#include "mailout.h"
#include "pushd.h"
#include "server.h"
#include "strutil.h"

#define OVER_MAX 256                    /* messages handled per user and round */
#define HEADER_MAX (32 * 1024)          /* of the original in a bounce */

struct over_item {
    struct pl_pmsg m;
    char device[PL_PNAME_MAX + 1];
    enum pl_push_over why;
};

struct over_list { struct over_item *it; size_t n; };

struct users { char (*u)[PL_ADDR_SIZE]; size_t n, cap; };

static int user_one(void *ctx, const struct pl_pdev *d)
{
    struct users *us = ctx;
    if (us->n && strcmp(us->u[us->n - 1], d->user) == 0)
        return 0;                       /* devices come by user */
    if (us->n == us->cap) {
        us->cap = us->cap ? us->cap * 2 : 64;
        us->u = realloc(us->u, us->cap * sizeof(*us->u));
        if (us->u == NULL)
            return PL_ERR;
    }
    snprintf(us->u[us->n++], PL_ADDR_SIZE, "%s", d->user);
    return 0;
}

static int users_fn(pl_txn *t, void *ctx)
{
    struct users *us = ctx;
    us->n = 0;
    return pl_pdev_list(t, NULL, user_one, us);
}

static int over_one(void *ctx, const struct pl_pmsg *m, const char *device, int64_t when,
                    enum pl_push_over why)
{
    struct over_list *l = ctx;
    (void)when;
    if (l->n >= OVER_MAX)
        return 1;
    l->it[l->n].m = *m;
    snprintf(l->it[l->n].device, sizeof(l->it[0].device), "%s", device);
    l->it[l->n].why = why;
    l->n++;
    return 0;
}

struct over_q { const char *user; const struct pl_push_limits *lim; int64_t now;
                struct over_list *l; };

static int over_fn(pl_txn *t, void *ctx)
{
    struct over_q *q = ctx;
    int rc;
    q->l->n = 0;
    rc = pl_push_over(t, q->user, q->lim, q->now, over_one, q->l);
    return rc < 0 ? rc : PL_OK;
}

struct get_q { const char *id; void *bytes; size_t len; };

static int get_fn(pl_txn *t, void *ctx)
{
    struct get_q *g = ctx;
    return pl_pmsg_get(t, g->id, &g->bytes, &g->len);
}

struct exp_q { const char *id; int apply; unsigned waiting; int reached; };

static int exp_fn(pl_txn *t, void *ctx)
{
    struct exp_q *e = ctx;
    int rc = pl_pmsg_expire(t, e->id, e->apply, &e->waiting, &e->reached);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

static const char *why_text(enum pl_push_over w)
{
    switch (w) {
    case PL_OVER_COUNT: return "push_max_count";
    case PL_OVER_BYTES: return "push_max_bytes";
    case PL_OVER_AGE: return "push_max_age";
    default: return "push_processed_age";
    }
}

/* The notification to the sender: a human part, the machine part and the
 * original's header (RFC 3464, RFC 6522). */
static char *bounce_text(const struct pl_cfg *cfg, const struct over_item *it,
                         const char *orig, size_t olen, size_t *len)
{
    struct pl_headers hs = {0};
    size_t hlen = olen, n;
    char date[64], boundary[64], *out;
    time_t now = time(NULL);
    struct tm tm;
    if (pl_headers_parse(&hs, orig, olen) == 0 && hs.body_offset <= olen)
        hlen = hs.body_offset;
    pl_headers_free(&hs);
    if (hlen > HEADER_MAX)
        hlen = HEADER_MAX;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(boundary, sizeof(boundary), "postlink-%s", it->m.id);
    n = 4096 + hlen;
    out = pl_xmalloc(n);
    snprintf(out, n,
             "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
             "To: <%s>\r\n"
             "Subject: Undelivered Mail Returned to Sender\r\n"
             "Date: %s\r\n"
             "Auto-Submitted: auto-replied\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "  boundary=\"%s\"\r\n"
             "\r\n"
             "--%s\r\n"
             "Content-Type: text/plain; charset=us-ascii\r\n"
             "\r\n"
             "Your message to <%s> was kept for the recipient's devices, but not\r\n"
             "all of them fetched it before a limit of this server was reached\r\n"
             "(%s), so it was removed.  Its header follows.\r\n"
             "\r\n"
             "--%s\r\n"
             "Content-Type: message/delivery-status\r\n"
             "\r\n"
             "Reporting-MTA: dns; %s\r\n"
             "\r\n"
             "Final-Recipient: rfc822; %s\r\n"
             "Action: failed\r\n"
             "Status: %s\r\n"
             "Diagnostic-Code: x-postlink; not fetched by any device before %s\r\n"
             "\r\n"
             "--%s\r\n"
             "Content-Type: text/rfc822-headers\r\n"
             "\r\n",
             pd.hostname, it->m.sender, date, boundary, boundary, it->m.user,
             why_text(it->why), boundary, pd.hostname, it->m.user,
             it->why == PL_OVER_AGE ? "5.4.7" : "5.2.2", why_text(it->why), boundary);
    (void)cfg;
    *len = strlen(out);
    memcpy(out + *len, orig, hlen);
    *len += hlen;
    *len += (size_t)snprintf(out + *len, n - *len, "\r\n--%s--\r\n", boundary);
    return out;
}

/* One message over a limit: it leaves the queues of the devices that were
 * not sent it; devices that were keep it until they acknowledge (and
 * processed stores keep theirs).  Bounced to the sender when the rule
 * says so, there is a sender, and no device has it.  0, or -1 when the
 * bounce could not be handed over (the message stays for the next round). */
static int handle_queued(const struct pl_cfg *cfg, const struct over_item *it)
{
    struct exp_q e = {it->m.id, 0, 0, 0};
    int bounce;
    char err[512] = "";
    if (pl_store_run(pd.store, PL_TXN_NOSYNC, exp_fn, &e) != PL_OK)
        return -1;
    if (e.waiting == 0)
        return 0;                   /* every device that has to receive it was sent it */
    bounce = strcmp(cfg->push_over_action, "bounce") == 0 && it->m.sender[0] && !e.reached;
    if (bounce) {
        struct get_q g = {it->m.id, NULL, 0};
        const char *rcpt = it->m.sender;
        char *text;
        size_t len;
        int rc;
        if (pl_store_run(pd.store, PL_TXN_NOSYNC, get_fn, &g) != PL_OK)
            return -1;
        text = bounce_text(cfg, it, g.bytes, g.len, &len);
        free(g.bytes);
        rc = pl_smtp_send(cfg->reinject_url, pd.hostname, "", &rcpt, 1, text, len, 60, err,
                          sizeof(err));
        free(text);
        if (rc == PL_OUT_TEMP) {
            msg_warn("%s: message %s over %s: cannot hand its bounce to <%s> to Postfix "
                     "(%s): kept for the next round", it->m.user, it->m.id,
                     why_text(it->why), it->m.sender, err);
            return -1;
        }
    }
    e.apply = 1;
    if (pl_store_run(pd.store, PL_TXN_SYNC, exp_fn, &e) != PL_OK)
        return -1;
    msg_warn("%s: message %s from <%s> (%" PRIu64 " bytes) is over %s before every device "
             "fetched it: taken from %u device queue(s), %s", it->m.user, it->m.id,
             it->m.sender, it->m.size, why_text(it->why), e.waiting,
             e.reached ? "not bounced (a device has it)"
             : !bounce ? "dropped (push_over_action = drop, or the null sender)"
             : err[0] ? "the bounce was refused; dropped" : "bounced to the sender, dropped");
    return 0;
}

struct purge_q { int64_t before; unsigned n; };

static int purge_fn(pl_txn *t, void *ctx)
{
    struct purge_q *p = ctx;
    return pl_pmsg_purge_processed(t, p->before, &p->n);
}

void pushd_retain(void)
{
    const struct pl_cfg *cfg = atomic_load(&pd.cfg);
    struct pl_push_limits lim = {
        .max_count = (unsigned)cfg->push_max_count,
        .max_bytes = (uint64_t)cfg->push_max_bytes,
        .max_age = cfg->push_max_age,
        .processed_age = 0,               /* by one purge below */
    };
    struct users us = {0};
    struct over_list l = {pl_xmalloc(OVER_MAX * sizeof(*l.it)), 0};
    int64_t now = time(NULL);

    if ((lim.max_count || lim.max_bytes || lim.max_age) &&
        pl_store_run(pd.store, PL_TXN_NOSYNC, users_fn, &us) == PL_OK) {
        for (size_t i = 0; i < us.n && !pl_server_stopping(); i++) {
            struct over_q q = {us.u[i], &lim, now, &l};
            if (pl_store_run(pd.store, PL_TXN_NOSYNC, over_fn, &q) != PL_OK)
                continue;
            for (size_t k = 0; k < l.n; k++)
                if (l.it[k].why != PL_OVER_PROCESSED && handle_queued(cfg, &l.it[k]) != 0)
                    break;
        }
    }
    if (cfg->push_processed_age > 0) {
        struct purge_q p = {now - cfg->push_processed_age, 0};
        if (pl_store_run(pd.store, PL_TXN_SYNC, purge_fn, &p) == PL_OK && p.n)
            msg_info("removed %u processed message(s) older than push_processed_age", p.n);
    }
    free(us.u);
    free(l.it);
}
