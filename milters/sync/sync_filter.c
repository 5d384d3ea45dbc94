/* sync_filter.c -- the postlink-sync milter's callbacks.  Per message it
 * decides one of three things at end of message:
 *   - a control from the user's own authenticated device (or a sync peer)
 *     sent to the user's address: validated (5xx if malformed) and
 *     re-routed to postlink-syncd, which applies it and fans it out in one
 *     transaction before it answers Postfix (the milter itself never
 *     commits a control, so a tempfail can never lose a fan-out);
 *   - a control sent directly from one of the user's devices to another
 *     (peer to peer): delivered as sent, and a copy routed to postlink-syncd;
 *   - anything else: postlink's sync headers are stripped unless the
 *     session may set them, the Message-ID is recorded as seen for each
 *     enabled recipient (releasing held controls, whose state then rides on
 *     the mail as X-Postlink-State), and the mail is also addressed to each
 *     of the recipient's registered devices. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "address.h"
#include "control.h"
#include "device.h"
#include "header.h"
#include "log.h"
#include "strutil.h"
#include "peerq.h"
#include "route.h"
#include "sync.h"
#include "sync_milter.h"

#define ADDRMAX 320
#define MAX_SYNC_HEADERS 200     /* more in one message is abuse: 550 */

struct msg {
    char sender[ADDRMAX];            /* canonical MAIL FROM, "" for <> */
    char auth[ADDRMAX];              /* canonical SASL login, "" if none */
    struct pl_strvec rcpt_raw;       /* RCPT TO as given (with <>) */
    struct pl_strvec rcpt;           /* canonical, no <> */
    struct pl_headers hs;            /* only the fields postlink looks at */
    size_t nsync;                    /* sync header fields seen */
    int peer_cert;                   /* sent by a sync peer known by its certificate */
};

struct conn {
    int peer;                        /* client listed in sync_peers */
    char addr[64];
    unsigned port;                   /* the client's port: ties policyd's record to us */
    struct msg *m;
};

static const char *const kept_headers[] = {
    "Message-ID", "From", "To", "Cc", "Date", "Subject", NULL,
};

/* ---- helpers ------------------------------------------------------------ */

static int enabled(const char *addr)
{
    return strchr(addr, '@') && pl_conf_domain_enabled(sm.conf, pl_addr_domain(addr));
}

static int is_agent_rcpt(const char *addr)
{
    return strcasecmp(pl_addr_domain(addr), sm.transport_domain) == 0;
}

void sync_agent_rcpt(const char *user, const char *token, char *out, size_t outlen)
{
    char local[ADDRMAX], *at;
    snprintf(local, sizeof(local), "%s", user);
    if ((at = strrchr(local, '@')) != NULL)
        *at = '=';
    snprintf(out, outlen, "<%s+%s@%s>", local, token, sm.transport_domain);
}

struct devq { const char *user, *addr; int is; };

static int devq_fn(pl_txn *t, void *ctx)
{
    struct devq *q = ctx;
    int rc = pl_device_is(t, q->user, q->addr);
    q->is = rc == PL_OK;
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

/* addr is user or one of user's devices; -1 on a store error. */
static int own_address(const char *user, const char *addr)
{
    struct devq q = {user, addr, 0};
    if (*addr == '\0')
        return 0;
    if (strcmp(user, addr) == 0)
        return 1;
    return pl_store_run(sm.store, PL_TXN_NOSYNC, devq_fn, &q) == PL_OK ? q.is : -1;
}

static void msg_free(struct msg *m)
{
    if (m == NULL)
        return;
    pl_strvec_free(&m->rcpt_raw);
    pl_strvec_free(&m->rcpt);
    pl_headers_free(&m->hs);
    free(m);
}

static sfsistat tempfail(SMFICTX *ctx, const char *qid, const char *why)
{
    msg_qid(LOG_WARNING, qid, "postlink-sync: %s: tempfail", why);
    smfi_setreply(ctx, "451", "4.3.0", "postlink state store busy, try again later");
    return SMFIS_TEMPFAIL;
}

/* ---- callbacks before the end of the message ---------------------------- */

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
    struct conn *c = pl_xcalloc(1, sizeof(*c));
    (void)host;
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->addr, sizeof(c->addr));
        c->port = ntohs(((struct sockaddr_in *)(void *)sa)->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->addr, sizeof(c->addr));
        c->port = ntohs(((struct sockaddr_in6 *)(void *)sa)->sin6_port);
    } else
        snprintf(c->addr, sizeof(c->addr), "local");
    c->peer = sm.peers.nets.n > 0 && pl_netlist_match(&sm.peers.nets, (const struct sockaddr *)sa);
    smfi_setpriv(ctx, c);
    return SMFIS_CONTINUE;
}

static sfsistat on_envfrom(SMFICTX *ctx, char **argv)
{
    struct conn *c = smfi_getpriv(ctx);
    const char *auth = smfi_getsymval(ctx, "{auth_authen}");

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    msg_free(c->m);
    c->m = pl_xcalloc(1, sizeof(*c->m));
    pl_addr_from_smtp(argv[0] ? argv[0] : "", c->m->sender, ADDRMAX);
    if (auth && *auth)
        pl_addr_canon(auth, c->m->auth, ADDRMAX);
    return SMFIS_CONTINUE;
}

static sfsistat on_envrcpt(SMFICTX *ctx, char **argv)
{
    struct conn *c = smfi_getpriv(ctx);
    char addr[ADDRMAX];

    if (c == NULL || c->m == NULL)
        return SMFIS_TEMPFAIL;
    pl_addr_from_smtp(argv[0] ? argv[0] : "", addr, sizeof(addr));
    if (is_agent_rcpt(addr)) {
        msg_info("postlink-sync: %s: refused recipient %s in the reserved domain %s",
                 c->addr, addr, sm.transport_domain);
        smfi_setreply(ctx, "550", "5.1.1", "this address is reserved for postlink");
        return SMFIS_REJECT;
    }
    pl_strvec_add(&c->m->rcpt_raw, argv[0]);
    pl_strvec_add(&c->m->rcpt, addr);
    return SMFIS_CONTINUE;
}

static sfsistat on_header(SMFICTX *ctx, char *name, char *value)
{
    struct conn *c = smfi_getpriv(ctx);

    if (c == NULL || c->m == NULL)
        return SMFIS_TEMPFAIL;
    if (pl_is_sync_header(name)) {
        if (++c->m->nsync <= MAX_SYNC_HEADERS)       /* count the rest, keep nothing */
            pl_headers_add(&c->m->hs, name, value);
        return SMFIS_CONTINUE;
    }
    for (const char *const *k = kept_headers; *k; k++)
        if (strcasecmp(name, *k) == 0) {
            pl_headers_add(&c->m->hs, name, value);
            break;
        }
    return SMFIS_CONTINUE;
}

/* ---- end of message ----------------------------------------------------- */

struct peer_take { const char *qid, *client; unsigned port; int trusted; char fprint[PL_FPRINT_MAX]; };

static int peer_take_fn(pl_txn *t, void *ctx)
{
    struct peer_take *p = ctx;
    return pl_peerq_take(t, p->qid, p->client, p->port, (int64_t)time(NULL), &p->trusted,
                         p->fprint, sizeof(p->fprint));
}

/* Did postlink-policyd see this message's client present a sync peer's
 * certificate?  Takes (deletes) the record for every message, so none is
 * left for a later message that Postfix gives the same queue id.  1 yes,
 * 0 no, -1 store error. */
static int peer_by_certificate(const struct conn *c, const char *qid)
{
    struct peer_take p = {qid, c->addr, c->port, 0, ""};

    if (qid == NULL || *qid == '\0')
        return 0;
    if (pl_store_run(sm.store, PL_TXN_SYNC, peer_take_fn, &p) != PL_OK)
        return -1;
    if (!p.trusted)
        return 0;
    if (!pl_peers_match_fprint(&sm.peers, p.fprint)) {     /* removed from sync_peers since */
        msg_qid(LOG_INFO, qid, "postlink-sync: certificate %s is no longer in sync_peers", p.fprint);
        return 0;
    }
    msg_qid(LOG_INFO, qid, "postlink-sync: client=%s is a sync peer by certificate %s", c->addr, p.fprint);
    return 1;
}

struct route {
    char user[ADDRMAX], sender[ADDRMAX];   /* vetted: sender is user or user's device */
    const char *rcpt_raw;
    int intercept;
    const char *why;
};

/* Who may this control act for?  Sets r->user, or r->why when nobody. */
static int find_route(const struct conn *c, const struct msg *m, struct route *r)
{
    char from[ADDRMAX] = "";
    const char *fromv = pl_headers_get(&m->hs, "From", 0);
    int ok;

    if (fromv)
        pl_header_addr(fromv, from, sizeof(from));
    /* intercept: sent to the user's own address by the user (or a peer) */
    for (size_t i = 0; i < m->rcpt.n; i++) {
        const char *u = m->rcpt.v[i];
        if (!enabled(u) || !(c->peer || m->peer_cert || strcmp(m->auth, u) == 0))
            continue;
        const char *snd = m->sender;
        if ((ok = own_address(u, snd)) == 0 && (ok = own_address(u, from)) > 0)
            snd = from;
        if (ok < 0)
            return -1;
        if (ok) {
            snprintf(r->user, sizeof(r->user), "%s", u);
            snprintf(r->sender, sizeof(r->sender), "%s", snd);
            r->rcpt_raw = m->rcpt_raw.v[i];
            r->intercept = 1;
            return 0;
        }
        r->why = "sender is not the user or one of the user's devices";
    }
    /* peer to peer: the authenticated user's device writes to another of them */
    if (m->auth[0] && enabled(m->auth)) {
        int to_device = 0;
        for (size_t i = 0; i < m->rcpt.n && !to_device; i++)
            if ((ok = own_address(m->auth, m->rcpt.v[i])) < 0)
                return -1;
            else if (ok && strcmp(m->rcpt.v[i], m->auth) != 0)
                to_device = 1;
        if (to_device) {
            const char *snd = m->sender;
            if ((ok = own_address(m->auth, snd)) == 0 && (ok = own_address(m->auth, from)) > 0)
                snd = from;
            if (ok < 0)
                return -1;
            if (ok) {
                snprintf(r->user, sizeof(r->user), "%s", m->auth);
                snprintf(r->sender, sizeof(r->sender), "%s", snd);
                return 0;
            }
            r->why = "sender is not the user or one of the user's devices";
        }
    }
    if (r->why == NULL)
        r->why = m->auth[0] ? "session is authenticated as another user"
                            : "session is not authenticated";
    return 0;
}

/* May this session's ordinary mail keep sync headers?  Only mail the
 * authenticated user sends to her own address or devices.  (A sync peer's
 * controls are routed; anything else it relays is treated like a
 * stranger's.) */
static int sync_headers_allowed(const struct conn *c, const struct msg *m)
{
    (void)c;
    if (m->auth[0] == '\0' || !enabled(m->auth))
        return 0;
    for (size_t i = 0; i < m->rcpt.n; i++)
        if (own_address(m->auth, m->rcpt.v[i]) <= 0)
            return 0;
    return 1;
}

/* A routed control may go only to the user and the user's devices: other
 * recipients would receive postlink's sync headers from someone else. */
static int only_own_recipients(const struct msg *m, const char *user)
{
    for (size_t i = 0; i < m->rcpt.n; i++) {
        int ok = own_address(user, m->rcpt.v[i]);
        if (ok <= 0)
            return ok;
    }
    return 1;
}

static void strip_sync_headers(SMFICTX *ctx, const struct msg *m, const char *qid, const char *why)
{
    unsigned removed = 0;
    for (const char *const *n = pl_sync_header_names; *n; n++) {
        size_t count = pl_headers_count(&m->hs, *n);
        for (size_t i = count; i > 0; i--)            /* last first: indexes stay valid */
            if (smfi_chgheader(ctx, (char *)*n, (int)i, NULL) == MI_SUCCESS)
                removed++;
    }
    msg_qid(LOG_INFO, qid, "postlink-sync: removed %u postlink sync header(s) from=<%s> auth=%s: %s",
            removed, m->sender, m->auth[0] ? m->auth : "-", why);
}

struct route_op { const char *token, *user, *sender; };

static int route_fn(pl_txn *t, void *ctx)
{
    struct route_op *op = ctx;
    return pl_route_add(t, op->token, op->user, op->sender, time(NULL));
}

static sfsistat reject(SMFICTX *ctx, const struct msg *m, const struct route *r, const char *qid,
                       const char *code, const char *dsn, const char *why)
{
    msg_qid(LOG_INFO, qid, "postlink-sync: reject: control from=<%s> user=%s: %s", m->sender,
            r->user, why);
    smfi_setreply(ctx, (char *)code, (char *)dsn, (char *)why);
    return SMFIS_REJECT;
}

static sfsistat route_control(SMFICTX *ctx, const struct msg *m, const struct route *r,
                              const char *qid)
{
    struct pl_control ctl;
    struct route_op op;
    char err[256], agent[ADDRMAX + 64], token[PL_ROUTE_TOKEN_LEN + 1];
    int rc = pl_control_parse(&m->hs, sm.max_targets, &ctl, err, sizeof(err)), own;

    if (rc == PL_CTL_BAD)
        return reject(ctx, m, r, qid, "550", "5.6.0", err);
    if (ctl.msgid[0] == '\0') {
        pl_control_free(&ctl);
        return reject(ctx, m, r, qid, "550", "5.6.0",
                      "a control message needs a Message-ID (it is applied once per Message-ID)");
    }
    if ((own = only_own_recipients(m, r->user)) <= 0) {
        pl_control_free(&ctl);
        if (own < 0)
            return tempfail(ctx, qid, "cannot read the device registry");
        return reject(ctx, m, r, qid, "550", "5.7.1",
                      "a control message may be sent only to your own address and devices");
    }
    op.token = token;
    op.user = r->user;
    op.sender = r->sender;
    if (pl_route_token(token, sizeof(token)) != PL_OK ||
        pl_store_run(sm.store, PL_TXN_SYNC, route_fn, &op) != PL_OK) {
        pl_control_free(&ctl);
        return tempfail(ctx, qid, "cannot record the route to postlink-syncd");
    }
    sync_agent_rcpt(r->user, token, agent, sizeof(agent));
    if ((r->intercept && smfi_delrcpt(ctx, (char *)r->rcpt_raw) != MI_SUCCESS) ||
        smfi_addrcpt(ctx, agent) != MI_SUCCESS) {
        pl_control_free(&ctl);
        return tempfail(ctx, qid, "cannot change recipients");
    }
    msg_qid(LOG_INFO, qid, "postlink-sync: control %s %s %zu target(s) from=<%s> user=%s%s: to postlink-syncd",
            ctl.msgid, pl_ctl_word_name(ctl.word), ctl.ntargets, r->sender, r->user,
            r->intercept ? "" : " (peer to peer)");
    pl_control_free(&ctl);
    return SMFIS_CONTINUE;
}

struct seen_op {
    const char *user, *msgid;
    struct pl_sync_opts o;
    unsigned flags, released;
    struct pl_strvec devices;
};

static int add_device(void *ctx, const struct pl_device *d)
{
    pl_strvec_add(&((struct seen_op *)ctx)->devices, d->address);
    return 0;
}

static int seen_fn(pl_txn *t, void *ctx)
{
    struct seen_op *op = ctx;
    int rc = PL_OK;
    pl_strvec_free(&op->devices);
    op->flags = op->released = 0;
    if (op->msgid[0])
        rc = pl_sync_seen(t, &op->o, op->user, op->msgid, &op->flags, &op->released);
    if (rc == PL_OK)
        rc = pl_device_list_txn(t, op->user, add_device, op);
    return rc;
}

static int has_rcpt(const struct msg *m, const char *addr)
{
    for (size_t i = 0; i < m->rcpt.n; i++)
        if (strcmp(m->rcpt.v[i], addr) == 0)
            return 1;
    return 0;
}

/* Ordinary mail: record as seen, release held controls, add the devices. */
static sfsistat ordinary(SMFICTX *ctx, struct msg *m, const char *qid)
{
    char msgid[PL_MSGID_MAX + 1] = "", state[64], buf[ADDRMAX + 2];
    const char *mv = pl_headers_get(&m->hs, "Message-ID", 0);
    size_t nusers = 0, nrcpt = m->rcpt.n;
    unsigned same_flags = 0, any_released = 0;
    int mixed = 0;

    if (mv == NULL || pl_msgid_parse(mv, msgid, sizeof(msgid), NULL) != 0)
        msgid[0] = '\0';
    for (size_t i = 0; i < nrcpt; i++) {
        struct seen_op op = {m->rcpt.v[i], msgid, {0, 0, NULL, 0}, 0, 0, {0}};
        size_t added = 0;
        if (!enabled(op.user))
            continue;
        op.o.now = time(NULL);
        op.o.pending_ttl = sm.pending_ttl;
        op.o.hostname = sm.hostname;
        op.o.imap = pl_conf_map_lookup(sm.conf, "imap_url", pl_addr_domain(op.user)) != NULL;
        if (pl_store_run(sm.store, PL_TXN_SYNC, seen_fn, &op) != PL_OK) {
            pl_strvec_free(&op.devices);
            return tempfail(ctx, qid, "cannot record the message as seen");
        }
        if (nusers++ == 0)
            same_flags = op.flags;
        else if (same_flags != op.flags)
            mixed = 1;
        any_released += op.released;
        for (size_t d = 0; d < op.devices.n; d++) {
            const char *dev = op.devices.v[d];
            if (strcmp(dev, m->sender) == 0 || has_rcpt(m, dev))
                continue;
            snprintf(buf, sizeof(buf), "<%s>", dev);
            if (smfi_addrcpt(ctx, buf) != MI_SUCCESS) {
                pl_strvec_free(&op.devices);
                return tempfail(ctx, qid, "cannot add a device recipient");
            }
            pl_strvec_add(&m->rcpt, dev);
            added++;
        }
        if (msgid[0] || added)
            msg_qid(LOG_INFO, qid, "postlink-sync: user=%s message-id=%s state=%u released=%u devices=%zu",
                    op.user, msgid[0] ? msgid : "-", op.flags, op.released, added);
        pl_strvec_free(&op.devices);
    }
    if (nusers > 0 && same_flags != 0 && !mixed) {
        pl_state_format(same_flags, state, sizeof(state));
        if (smfi_addheader(ctx, "X-Postlink-State", state) != MI_SUCCESS)
            return tempfail(ctx, qid, "cannot add X-Postlink-State");
    } else if (mixed) {
        msg_qid(LOG_INFO, qid, "postlink-sync: recipients hold different states; no X-Postlink-State");
    }
    (void)any_released;
    return SMFIS_CONTINUE;
}

static sfsistat on_eom(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);
    const char *qid = smfi_getsymval(ctx, "i");
    struct route r;
    struct msg *m;

    if (c == NULL || (m = c->m) == NULL)
        return SMFIS_TEMPFAIL;
    memset(&r, 0, sizeof(r));
    if (m->nsync > MAX_SYNC_HEADERS) {
        msg_qid(LOG_INFO, qid, "postlink-sync: reject: %zu postlink sync headers from=<%s>",
                m->nsync, m->sender);
        smfi_setreply(ctx, "550", "5.7.1", "too many X-Control/X-Postlink header fields");
        return SMFIS_REJECT;
    }
    if (sm.peers.nfp > 0 && (m->peer_cert = peer_by_certificate(c, qid)) < 0)
        return tempfail(ctx, qid, "cannot read the sync peer record");
    if (pl_headers_count(&m->hs, "X-Control") > 0) {
        if (find_route(c, m, &r) != 0)
            return tempfail(ctx, qid, "cannot read the device registry");
        if (r.user[0])
            return route_control(ctx, m, &r, qid);
        msg_qid(LOG_INFO, qid, "postlink-sync: X-Control from=<%s> ignored: %s", m->sender, r.why);
        strip_sync_headers(ctx, m, qid, r.why);
    } else if (m->nsync > 0 && !sync_headers_allowed(c, m)) {
        strip_sync_headers(ctx, m, qid, m->auth[0] ? "sender may not set them for these recipients"
                                                   : "session is not authenticated");
    }
    return ordinary(ctx, m, qid);
}

static sfsistat on_abort(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);
    if (c) {
        msg_free(c->m);
        c->m = NULL;
    }
    return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX *ctx)
{
    struct conn *c = smfi_getpriv(ctx);
    if (c) {
        msg_free(c->m);
        free(c);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static sfsistat on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                             unsigned long f2, unsigned long f3, unsigned long *pf0,
                             unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    (void)ctx;
    (void)f2;
    (void)f3;
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT);
    /* only the stages we use: no HELO, DATA, body or unknown commands */
    *pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH);
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

struct smfiDesc sync_filter_desc = {
    .xxfi_name = "postlink-sync",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .xxfi_connect = on_connect,
    .xxfi_envfrom = on_envfrom,
    .xxfi_envrcpt = on_envrcpt,
    .xxfi_header = on_header,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
    .xxfi_negotiate = on_negotiate,
};
