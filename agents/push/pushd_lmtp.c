/* pushd_lmtp.c -- postlink-pushd's LMTP side: Postfix's lmtp(8) client
 * (mailbox_transport or transport_maps) hands it mail for push users; each
 * recipient's copy is put in the push store for every device the user has
 * and committed durably before the recipient gets its 250.  A store
 * failure answers 4xx, so Postfix keeps the mail and retries; a recipient
 * without a device is refused at RCPT (5xx: Postfix bounces it) rather
 * than accepted into nowhere. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "crash_point.h"
#include "header.h"
#include "log.h"
#include "push_intake.h"
#include "pushd.h"
#include "strutil.h"

/* How long a delivery is recognised when Postfix repeats it: above
 * Postfix's maximal_queue_lifetime (5d). */
#define PIN_TTL (7 * 86400)

/* Test hook: POSTLINK_PUSHD_CRASH_FILE names a file holding a step name;
 * at that step the process kills itself (lib/crash_point.h). */
void pushd_crash_point(const char *step)
{
    pl_crash_point("POSTLINK_PUSHD_CRASH_FILE", step);
}

struct ndev_q { const char *user; unsigned n; };

static int count_dev(void *ctx, const struct pl_pdev *d)
{
    struct ndev_q *q = ctx;
    (void)d;
    q->n++;
    return 0;
}

static int ndev_fn(pl_txn *t, void *ctx)
{
    struct ndev_q *q = ctx;
    q->n = 0;
    return pl_pdev_list(t, q->user, count_dev, q);
}

const char *pushd_check_rcpt(void *ctx, const char *rcpt)
{
    static _Thread_local char reply[PL_LMTP_REPLY_MAX];
    char user[PL_ADDR_SIZE];
    struct ndev_q q = {user, 0};
    (void)ctx;
    if (pl_addr_check(rcpt) != NULL || pl_addr_canon(rcpt, user, sizeof(user)) != 0) {
        snprintf(reply, sizeof(reply), "550 5.1.3 <%.200s>: not an address postlink-pushd "
                 "takes (local@domain)", rcpt);
        return reply;
    }
    if (pl_store_run(pd.store, PL_TXN_NOSYNC, ndev_fn, &q) != PL_OK)
        return "451 4.3.0 postlink push store busy, try again later";
    if (q.n == 0) {
        snprintf(reply, sizeof(reply), "550 5.1.1 <%.200s>: no push device is registered for "
                 "this user (postlinkctl push device add)", rcpt);
        return reply;
    }
    return NULL;
}

struct put_q {
    struct pl_pmsg_in in;
    struct pl_pmsg m;
    char digest[PL_PIN_DIGEST_LEN + 1];
    int repeat;                     /* Postfix repeated a delivery already stored */
};

/* Store the message and its receipt, or find the receipt of the same
 * delivery (Postfix did not see our 250 and tried again). */
static int put_fn(pl_txn *t, void *ctx)
{
    struct put_q *p = ctx;
    int64_t now = time(NULL);
    int rc = pl_pin_get(t, p->in.user, p->digest, now - PIN_TTL, p->m.id, sizeof(p->m.id));
    p->repeat = rc == PL_OK;
    if (rc != PL_NOTFOUND)
        return rc;
    if ((rc = pl_pmsg_put(t, &p->in, now, &p->m)) == PL_OK &&
        (rc = pl_pin_put(t, p->in.user, p->digest, p->m.id, now)) == PL_OK)
        pushd_crash_point("before-commit");
    return rc;
}

void pushd_deliver(void *ctx, const struct pl_lmtp_envelope *env,
                   char (*replies)[PL_LMTP_REPLY_MAX])
{
    struct pl_headers hs = {0};
    int64_t date = 0;
    const char *dv;
    int stored = 0;
    (void)ctx;
    if (pl_headers_parse(&hs, env->msg, env->msglen) == 0 &&
        (dv = pl_headers_get(&hs, "Date", 0)) != NULL && pl_date_parse(dv, &date) != 0)
        date = 0;
    pl_headers_free(&hs);
    for (size_t i = 0; i < env->nrcpts; i++) {
        struct put_q p;
        char user[PL_ADDR_SIZE];
        int rc;
        memset(&p, 0, sizeof(p));
        if (pl_addr_canon(env->rcpts[i], user, sizeof(user)) != 0) {
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "550 5.1.3 not an address");
            continue;
        }
        p.in.user = user;
        p.in.bytes = env->msg;
        p.in.len = env->msglen;
        p.in.date = date;
        p.in.sender = env->sender;
        if (pl_pin_digest(user, env->sender, env->msg, env->msglen, p.digest) != 0)
            rc = PL_ERR;
        else
            rc = pushd_store_run(PL_TXN_SYNC, put_fn, &p, 5000);
        if (rc == PL_OK && p.repeat) {
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "250 2.0.0 <%s> already stored as %s "
                     "(a repeated delivery)", user, p.m.id);
            msg_info("%s: a repeated delivery of %s (from <%s>, %zu bytes): kept once", user,
                     p.m.id, env->sender, env->msglen);
        } else if (rc == PL_OK) {
            pushd_crash_point("after-commit");
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "250 2.0.0 <%s> stored as %s for %u "
                     "device(s)", user, p.m.id, p.m.queued);
            msg_info("%s: stored %s (%zu bytes, from <%s>) for %u device(s)", user, p.m.id,
                     env->msglen, env->sender, p.m.queued);
            stored++;
            pushd_notify_user(user);
        } else if (rc == PL_NOTFOUND) {
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "550 5.1.1 <%s>: no push device is "
                     "registered for this user", user);
        } else {
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "451 4.3.0 postlink push store busy, try "
                     "again later");
            msg_warn("%s: cannot store a message from <%s> (%zu bytes): answered 451",
                     user, env->sender, env->msglen);
        }
    }
    if (stored) {
        pushd_mail_arrived();
        pushd_retain_soon();
    }
}
