/* tag_outgoing.c -- tagging: mail submitted on a session authenticated as
 * a linked sender, whose From is that sender, gets Jabber-ID (RFC 7259),
 * a fresh unguessable X-Mail-Id and the signed X-Postlink-Tag (binding
 * From, Reply-To, Sender, Subject, To, Cc, Date, In-Reply-To, References,
 * the MIME fields and the body's hash, tagsig.h); whatever
 * the sender's program wrote in those fields is replaced.  The mail-id is
 * recorded with the Message-ID, Subject, Date and recipients, which is
 * what postlink-xmppd tells the sender when a recipient asks to chat.
 * Mail from senders who are not linked is left alone. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "address.h"
#include "log.h"
#include "tag_milter.h"

struct rec_op { const char *addr, *mailid; struct pl_mailid rec; struct pl_mlink link; int linked; };

static int link_fn(pl_txn *t, void *ctx)
{
    struct rec_op *op = ctx;
    int rc = pl_mlink_get(t, op->addr, &op->link);
    op->linked = rc == PL_OK;
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

static int record_fn(pl_txn *t, void *ctx)
{
    struct rec_op *op = ctx;
    return pl_mailid_put(t, op->mailid, &op->rec);
}

int tag_outgoing(pl_mctx *ctx, struct tag_msg *m, const char *qid, char *mailid, char *jid,
                 int *tagged)
{
    struct rec_op op;
    struct pl_tagin in;
    char tag[600], msgid[1000];

    *tagged = 0;
    if (m->auth[0] == '\0' || !pl_cfg_list_has(tm.cfg->enabled_domains_list, pl_addr_domain(m->auth)))
        return 0;
    memset(&op, 0, sizeof(op));
    op.addr = m->auth;
    if (pl_store_run(tm.store, PL_TXN_SYNC, link_fn, &op) != PL_OK)
        return -1;
    if (!op.linked)
        return 0;
    if (strcmp(m->from, m->auth) != 0) {
        msg_qid(LOG_INFO, qid, "postlink-tag: not tagged: From <%s> is not the authenticated "
                "sender %s", m->from, m->auth);
        return 0;
    }
    if (tm.keys.signer == NULL) {
        msg_qid(LOG_WARNING, qid, "postlink-tag: not tagged: tag_keys_file has no \"sign\" key");
        return 0;
    }
    if (m->msgid[0] == '\0') {
        msg_qid(LOG_INFO, qid, "postlink-tag: not tagged: no (single, valid) Message-ID");
        return 0;
    }
    if (m->n_bound > TAG_BOUND_MAX) {
        msg_qid(LOG_INFO, qid, "postlink-tag: not tagged: more than %d header fields a tag binds "
                "(From, Reply-To, Sender, Subject, To, Cc, Date, In-Reply-To, References, MIME)",
                TAG_BOUND_MAX);
        return 0;
    }
    snprintf(msgid, sizeof(msgid), "%s", m->msgid);
    if (pl_mailid_new(mailid, 64) != PL_OK)
        return -1;
    tag_input(m, op.link.jid, mailid, &in);
    if (pl_tag_make(&tm.keys, (int64_t)time(NULL), &in, tag, sizeof(tag)) != 0)
        return -1;
    op.mailid = mailid;
    op.rec.created = (int64_t)time(NULL);
    snprintf(op.rec.sender, sizeof(op.rec.sender), "%s", m->auth);
    snprintf(op.rec.jid, sizeof(op.rec.jid), "%s", op.link.jid);
    snprintf(op.rec.msgid, sizeof(op.rec.msgid), "%s", msgid);
    snprintf(op.rec.date, sizeof(op.rec.date), "%s", m->date);
    snprintf(op.rec.subject, sizeof(op.rec.subject), "%s", m->subject);
    tag_rcpt_list(m, op.rec.rcpts, sizeof(op.rec.rcpts));
    if (pl_store_run(tm.store, PL_TXN_SYNC, record_fn, &op) != PL_OK)
        return -1;
    if (tag_strip(ctx, "Jabber-ID", m->n_jabber) != 0 || tag_strip(ctx, "X-Mail-Id", m->n_mailid) != 0 ||
        tag_strip(ctx, "X-Postlink-Tag", m->n_tag) != 0 ||
        pl_mf_addheader(ctx, "Jabber-ID", op.link.jid) != 0 ||
        pl_mf_addheader(ctx, "X-Mail-Id", mailid) != 0 ||
        pl_mf_addheader(ctx, "X-Postlink-Tag", tag) != 0)
        return -1;
    *tagged = 1;
    snprintf(jid, TAG_ADDRMAX, "%s", op.link.jid);
    msg_qid(LOG_INFO, qid, "postlink-tag: tagged mail-id=%s sender=%s account=%s key=%s rcpts=%zu",
            mailid, m->auth, op.link.jid, tm.keys.signer->id, m->rcpt.n);
    return op.link.share ? 1 : 0;
}
