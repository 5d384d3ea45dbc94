/* tag_incoming.c -- the tag of mail postlink did not just tag itself.  A
 * tag that does not verify (unknown key, bad signature, fields that do not
 * match -- From, Reply-To, Sender, Subject, To, Cc, Date, In-Reply-To,
 * References, a MIME field or the body changed, added or removed --, too
 * old, several tags, version 1 or 2) is removed with its X-Mail-Id; a
 * Jabber-ID the sender's own program wrote stays, but never yields
 * presence.  A valid tag yields presence only for a mail its sender really
 * sent to these recipients:
 *   - this site's key: the mail-id must be recorded (by tag_outgoing.c) for
 *     the same Message-ID, account and sender, every envelope recipient
 *     must be one of its recipients, and the sender must still be linked
 *     to that account with sharing on;
 *   - a trusted peer site's key vouches only for the peer's own users (not
 *     for mail from this site's domains or for accounts linked here): the
 *     first delivery records the mail-id with its recipients; later ones
 *     must match it.
 * So a tag copied into another mail, or replayed to other recipients,
 * shows nothing. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "address.h"
#include "log.h"
#include "tag_milter.h"

#define FUTURE_SLACK 900                       /* clocks of peer sites may run ahead */

struct chk {
    const struct tag_msg *m;
    const char *mailid;
    const struct pl_tagkey *key;
    int show;
    const char *why;
};

static int check_fn(pl_txn *t, void *ctx)
{
    struct chk *c = ctx;
    const struct tag_msg *m = c->m;
    struct pl_mailid rec;
    struct pl_mlink link;
    int rc;

    c->show = 0;
    c->why = NULL;
    if (c->key->kind == PL_TAGKEY_PEER) {
        /* a peer site vouches for its own users only */
        if (pl_cfg_list_has(tm.cfg->enabled_domains_list, pl_addr_domain(m->from)))
            return c->why = "a peer key signed mail from this site's domain", PL_OK;
        if ((rc = pl_mlink_by_jid(t, m->jabber_id, &link)) == PL_OK)
            return c->why = "a peer key signed mail for an account linked here", PL_OK;
        if (rc != PL_NOTFOUND)
            return rc;
    }
    rc = pl_mailid_get(t, c->mailid, &rec);
    if (rc != PL_OK && rc != PL_NOTFOUND)
        return rc;
    if (rc == PL_NOTFOUND) {
        if (c->key->kind != PL_TAGKEY_PEER)
            return c->why = "mail-id not recorded here", PL_OK;
        memset(&rec, 0, sizeof(rec));           /* a peer site's mail, first seen */
        rec.created = (int64_t)time(NULL);
        snprintf(rec.sender, sizeof(rec.sender), "%s", m->from);
        snprintf(rec.jid, sizeof(rec.jid), "%s", m->jabber_id);
        snprintf(rec.msgid, sizeof(rec.msgid), "%s", m->msgid);
        snprintf(rec.date, sizeof(rec.date), "%s", m->date);
        snprintf(rec.subject, sizeof(rec.subject), "%s", m->subject);
        tag_rcpt_list(m, rec.rcpts, sizeof(rec.rcpts));
        if ((rc = pl_mailid_put(t, c->mailid, &rec)) != PL_OK)
            return rc;
        c->show = 1;
        return PL_OK;
    }
    if (strcmp(rec.msgid, m->msgid) != 0 || strcmp(rec.jid, m->jabber_id) != 0 ||
        strcmp(rec.sender, m->from) != 0)
        return c->why = "the tag belongs to another mail", PL_OK;
    if (!tag_rcpts_in(m, &rec))
        return c->why = "replayed to someone who was not a recipient", PL_OK;
    if (c->key->kind != PL_TAGKEY_PEER) {
        rc = pl_mlink_get(t, rec.sender, &link);
        if (rc != PL_OK && rc != PL_NOTFOUND)
            return rc;
        if (rc == PL_NOTFOUND || strcmp(link.jid, rec.jid) != 0)
            return c->why = "the sender is no longer linked to that account", PL_OK;
        if (!link.share)
            return c->why = "the sender does not share presence", PL_OK;
    }
    c->show = 1;
    return PL_OK;
}

int tag_incoming(pl_mctx *ctx, struct tag_msg *m, const char *qid, char *mailid, char *jid)
{
    const struct pl_tagkey *key = NULL;
    const char *why = NULL;
    int64_t t = 0, now = (int64_t)time(NULL);
    struct chk c;
    struct pl_tagin in;

    if (m->n_tag == 0 && m->n_mailid == 0)
        return 0;
    for (char *p = m->mailid; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (m->n_tag != 1 || m->n_mailid != 1)
        why = "not exactly one X-Postlink-Tag and one X-Mail-Id";
    else if (m->n_jabber != 1 || m->jabber_id[0] == '\0')
        why = "not exactly one valid Jabber-ID";
    else if (m->n_from != 1 || m->from[0] == '\0')
        why = "not exactly one From address";
    else if (m->msgid[0] == '\0')
        why = "no single valid Message-ID";
    else if (!pl_mailid_ok(m->mailid))
        why = "malformed X-Mail-Id";
    else if (m->n_bound > TAG_BOUND_MAX)
        why = "more header fields than a tag binds (1000)";
    else if (tag_input(m, m->jabber_id, m->mailid, &in),
             pl_tag_verify(&tm.keys, m->tag, &in, &t, &key, &why) != 0)
        ;
    else if (t > now + FUTURE_SLACK)
        why = "tag time in the future";
    else if (now - t > tm.max_age)
        why = "tag older than tag_max_age";
    if (why) {
        msg_qid(LOG_INFO, qid, "postlink-tag: removed X-Postlink-Tag/X-Mail-Id from=<%s>: %s",
                m->from, why);
        if (tag_strip(ctx, "X-Postlink-Tag", m->n_tag) != 0 ||
            tag_strip(ctx, "X-Mail-Id", m->n_mailid) != 0)
            return -1;
        return 0;
    }
    if (!tag_has_local(m))
        return 0;                              /* passing through: not ours to annotate */
    memset(&c, 0, sizeof(c));
    c.m = m;
    c.mailid = m->mailid;
    c.key = key;
    if (pl_store_run(tm.store, PL_TXN_SYNC, check_fn, &c) != PL_OK)
        return -1;
    if (!c.show) {
        msg_qid(LOG_INFO, qid, "postlink-tag: valid tag mail-id=%s but no presence: %s", m->mailid, c.why);
        return 0;
    }
    snprintf(mailid, 64, "%s", m->mailid);
    snprintf(jid, TAG_ADDRMAX, "%s", m->jabber_id);
    return 1;
}
