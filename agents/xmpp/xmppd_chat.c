/* xmppd_chat.c -- "chat about this mail": a recipient follows the
 * X-Messenger-Chat link, which sends the mail-id to postlink-xmppd's JID.
 * postlink-xmppd checks that the requester's account belongs to a
 * recipient of that mail (the requester's JID is linked to a recipient
 * address, or is that address), then tells the sender, from its own JID,
 * who wants to chat and about which mail (subject, date, recipients, from
 * the store), and tells the requester how to reach the sender.  "group
 * <mail-id>" opens a room on xmpp_muc_service instead: a new room with a
 * random name, members only, hidden, not kept, no history; the sender, the
 * requester and every recipient named in To/Cc (never a Bcc recipient) who
 * is online become members, one muc#admin request each (Prosody reads only
 * the first item of a request), and each is invited once the server has
 * confirmed that membership; the room is told the subject and date only.  Anything else, an unknown or too old mail-id, a sender
 * who is no longer linked, or a requester who is not a recipient all get
 * the same answer, so nobody learns which mail-ids exist.  Answers are
 * rate-limited (REPLY_GAP) so that two robots cannot ping-pong. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>

#include "address.h"
#include "log.h"
#include "strutil.h"
#include "xmppd.h"

#define NOT_FOUND "postlink: no mail of yours matches that link (or it is too old)."
#define REPLY_GAP 2

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

/* The Subject as a person reads it: RFC 2047 encoded-words decoded to
 * UTF-8 by GMime (the store keeps the field as it came). */
static void readable(const char *raw, char *out, size_t len)
{
    char *d = g_mime_utils_header_decode_text(NULL, raw);
    snprintf(out, len, "%s", d ? d : raw);
    g_free(d);
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
    if (pl_cfg_list_has(xd.cfg->enabled_domains_list, pl_addr_domain(r->m.sender))) {
        /* this site's sender must still be linked to that account (a peer
         * site's sender has no link here) */
        if ((rc = pl_mlink_get(t, r->m.sender, &l)) == PL_NOTFOUND ||
            (rc == PL_OK && strcmp(l.jid, r->m.jid) != 0))
            return PL_OK;
        if (rc != PL_OK)
            return rc;
    }
    r->ok = 1;
    rcpts = pl_xstrdup(r->m.rcpts);
    for (char *a = strtok_r(rcpts, " ", &save); a && rc == PL_OK; a = strtok_r(NULL, " ", &save))
        if (*a != '~')                 /* Bcc recipients are never invited */
            rc = rcpt_jid(t, r, a);
    free(rcpts);
    return rc;
}

static xmpp_stanza_t *child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
    xmpp_stanza_t *c = xmpp_stanza_new(xd.ctx);
    xmpp_stanza_set_name(c, name);
    if (ns)
        xmpp_stanza_set_ns(c, ns);
    xmpp_stanza_add_child_ex(parent, c, 0);
    return c;
}

static void field(xmpp_stanza_t *form, const char *var, const char *value)
{
    xmpp_stanza_t *f = child(form, "field", NULL), *v = child(f, "value", NULL);
    xmpp_stanza_t *text = xmpp_stanza_new(xd.ctx);
    xmpp_stanza_set_attribute(f, "var", var);
    xmpp_stanza_set_text(text, value);
    xmpp_stanza_add_child_ex(v, text, 0);
}

static void send_release(xmpp_stanza_t *st)
{
    xmpp_send(xd.conn, st);
    xmpp_stanza_release(st);
}

static void invite(const char *room, const char *to, const char *reason)
{
    xmpp_stanza_t *m = xmpp_message_new(xd.ctx, NULL, to, NULL);
    xmpp_stanza_t *x = child(m, "x", "jabber:x:conference");      /* XEP-0249 */
    xmpp_stanza_set_attribute(x, "jid", room);
    xmpp_stanza_set_attribute(x, "reason", reason);
    send_release(m);
}

/* ---- group rooms ------------------------------------------------------------
 * A private room (XEP-0045), step by step, each step on the server's answer
 * to the one before: join (creating it) and configure it members only,
 * hidden, temporary, without history; on success, say what it is about and
 * make each invitee a member with a request of its own (retried up to
 * MEMBER_TRIES times); invite each one whose membership the server
 * confirmed (one who was not could not enter: registration-required). */

#define MEMBER_TRIES 3

struct room;
struct member { struct room *room; size_t i; int tries, done; };
struct room {
    char jid[PL_JID_MAX + 64], mailid[PL_MAILID_LEN + 1], requester[PL_JID_MAX];
    char *about;
    struct pl_strvec who;
    struct member *m;
    size_t left, invited;
};

static void room_free(struct room *rm)
{
    pl_strvec_free(&rm->who);
    free(rm->m);
    free(rm->about);
    free(rm);
}

/* The defined condition of an error stanza ("timeout" for none). */
static const char *condition(xmpp_stanza_t *st)
{
    xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(st, "error");
    for (xmpp_stanza_t *c = e ? xmpp_stanza_get_children(e) : NULL; c; c = xmpp_stanza_get_next(c))
        if (xmpp_stanza_get_name(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0)
            return xmpp_stanza_get_name(c);
    return "unknown error";
}

/* An answer from the room itself (not someone guessing the id). */
static int from_room(xmpp_stanza_t *st, const struct room *rm)
{
    const char *from = xmpp_stanza_get_from(st);
    char bare[PL_JID_MAX + 64];
    if (from == NULL)
        return 0;
    pl_jid_canon(from, bare, sizeof(bare));
    return strcmp(bare, rm->jid) == 0;
}

static void member_send(struct member *mb);

static void member_resolved(struct member *mb)
{
    struct room *rm = mb->room;
    mb->done = 1;
    if (--rm->left > 0)
        return;
    msg_info("mail-id %s: room %s for %s: %zu of %zu member(s) confirmed and invited", rm->mailid,
             rm->jid, rm->requester, rm->invited, rm->who.n);
    room_free(rm);
}

static int on_member(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct member *mb = ud;
    struct room *rm = mb->room;
    const char *type = xmpp_stanza_get_type(st), *who = rm->who.v[mb->i];
    (void)conn;
    if (!from_room(st, rm))
        return 1;                          /* keep waiting for the room's answer */
    if (type && strcmp(type, "result") == 0) {
        invite(rm->jid, who, rm->about);
        rm->invited++;
        member_resolved(mb);
    } else if (mb->tries < MEMBER_TRIES) {
        msg_warn("mail-id %s: room %s refused %s as a member (%s); trying again", rm->mailid, rm->jid,
                 who, condition(st));
        member_send(mb);
    } else {
        msg_warn("mail-id %s: room %s refused %s as a member (%s) %d times: not invited", rm->mailid,
                 rm->jid, who, condition(st), mb->tries);
        member_resolved(mb);
    }
    return 0;
}

static void member_send(struct member *mb)
{
    struct room *rm = mb->room;
    char id[PL_JID_MAX + 96];
    xmpp_stanza_t *st, *q, *item;

    snprintf(id, sizeof(id), "member-%s-%zu-%d", rm->jid, mb->i, ++mb->tries);
    st = xmpp_iq_new(xd.ctx, "set", id);
    xmpp_stanza_set_to(st, rm->jid);
    q = child(st, "query", "http://jabber.org/protocol/muc#admin");
    item = child(q, "item", NULL);
    xmpp_stanza_set_attribute(item, "affiliation", "member");
    xmpp_stanza_set_attribute(item, "jid", rm->who.v[mb->i]);
    xmpp_id_handler_add(xd.conn, on_member, id, mb);
    send_release(st);
}

static int on_config(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    struct room *rm = ud;
    const char *type = xmpp_stanza_get_type(st);
    xmpp_stanza_t *m;
    (void)conn;
    if (!from_room(st, rm))
        return 1;
    if (type == NULL || strcmp(type, "result") != 0) {
        msg_warn("mail-id %s: room %s could not be configured members only (%s): nobody invited",
                 rm->mailid, rm->jid, condition(st));
        chat_send(rm->requester, "postlink: the room could not be opened; try again later.");
        room_free(rm);
        return 0;
    }
    m = xmpp_message_new(xd.ctx, "groupchat", rm->jid, NULL);
    xmpp_message_set_body(m, rm->about);
    send_release(m);
    rm->m = pl_xcalloc(rm->who.n, sizeof(*rm->m));
    rm->left = rm->who.n;
    for (size_t i = 0; i < rm->who.n; i++) {
        rm->m[i].room = rm;
        rm->m[i].i = i;
        member_send(&rm->m[i]);
    }
    return 0;
}

static void open_room(struct req *r, const char *about)
{
    char name[PL_MAILID_LEN + 1], to[PL_JID_MAX + 80], id[PL_JID_MAX + 80];
    xmpp_stanza_t *st, *q, *form;
    struct room *rm;

    if (pl_mailid_new(name, sizeof(name)) != PL_OK)
        return;
    rm = pl_xcalloc(1, sizeof(*rm));
    snprintf(rm->jid, sizeof(rm->jid), "chat-%s@%s", name, xd.muc_service);
    pl_jid_canon(rm->jid, rm->jid, sizeof(rm->jid));
    snprintf(rm->mailid, sizeof(rm->mailid), "%s", r->mailid);
    snprintf(rm->requester, sizeof(rm->requester), "%s", r->requester);
    rm->about = pl_xstrdup(about);
    pl_strvec_add(&rm->who, r->m.jid);
    if (strcmp(r->requester, r->m.jid) != 0)
        pl_strvec_add(&rm->who, r->requester);
    for (size_t i = 0; i < r->rjids.n; i++) {
        int dup = 0;
        for (size_t j = 0; j < rm->who.n; j++)
            dup |= strcmp(rm->who.v[j], r->rjids.v[i]) == 0;
        if (!dup && roster_available(r->rjids.v[i]))
            pl_strvec_add(&rm->who, r->rjids.v[i]);
    }

    snprintf(to, sizeof(to), "%s/postlink", rm->jid);
    st = xmpp_presence_new(xd.ctx);
    xmpp_stanza_set_to(st, to);
    child(st, "x", "http://jabber.org/protocol/muc");
    send_release(st);

    snprintf(id, sizeof(id), "config-%s", rm->jid);
    st = xmpp_iq_new(xd.ctx, "set", id);
    xmpp_stanza_set_to(st, rm->jid);
    q = child(st, "query", "http://jabber.org/protocol/muc#owner");
    form = child(q, "x", "jabber:x:data");
    xmpp_stanza_set_type(form, "submit");
    field(form, "FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig");
    field(form, "muc#roomconfig_membersonly", "1");
    field(form, "muc#roomconfig_publicroom", "0");
    field(form, "muc#roomconfig_persistentroom", "0");
    field(form, "muc#roomconfig_historylength", "0");
    field(form, "muc#roomconfig_whois", "moderators");
    xmpp_id_handler_add(xd.conn, on_config, id, rm);
    send_release(st);
    msg_info("mail-id %s: room %s for %s with the sender %s and %zu other recipient(s)", r->mailid,
             rm->jid, r->requester, r->m.jid, rm->who.n - (strcmp(r->requester, r->m.jid) ? 2 : 1));
}

/* At most one answer per key per REPLY_GAP seconds: the key is the
 * requester for help and refusals (what could ping-pong with a robot),
 * the requester and mail-id for a request that is carried out. */
static int too_soon(const char *key)
{
    static char last[8][PL_JID_MAX + PL_MAILID_LEN + 2];
    static time_t when[8];
    static unsigned next;
    time_t now = time(NULL);
    for (unsigned i = 0; i < 8; i++)
        if (strcmp(last[i], key) == 0) {
            if (now - when[i] < REPLY_GAP)
                return 1;
            when[i] = now;
            return 0;
        }
    snprintf(last[next], sizeof(last[next]), "%s", key);
    when[next] = now;
    next = (next + 1) % 8;
    return 0;
}

int chat_on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    const char *type = xmpp_stanza_get_type(st), *from = xmpp_stanza_get_from(st);
    char *body, bare[PL_JID_MAX], id[PL_MAILID_LEN + 1], text[8192], subject[1024];
    char key[PL_JID_MAX + PL_MAILID_LEN + 2];
    struct req r;
    int group;

    (void)conn;
    (void)ud;
    if (from == NULL || (type && (strcmp(type, "error") == 0 || strcmp(type, "groupchat") == 0)))
        return 1;
    if ((body = xmpp_message_get_body(st)) == NULL)
        return 1;
    pl_jid_canon(from, bare, sizeof(bare));
    if (strchr(bare, '@') == NULL || strcmp(bare, xd.jid) == 0) {
        xmpp_free(xd.ctx, body);        /* servers, ourselves */
        return 1;
    }
    if (strlen(body) > 1000 || !find_mailid(body, id, &group)) {
        xmpp_free(xd.ctx, body);
        if (!too_soon(bare))
            chat_send(from, "postlink: send the mail-id from the link in the mail (X-Messenger-Chat) "
                            "to chat with its sender; \"group <mail-id>\" opens a room.");
        return 1;
    }
    xmpp_free(xd.ctx, body);
    snprintf(key, sizeof(key), "%s/%s", bare, id);
    if (too_soon(key))
        return 1;
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
        if (!too_soon(bare))
            chat_send(from, NOT_FOUND);
        pl_strvec_free(&r.rjids);
        return 1;
    }
    readable(r.m.subject, subject, sizeof(subject));
    if (group && xd.muc_service && *xd.muc_service) {
        snprintf(text, sizeof(text), "postlink: %s opened this chat about the mail \"%s\" of %s.",
                 r.addr, subject, r.m.date);
        open_room(&r, text);
        chat_send(from, "postlink: a room is open; the sender and the recipients who are online "
                        "have been invited.");
    } else {
        snprintf(text, sizeof(text), "postlink: %s (xmpp:%s) would like to chat about your mail "
                 "\"%s\" of %s to %s.", r.addr, bare, subject, r.m.date, r.m.rcpts);
        for (char *p = text; (p = strstr(p, " ~")) != NULL; p++)
            memmove(p + 1, p + 2, strlen(p + 2) + 1);      /* the sender may see her Bcc */
        chat_send(r.m.jid, text);
        snprintf(text, sizeof(text), "postlink: %s has been told. Chat with them at xmpp:%s?message",
                 r.m.sender, r.m.jid);
        chat_send(from, text);
        msg_info("mail-id %s: %s wants to chat with %s; told the sender", id, bare, r.m.jid);
    }
    pl_strvec_free(&r.rjids);
    return 1;
}
