/* syncd_deliver.c -- postlink-syncd's LMTP side: each recipient is
 * "<local>=<domain>@<sync_transport_domain>", i.e. one user; the message
 * is a control the postlink-sync milter validated and routed here.  For
 * each: apply it and queue its copies in one transaction, hand the copies
 * to Postfix, and only then answer 250.  A crash or failure before that
 * answers nothing or 4xx, Postfix retries, and the retry finds the control
 * already applied (deduplicated) and only finishes handing over copies. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "control.h"
#include "crash_point.h"
#include "device.h"
#include "header.h"
#include "log.h"
#include "route.h"
#include "strutil.h"
#include "sync.h"
#include "syncd.h"

void syncd_crash_point(const char *step)
{
    pl_crash_point("POSTLINK_SYNCD_CRASH_FILE", step);
}

/* "alice=example.com+TOKEN@sync.postlink.invalid" -> "alice@example.com"
 * and TOKEN (state/route.h). */
static int decode_rcpt(const char *rcpt, char *user, size_t len, char *token, size_t tlen)
{
    const char *at = strrchr(rcpt, '@'), *plus, *eq;
    if (at == NULL || strcasecmp(at + 1, sd.transport_domain) != 0)
        return -1;
    for (plus = at - 1; plus >= rcpt && *plus != '+'; plus--)
        ;
    for (eq = plus - 1; eq >= rcpt && *eq != '='; eq--)
        ;
    if (plus < rcpt || eq < rcpt || (size_t)(at - rcpt) >= len || (size_t)(at - plus) > tlen)
        return -1;
    snprintf(user, len, "%.*s@%.*s", (int)(eq - rcpt), rcpt, (int)(plus - eq - 1), eq + 1);
    snprintf(token, tlen, "%.*s", (int)(at - plus - 1), plus + 1);
    pl_addr_canon(user, user, len);
    return pl_addr_check(user) == NULL ? 0 : -1;
}

struct route_q { const char *token; char user[PL_ADDR_SIZE], sender[PL_ADDR_SIZE]; };

static int route_q_fn(pl_txn *t, void *ctx)
{
    struct route_q *q = ctx;
    return pl_route_get(t, q->token, q->user, sizeof(q->user), q->sender, sizeof(q->sender));
}

/* The user and the sending device the milter vetted for this recipient. */
static int lookup_route(const char *rcpt, char *user, size_t ulen, char *sender, size_t slen)
{
    char u[PL_ADDR_SIZE + PL_ROUTE_TOKEN_LEN + 2], token[PL_ROUTE_TOKEN_LEN + 2];
    struct route_q q;
    int rc;

    if (decode_rcpt(rcpt, u, sizeof(u), token, sizeof(token)) != 0)
        return PL_NOTFOUND;
    q.token = token;
    if ((rc = pl_store_run(sd.store, PL_TXN_NOSYNC, route_q_fn, &q)) != PL_OK)
        return rc;
    if (strcmp(q.user, u) != 0)
        return PL_NOTFOUND;
    snprintf(user, ulen, "%s", q.user);
    snprintf(sender, slen, "%s", q.sender);
    return PL_OK;
}

const char *syncd_check_rcpt(void *ctx, const char *rcpt)
{
    char user[PL_ADDR_SIZE], sender[PL_ADDR_SIZE];
    int rc;
    (void)ctx;
    if ((rc = lookup_route(rcpt, user, sizeof(user), sender, sizeof(sender))) == PL_NOTFOUND) {
        msg_warn("refused <%s>: no route token from postlink-sync for it", rcpt);
        return "550 5.7.1 not a route made by postlink-sync";
    }
    if (rc != PL_OK)
        return "451 4.3.0 postlink state store busy, try again later";
    if (!pl_cfg_list_has(sd.cfg->enabled_domains_list, pl_addr_domain(user)))
        return "550 5.1.2 postlink is not enabled for this domain";
    return NULL;
}

struct apply_op {
    const char *user, *sender;
    const struct pl_control *c;
    const char *const *exclude;
    size_t nexclude;
    struct pl_sync_opts o;
    struct pl_sync_result r;
    int sender_ok;
};

static int apply_fn(pl_txn *t, void *ctx)
{
    struct apply_op *op = ctx;
    int rc;
    if (strcmp(op->sender, op->user) == 0) {
        op->sender_ok = 1;
    } else if ((rc = pl_device_is(t, op->user, op->sender)) == PL_OK) {
        op->sender_ok = 1;
    } else {
        op->sender_ok = 0;
        return rc == PL_NOTFOUND ? PL_OK : rc;
    }
    return pl_sync_control(t, &op->o, op->user, op->sender, op->c, op->exclude, op->nexclude,
                           &op->r);
}

static void deliver_one(const char *rcpt, const struct pl_headers *hs,
                        const struct pl_control *c, char *reply)
{
    struct apply_op op;
    struct pl_strvec ex = {0};
    char user[PL_ADDR_SIZE], sender[PL_ADDR_SIZE], tag[PL_ADDR_SIZE + PL_MSGID_MAX + 2];
    const char *v;
    unsigned left;
    int rc;

    if ((rc = lookup_route(rcpt, user, sizeof(user), sender, sizeof(sender))) != PL_OK) {
        snprintf(reply, PL_LMTP_REPLY_MAX, rc == PL_NOTFOUND
                 ? "550 5.7.1 not a route made by postlink-sync"
                 : "451 4.3.0 postlink state store busy, try again later");
        return;
    }
    for (size_t i = 0; (v = pl_headers_get(hs, "To", i)) != NULL; i++)
        pl_header_addr_list(v, &ex);
    for (size_t i = 0; (v = pl_headers_get(hs, "Cc", i)) != NULL; i++)
        pl_header_addr_list(v, &ex);
    memset(&op, 0, sizeof(op));
    op.user = user;
    op.sender = sender;
    op.c = c;
    op.exclude = (const char *const *)ex.v;
    op.nexclude = ex.n;
    op.o.now = time(NULL);
    op.o.pending_ttl = sd.pending_ttl;
    op.o.hostname = sd.hostname;
    op.o.imap = syncd_imap_url(user) != NULL;
    syncd_crash_point("received");
    rc = pl_store_run(sd.store, PL_TXN_SYNC, apply_fn, &op);
    pl_strvec_free(&ex);
    if (rc != PL_OK) {
        snprintf(reply, PL_LMTP_REPLY_MAX, "451 4.3.0 postlink state store busy, try again later");
        return;
    }
    if (!op.sender_ok) {
        msg_info("control %s from=<%s> user=%s refused: sender is not the user or a device",
                 c->msgid, sender, user);
        snprintf(reply, PL_LMTP_REPLY_MAX,
                 "550 5.7.1 <%.200s> is not a registered device of %.200s", sender, user);
        return;
    }
    syncd_crash_point("committed");
    snprintf(tag, sizeof(tag), "%s %s", user, c->msgid[0] ? c->msgid : "-");
    left = syncd_flush(tag);
    msg_info("control %s %s from=<%s> user=%s: applied=%u unchanged=%u stale=%u pending=%u "
             "duplicate=%u copies=%u version=%lld%s",
             c->msgid[0] ? c->msgid : "-", pl_ctl_word_name(c->word), sender, user,
             op.r.applied, op.r.unchanged, op.r.stale, op.r.pending, op.r.duplicate,
             op.r.copies, (long long)op.r.version, left ? " (copies not yet handed over)" : "");
    if (left) {
        snprintf(reply, PL_LMTP_REPLY_MAX,
                 "451 4.4.0 control applied; %u copies not yet handed to Postfix", left);
        return;
    }
    snprintf(reply, PL_LMTP_REPLY_MAX,
             "250 2.0.0 %s applied=%u pending=%u stale=%u duplicate=%u copies=%u version=%lld",
             pl_ctl_word_name(c->word), op.r.applied, op.r.pending, op.r.stale, op.r.duplicate,
             op.r.copies, (long long)op.r.version);
}

void syncd_deliver(void *ctx, const struct pl_lmtp_envelope *env,
                   char (*replies)[PL_LMTP_REPLY_MAX])
{
    struct pl_headers hs;
    struct pl_control c;
    char err[256];
    int rc;

    (void)ctx;
    memset(&hs, 0, sizeof(hs));
    memset(&c, 0, sizeof(c));
    if (pl_headers_parse(&hs, env->msg, env->msglen) != 0) {
        for (size_t i = 0; i < env->nrcpts; i++)
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "451 4.3.0 out of memory");
        return;
    }
    rc = pl_control_parse(&hs, sd.max_targets, &c, err, sizeof(err));
    for (size_t i = 0; i < env->nrcpts; i++) {
        if (rc == PL_CTL_OK)
            deliver_one(env->rcpts[i], &hs, &c, replies[i]);
        else
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "550 5.6.0 %s",
                     rc == PL_CTL_NONE ? "not a control message (no X-Control)" : err);
    }
    if (rc != PL_CTL_OK)
        msg_info("message from=<%s> refused: %s", env->sender,
                 rc == PL_CTL_NONE ? "no X-Control" : err);
    pl_control_free(&c);
    pl_headers_free(&hs);
}
