/* xmppd_roster.c -- postlink-xmppd's roster: presence subscriptions to the
 * linked accounts (requested when an account is linked, dropped when it is
 * unlinked; RFC 6121: pending until the account approves), and the
 * presence of each, per resource, in a table the lookup thread reads.
 * Changes of a contact's presence are cached in the store too, for
 * postlinkctl messenger list (written after the table's lock is released,
 * so a busy store never holds up a lookup).  Right after a login, a
 * contact whose presence has not come in yet is unknown for
 * LOGIN_GRACE seconds rather than offline. */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "strutil.h"
#include "xmppd.h"

#define MAX_RES 16
#define LOGIN_GRACE 10

struct contact {
    char jid[PL_JID_MAX];
    int sub_to;                      /* we receive its presence */
    int ask;                         /* our request is pending */
    int in_roster;
    int seen;                        /* a presence came in since the login */
    uint64_t res[MAX_RES];           /* resources, by hash of the full name */
    enum pl_presence rp[MAX_RES];
    int nres;
    enum pl_presence cached;         /* last value written to the store */
    int dirty;                       /* cached differs from the store */
};

static struct contact *cs;
static size_t ncs;
static time_t login_time;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t res_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;             /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct contact *find(const char *jid, int add)
{
    for (size_t i = 0; i < ncs; i++)
        if (strcmp(cs[i].jid, jid) == 0)
            return &cs[i];
    if (!add)
        return NULL;
    cs = pl_xrealloc(cs, (ncs + 1) * sizeof(*cs));
    memset(&cs[ncs], 0, sizeof(*cs));
    snprintf(cs[ncs].jid, sizeof(cs[ncs].jid), "%s", jid);
    cs[ncs].cached = PL_PRES_UNKNOWN;
    return &cs[ncs++];
}

static void drop(struct contact *c)
{
    size_t i = (size_t)(c - cs);
    memmove(&cs[i], &cs[i + 1], (ncs - i - 1) * sizeof(*cs));
    ncs--;
}

static enum pl_presence aggregate(const struct contact *c)
{
    int away = 0;
    if (!c->sub_to || (!c->seen && time(NULL) - login_time < LOGIN_GRACE))
        return PL_PRES_UNKNOWN;
    for (int i = 0; i < c->nres; i++) {
        if (c->rp[i] == PL_PRES_ONLINE)
            return PL_PRES_ONLINE;
        away |= c->rp[i] == PL_PRES_AWAY;
    }
    return away ? PL_PRES_AWAY : PL_PRES_OFFLINE;
}

enum pl_presence roster_presence(const char *jid)
{
    char j[PL_JID_MAX];
    enum pl_presence p = PL_PRES_UNKNOWN;
    struct contact *c;

    pl_jid_canon(jid, j, sizeof(j));
    pthread_mutex_lock(&mu);
    if (xd.online && (c = find(j, 0)) != NULL)
        p = aggregate(c);
    pthread_mutex_unlock(&mu);
    return p;
}

int roster_available(const char *jid)
{
    enum pl_presence p = roster_presence(jid);
    return p == PL_PRES_ONLINE || p == PL_PRES_AWAY;
}

/* ---- writing what changed to the store ------------------------------------ */

struct pres_op { char jid[PL_JID_MAX]; enum pl_presence p; };

static int pres_fn(pl_txn *t, void *ctx)
{
    struct pres_op *op = ctx;
    return pl_presence_put(t, op->jid, op->p, (int64_t)time(NULL));
}

/* Called with mu held: note a change for flush(). */
static void cache(struct contact *c)
{
    enum pl_presence p = aggregate(c);
    if (p != c->cached) {
        c->cached = p;
        c->dirty = 1;
    }
}

/* Write the noted changes, outside the lock. */
static void flush(void)
{
    struct pres_op *ops = NULL;
    size_t n = 0;

    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ncs; i++)
        if (cs[i].dirty) {
            ops = pl_xrealloc(ops, (n + 1) * sizeof(*ops));
            snprintf(ops[n].jid, sizeof(ops[n].jid), "%s", cs[i].jid);
            ops[n++].p = cs[i].cached;
            cs[i].dirty = 0;
        }
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < n; i++) {
        if (pl_store_run(xd.store, PL_TXN_WRITE_NOSYNC, pres_fn, &ops[i]) != PL_OK)
            msg_warn("cannot cache the presence of %s (store busy)", ops[i].jid);
        else
            msg_info("presence of %s: %s", ops[i].jid, pl_presence_name(ops[i].p));
    }
    free(ops);
}

void roster_disconnected(void)
{
    pthread_mutex_lock(&mu);
    xd.online = 0;
    for (size_t i = 0; i < ncs; i++) {
        cs[i].nres = 0;
        cs[i].sub_to = 0;             /* unknown until the roster comes back */
        cs[i].seen = 0;
        cache(&cs[i]);
    }
    pthread_mutex_unlock(&mu);
    flush();
}

/* ---- stanzas ---------------------------------------------------------------- */

static void send_presence(const char *to, const char *type)
{
    xmpp_stanza_t *p = xmpp_presence_new(xd.ctx);
    if (to)
        xmpp_stanza_set_to(p, to);
    if (type)
        xmpp_stanza_set_type(p, type);
    xmpp_send(xd.conn, p);
    xmpp_stanza_release(p);
}

static void roster_remove(const char *jid)
{
    xmpp_stanza_t *iq = xmpp_iq_new(xd.ctx, "set", "roster-remove");
    xmpp_stanza_t *q = xmpp_stanza_new(xd.ctx), *item = xmpp_stanza_new(xd.ctx);
    xmpp_stanza_set_name(q, "query");
    xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
    xmpp_stanza_set_name(item, "item");
    xmpp_stanza_set_attribute(item, "jid", jid);
    xmpp_stanza_set_attribute(item, "subscription", "remove");
    xmpp_stanza_add_child_ex(q, item, 0);
    xmpp_stanza_add_child_ex(iq, q, 0);
    xmpp_send(xd.conn, iq);
    xmpp_stanza_release(iq);
}

/* Called with mu held. */
static void apply_item(xmpp_stanza_t *item)
{
    const char *jid = xmpp_stanza_get_attribute(item, "jid");
    const char *sub = xmpp_stanza_get_attribute(item, "subscription");
    const char *ask = xmpp_stanza_get_attribute(item, "ask");
    char j[PL_JID_MAX];
    struct contact *c;

    if (jid == NULL)
        return;
    pl_jid_canon(jid, j, sizeof(j));
    if (sub && strcmp(sub, "remove") == 0) {
        if ((c = find(j, 0)) != NULL)
            drop(c);
        return;
    }
    c = find(j, 1);
    c->in_roster = 1;
    c->sub_to = sub && (strcmp(sub, "to") == 0 || strcmp(sub, "both") == 0);
    c->ask = ask && strcmp(ask, "subscribe") == 0;
    if (!c->sub_to)
        c->nres = 0;
    cache(c);
}

static int on_roster_push(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmpp_stanza_t *q = xmpp_stanza_get_child_by_ns(st, XMPP_NS_ROSTER), *reply;
    const char *from = xmpp_stanza_get_from(st), *id;
    char bare[PL_JID_MAX];
    (void)ud;
    /* RFC 6121 2.1.6: a push comes from our own account (or no "from") */
    if (from) {
        pl_jid_canon(from, bare, sizeof(bare));
        if (strcmp(bare, xd.jid) != 0) {
            msg_warn("ignored a roster push from %s", from);
            return 1;
        }
    }
    pthread_mutex_lock(&mu);
    for (xmpp_stanza_t *i = q ? xmpp_stanza_get_children(q) : NULL; i; i = xmpp_stanza_get_next(i))
        if (xmpp_stanza_get_name(i) && strcmp(xmpp_stanza_get_name(i), "item") == 0)
            apply_item(i);
    pthread_mutex_unlock(&mu);
    flush();
    if ((id = xmpp_stanza_get_id(st)) != NULL) {
        reply = xmpp_iq_new(xd.ctx, "result", id);
        xmpp_send(conn, reply);
        xmpp_stanza_release(reply);
    }
    return 1;
}

static int on_roster_result(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmpp_stanza_t *q = xmpp_stanza_get_child_by_ns(st, XMPP_NS_ROSTER);
    (void)conn;
    (void)ud;
    pthread_mutex_lock(&mu);
    ncs = 0;
    for (xmpp_stanza_t *i = q ? xmpp_stanza_get_children(q) : NULL; i; i = xmpp_stanza_get_next(i))
        if (xmpp_stanza_get_name(i) && strcmp(xmpp_stanza_get_name(i), "item") == 0)
            apply_item(i);
    xd.online = 1;
    login_time = time(NULL);
    pthread_mutex_unlock(&mu);
    flush();
    msg_info("logged in as %s; roster has %zu contact(s)", xd.jid, ncs);
    send_presence(NULL, NULL);          /* initial presence: the server probes our contacts */
    roster_reconcile();
    return 0;
}

static void set_link_sub(const char *jid, const char *sub);

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    const char *from = xmpp_stanza_get_from(st), *type = xmpp_stanza_get_type(st);
    char j[PL_JID_MAX];
    const char *res;
    struct contact *c;
    (void)conn;
    (void)ud;

    if (from == NULL)
        return 1;
    pl_jid_canon(from, j, sizeof(j));
    res = strchr(from, '/') ? strchr(from, '/') + 1 : "";
    if (type && strcmp(type, "unsubscribed") == 0) {
        msg_info("%s refused or revoked the presence subscription", j);
        set_link_sub(j, "refused");
        return 1;
    }
    if (type && strcmp(type, "subscribed") == 0) {
        msg_info("%s approved the presence subscription", j);
        set_link_sub(j, "subscribed");
        return 1;
    }
    if (type && strcmp(type, "subscribe") == 0) {
        msg_info("%s asks to see postlink-xmppd's presence: ignored", j);
        return 1;
    }
    if (type && strcmp(type, "unavailable") != 0)
        return 1;                       /* probe, error, unsubscribe */
    pthread_mutex_lock(&mu);
    if ((c = find(j, 0)) != NULL && c->sub_to) {
        uint64_t h = res_hash(res);
        int i;
        c->seen = 1;
        for (i = 0; i < c->nres && c->res[i] != h; i++)
            ;
        if (type) {                     /* unavailable */
            if (i < c->nres) {
                memmove(&c->res[i], &c->res[i + 1], (size_t)(c->nres - i - 1) * sizeof(c->res[0]));
                memmove(&c->rp[i], &c->rp[i + 1], (size_t)(c->nres - i - 1) * sizeof(c->rp[0]));
                c->nres--;
            }
        } else if (i < MAX_RES) {
            xmpp_stanza_t *sh = xmpp_stanza_get_child_by_name(st, "show");
            char *show = sh ? xmpp_stanza_get_text(sh) : NULL;
            if (i == c->nres) {
                c->res[i] = h;
                c->nres++;
            }
            c->rp[i] = show && strcmp(show, "chat") != 0 ? PL_PRES_AWAY : PL_PRES_ONLINE;
            if (show)
                xmpp_free(xd.ctx, show);
        }
        cache(c);
    }
    pthread_mutex_unlock(&mu);
    flush();
    return 1;
}

void roster_start(xmpp_conn_t *conn)
{
    xmpp_stanza_t *iq = xmpp_iq_new(xd.ctx, "get", "roster-get"), *q = xmpp_stanza_new(xd.ctx);
    xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, NULL);
    xmpp_handler_add(conn, on_roster_push, XMPP_NS_ROSTER, "iq", "set", NULL);
    xmpp_id_handler_add(conn, on_roster_result, "roster-get", NULL);
    xmpp_stanza_set_name(q, "query");
    xmpp_stanza_set_ns(q, XMPP_NS_ROSTER);
    xmpp_stanza_add_child_ex(iq, q, 0);
    xmpp_send(conn, iq);
    xmpp_stanza_release(iq);
}

/* ---- reconciling links and subscriptions ------------------------------------ */

struct sub_op { const char *jid, *sub; };

static int sub_fn(pl_txn *t, void *ctx)
{
    struct sub_op *op = ctx;
    struct pl_mlink l;
    int rc = pl_mlink_by_jid(t, op->jid, &l);
    if (rc == PL_NOTFOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    return pl_mlink_set_sub(t, l.addr, op->sub);
}

static void set_link_sub(const char *jid, const char *sub)
{
    struct sub_op op = {jid, sub};
    if (pl_store_run(xd.store, PL_TXN_SYNC, sub_fn, &op) != PL_OK)
        msg_warn("cannot record the subscription state of %s (will retry)", jid);
}

static int collect(void *ctx, const struct pl_mlink *l)
{
    struct pl_strvec *v = ctx;
    char line[2 * PL_JID_MAX];
    snprintf(line, sizeof(line), "%s %s", l->jid, l->sub);
    pl_strvec_add(v, line);
    return 0;
}

static int links_fn(pl_txn *t, void *ctx)
{
    pl_strvec_free(ctx);
    return pl_mlink_list(t, collect, ctx);
}

void roster_reconcile(void)
{
    struct pl_strvec links = {0};
    char jid[PL_JID_MAX], sub[16];

    if (!xd.online || xd.conn == NULL)
        return;
    if (pl_store_run(xd.store, PL_TXN_SYNC, links_fn, &links) != PL_OK) {
        msg_warn("cannot read the messenger links (will retry)");
        return;
    }
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ncs; i++)
        cs[i].in_roster = 2;            /* 2: not (yet) seen among the links */
    for (size_t i = 0; i < links.n; i++) {
        struct contact *c;
        if (sscanf(links.v[i], "%319s %15s", jid, sub) != 2)
            continue;
        c = find(jid, 0);
        if (c)
            c->in_roster = 1;
        if (c && c->sub_to) {
            if (strcmp(sub, "subscribed") != 0) {
                pthread_mutex_unlock(&mu);
                set_link_sub(jid, "subscribed");
                pthread_mutex_lock(&mu);
            }
        } else if (strcmp(sub, "none") == 0 || (strcmp(sub, "subscribed") == 0 && !(c && c->ask))) {
            /* newly linked, or the roster lost it: ask (again) */
            msg_info("asking %s to share presence", jid);
            send_presence(jid, "subscribe");
            pthread_mutex_unlock(&mu);
            set_link_sub(jid, "pending");
            pthread_mutex_lock(&mu);
        }
    }
    for (size_t i = 0; i < ncs;) {
        if (cs[i].in_roster == 2) {
            msg_info("%s is no longer linked: removing it from the roster", cs[i].jid);
            roster_remove(cs[i].jid);
            drop(&cs[i]);
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < ncs; i++)
        cache(&cs[i]);                  /* e.g. the login grace has passed */
    pthread_mutex_unlock(&mu);
    pl_strvec_free(&links);
    flush();
}
