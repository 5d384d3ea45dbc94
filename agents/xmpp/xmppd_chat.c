/* xmppd_chat.c -- "chat about this mail": a recipient follows the
 * X-Messenger-Chat link, which sends the mail-id to postlink-xmppd's JID.
 * postlink-xmppd checks that the requester's account belongs to a
 * recipient of that mail (the requester's JID is linked to a recipient
 * address, or is that address), then tells the sender, from its own JID,
 * who wants to chat and about which mail (subject, date, recipients, from
 * the store), and tells the requester how to reach the sender.  "group
 * <mail-id>" opens a room on xmpp_muc_service instead and invites the
 * sender and every recipient who is online.  Anything else, an unknown or
 * too old mail-id, or a requester who is not a recipient all get the same
 * answer, so nobody learns which mail-ids exist. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "log.h"
#include "strutil.h"
#include "xmppd.h"

#define NOT_FOUND "postlink: no mail of yours matches that link (or it is too old)."

void chat_send(const char *to, const char *body)
{
    xmpp_stanza_t *m;
    if (xd.conn == NULL)
        return;
    m = xmpp_message_new(xd.ctx, "chat", to, NULL);
    xmpp_message_set_body(m, body);
    xmpp_send(xd.conn, m);
    xmpp_stanza_release(m);
}

/* The first word of the body that is a mail-id, into id. */
static int find_mailid(const char *body, char *id, int *group)
{
    const char *p = body;
    *group = 0;
    while (*p) {
        size_t n;
        while (*p && !isalnum((unsigned char)*p))
            p++;
        n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        if (n == 5 && strncasecmp(p, "group", 5) == 0)
            *group = 1;
        if (n == PL_MAILID_LEN) {
            for (size_t i = 0; i < n; i++)
                id[i] = (char)tolower((unsigned char)p[i]);
            id[n] = '\0';
            if (pl_mailid_ok(id))
                return 1;
        }
        p += n;
    }
    return 0;
}

struct req {
    const char *mailid, *requester;    /* requester: bare JID */
    struct pl_mailid m;
    char addr[PL_JID_MAX];             /* the requester's mail address */
    struct pl_strvec rjids;            /* recipients' linked JIDs */
    int ok;
};

static int rcpt_jid(pl_txn *t, struct req *r, const char *addr)
{
    struct pl_mlink l;
    int rc = pl_mlink_get(t, addr, &l);
    if (rc == PL_OK)
        pl_strvec_add(&r->rjids, l.jid);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

static int req_fn(pl_txn *t, void *ctx)
{
    struct req *r = ctx;
    struct pl_mlink l;
    char *rcpts, *save = NULL;
    int rc;

    r->ok = 0;
    pl_strvec_free(&r->rjids);
    if ((rc = pl_mailid_get(t, r->mailid, &r->m)) == PL_NOTFOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    if ((rc = pl_mlink_by_jid(t, r->requester, &l)) == PL_OK)
        snprintf(r->addr, sizeof(r->addr), "%s", l.addr);
    else if (rc == PL_NOTFOUND)
        snprintf(r->addr, sizeof(r->addr), "%s", r->requester);
    else
        return rc;
    if (!pl_mailid_has_rcpt(&r->m, r->addr) ||
        (int64_t)time(NULL) - r->m.created > xd.tag_max_age)
        return PL_OK;
    r->ok = 1;
    rcpts = pl_xstrdup(r->m.rcpts);
    for (char *a = strtok_r(rcpts, " ", &save); a && rc == PL_OK; a = strtok_r(NULL, " ", &save))
        rc = rcpt_jid(t, r, a);
    free(rcpts);
    return rc;
}

static void invite(const char *room, const char *to, const char *reason)
{
    xmpp_stanza_t *m = xmpp_message_new(xd.ctx, NULL, to, NULL), *x = xmpp_stanza_new(xd.ctx);
    xmpp_stanza_set_name(x, "x");
    xmpp_stanza_set_ns(x, "jabber:x:conference");      /* XEP-0249 direct invitation */
    xmpp_stanza_set_attribute(x, "jid", room);
    xmpp_stanza_set_attribute(x, "reason", reason);
    xmpp_stanza_add_child_ex(m, x, 0);
    xmpp_send(xd.conn, m);
    xmpp_stanza_release(m);
}

/* Join (creating) the room, make it an instant room (servers that lock
 * new rooms until configured), say what it is about, invite. */
static void open_room(struct req *r, const char *about)
{
    char room[PL_JID_MAX + 64], to[PL_JID_MAX + 80];
    xmpp_stanza_t *p, *x, *iq, *q, *form, *m;
    size_t invited = 0;

    snprintf(room, sizeof(room), "mail-%s@%s", r->mailid, xd.muc_service);
    snprintf(to, sizeof(to), "%s/postlink", room);
    p = xmpp_presence_new(xd.ctx);
    x = xmpp_stanza_new(xd.ctx);
    xmpp_stanza_set_to(p, to);
    xmpp_stanza_set_name(x, "x");
    xmpp_stanza_set_ns(x, "http://jabber.org/protocol/muc");
    xmpp_stanza_add_child_ex(p, x, 0);
    xmpp_send(xd.conn, p);
    xmpp_stanza_release(p);

    iq = xmpp_iq_new(xd.ctx, "set", "room-config");
    q = xmpp_stanza_new(xd.ctx);
    form = xmpp_stanza_new(xd.ctx);
    xmpp_stanza_set_to(iq, room);
    xmpp_stanza_set_name(q, "query");
    xmpp_stanza_set_ns(q, "http://jabber.org/protocol/muc#owner");
    xmpp_stanza_set_name(form, "x");
    xmpp_stanza_set_ns(form, "jabber:x:data");
    xmpp_stanza_set_type(form, "submit");
    xmpp_stanza_add_child_ex(q, form, 0);
    xmpp_stanza_add_child_ex(iq, q, 0);
    xmpp_send(xd.conn, iq);
    xmpp_stanza_release(iq);

    m = xmpp_message_new(xd.ctx, "groupchat", room, NULL);
    xmpp_message_set_body(m, about);
    xmpp_send(xd.conn, m);
    xmpp_stanza_release(m);

    invite(room, r->m.jid, about);
    for (size_t i = 0; i < r->rjids.n; i++)
        if (strcmp(r->rjids.v[i], r->m.jid) != 0 &&
            (strcmp(r->rjids.v[i], r->requester) == 0 || roster_available(r->rjids.v[i]))) {
            invite(room, r->rjids.v[i], about);
            invited++;
        }
    msg_info("mail-id %s: group chat %s for %s with %s and %zu recipient(s)", r->mailid, room,
             r->requester, r->m.jid, invited);
}

int chat_on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    const char *type = xmpp_stanza_get_type(st), *from = xmpp_stanza_get_from(st);
    char *body, bare[PL_JID_MAX], id[PL_MAILID_LEN + 1], text[8192];
    struct req r;
    int group;

    (void)conn;
    (void)ud;
    if (from == NULL || (type && (strcmp(type, "error") == 0 || strcmp(type, "groupchat") == 0)))
        return 1;
    if ((body = xmpp_message_get_body(st)) == NULL)
        return 1;
    pl_jid_canon(from, bare, sizeof(bare));
    if (strchr(bare, '@') == NULL || strcmp(bare, xd.jid) == 0) {   /* servers, ourselves */
        xmpp_free(xd.ctx, body);
        return 1;
    }
    if (strlen(body) > 1000 || !find_mailid(body, id, &group)) {
        xmpp_free(xd.ctx, body);
        chat_send(from, "postlink: send the mail-id from the link in the mail (X-Messenger-Chat) "
                        "to chat with its sender; \"group <mail-id>\" opens a room.");
        return 1;
    }
    xmpp_free(xd.ctx, body);
    memset(&r, 0, sizeof(r));
    r.mailid = id;
    r.requester = bare;
    if (pl_store_run(xd.store, PL_TXN_SYNC, req_fn, &r) != PL_OK) {
        chat_send(from, "postlink: the mail store is busy; try again in a minute.");
        pl_strvec_free(&r.rjids);
        return 1;
    }
    if (!r.ok) {
        msg_info("mail-id %s: chat request from %s refused (unknown, too old, or not a recipient)",
                 id, bare);
        chat_send(from, NOT_FOUND);
        pl_strvec_free(&r.rjids);
        return 1;
    }
    snprintf(text, sizeof(text), "postlink: %s (xmpp:%s) would like to chat about your mail "
             "\"%s\" of %s to %s.", r.addr, bare, r.m.subject, r.m.date, r.m.rcpts);
    if (group && xd.muc_service && *xd.muc_service) {
        open_room(&r, text);
        chat_send(from, "postlink: a room is open; the sender and the recipients who are online "
                        "have been invited.");
    } else {
        chat_send(r.m.jid, text);
        snprintf(text, sizeof(text), "postlink: %s has been told. Chat with them at xmpp:%s?message",
                 r.m.sender, r.m.jid);
        chat_send(from, text);
        msg_info("mail-id %s: %s wants to chat with %s; told the sender", id, bare, r.m.jid);
    }
    pl_strvec_free(&r.rjids);
    return 1;
}
