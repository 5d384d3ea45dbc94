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

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
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

#define ADDRMAX PL_ADDR_SIZE
#define MAX_SYNC_HEADERS 200     /* more in one message is abuse: 550 */
#define SMTP_LINE_MAX 998        /* RFC 5322 2.1.1; Postfix's smtp/lmtp_line_length_limit */

struct msg {
    char sender[ADDRMAX];            /* canonical MAIL FROM, "" for <> */
    char auth[ADDRMAX];              /* canonical SASL login, "" if none */
    struct pl_strvec rcpt_raw;       /* RCPT TO as given (with <>) */
    struct pl_strvec rcpt;           /* canonical, no <> */
    struct pl_headers hs;            /* only the fields postlink looks at */
    size_t nsync;                    /* sync header fields seen */
    size_t target_line;              /* longest X-Control-Target line as sent */
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
    return strchr(addr, '@') && pl_cfg_list_has(sm.cfg->enabled_domains_list, pl_addr_domain(addr));
}

static int is_agent_rcpt(const char *addr)
{
    return strcasecmp(pl_addr_domain(addr), sm.transport_domain) == 0;
}

int sync_agent_rcpt(const char *user, const char *token, char *out, size_t outlen)
{
    char local[ADDRMAX], *at;
    int n;
    if (strlen(user) >= sizeof(local))
        return -1;
    snprintf(local, sizeof(local), "%s", user);
    if ((at = strrchr(local, '@')) != NULL)
        *at = '=';
    n = snprintf(out, outlen, "<%s+%s@%s>", local, token, sm.transport_domain);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
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

static sfsistat tempfail(pl_mctx *ctx, const char *qid, const char *why)
{
    msg_qid(LOG_WARNING, qid, "postlink-sync: %s: tempfail", why);
    pl_mf_setreply(ctx, "451", "4.3.0", "postlink state store busy, try again later");
    return SMFIS_TEMPFAIL;
}

/* The longest physical line of a header field as the client folded it
 * ("Name: " counts on the first line; CR is not counted). */
static size_t longest_line(const char *name, const char *value)
{
    size_t best = 0, cur = strlen(name) + 2;
    for (const char *p = value; *p; p++) {
        if (*p == '\n') {
            best = cur > best ? cur : best;
            cur = 0;
        } else if (*p != '\r') {
            cur++;
        }
    }
    return cur > best ? cur : best;
}

/* ---- callbacks before the end of the message ---------------------------- */

static sfsistat on_connect(pl_mctx *ctx, const char *host, const struct sockaddr *sa)
{
    struct conn *c = pl_xcalloc(1, sizeof(*c));
    (void)host;
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, c->addr, sizeof(c->addr));
        c->port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, c->addr, sizeof(c->addr));
        c->port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    } else
        snprintf(c->addr, sizeof(c->addr), "local");
    c->peer = sm.peers.nets.n > 0 && pl_netlist_match(&sm.peers.nets, sa);
    pl_mf_setpriv(ctx, c);
    return SMFIS_CONTINUE;
}

static sfsistat on_envfrom(pl_mctx *ctx, char **argv)
{
    struct conn *c = pl_mf_getpriv(ctx);
    const char *auth = pl_mf_getsymval(ctx, "{auth_authen}");

    if (c == NULL)
        return SMFIS_TEMPFAIL;
    msg_free(c->m);
    c->m = pl_xcalloc(1, sizeof(*c->m));
    if (pl_addr_from_smtp(argv[0] ? argv[0] : "", c->m->sender, ADDRMAX) != 0) {
        msg_info("postlink-sync: %s: refused sender of %zu characters (more than %d)",
                 c->addr, strlen(argv[0] ? argv[0] : ""), PL_ADDR_MAX);
        pl_mf_setreply(ctx, "501", "5.1.7", "sender address longer than RFC 5321 allows (254 characters)");
        return SMFIS_REJECT;
    }
    if (auth && *auth && pl_addr_canon(auth, c->m->auth, ADDRMAX) != 0)
        msg_warn("postlink-sync: %s: SASL login of %zu characters is no postlink user: "
                 "treated as unauthenticated", c->addr, strlen(auth));
    return SMFIS_CONTINUE;
}

static sfsistat on_envrcpt(pl_mctx *ctx, char **argv)
{
    struct conn *c = pl_mf_getpriv(ctx);
    char addr[ADDRMAX];

    if (c == NULL || c->m == NULL)
        return SMFIS_TEMPFAIL;
    if (pl_addr_from_smtp(argv[0] ? argv[0] : "", addr, sizeof(addr)) != 0) {
        msg_info("postlink-sync: %s: refused recipient of %zu characters (more than %d)",
                 c->addr, strlen(argv[0] ? argv[0] : ""), PL_ADDR_MAX);
        pl_mf_setreply(ctx, "501", "5.1.3", "recipient address longer than RFC 5321 allows (254 characters)");
        return SMFIS_REJECT;
    }
    if (is_agent_rcpt(addr)) {
        msg_info("postlink-sync: %s: refused recipient %s in the reserved domain %s",
                 c->addr, addr, sm.transport_domain);
        pl_mf_setreply(ctx, "550", "5.1.1", "this address is reserved for postlink");
        return SMFIS_REJECT;
    }
    pl_strvec_add(&c->m->rcpt_raw, argv[0]);
    pl_strvec_add(&c->m->rcpt, addr);
    return SMFIS_CONTINUE;
}

static sfsistat on_header(pl_mctx *ctx, const char *name, const char *value)
{
    struct conn *c = pl_mf_getpriv(ctx);

    if (c == NULL || c->m == NULL)
        return SMFIS_TEMPFAIL;
    if (pl_is_sync_header(name)) {
        if (++c->m->nsync <= MAX_SYNC_HEADERS)       /* count the rest, keep nothing */
            pl_headers_add(&c->m->hs, name, value);
        if (strcasecmp(name, "X-Control-Target") == 0) {
            size_t len = longest_line(name, value);
            if (len > c->m->target_line)
                c->m->target_line = len;
        }
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

static void strip_sync_headers(pl_mctx *ctx, const struct msg *m, const char *qid, const char *why)
{
    unsigned removed = 0;
    for (const char *const *n = pl_sync_header_names; *n; n++) {
        size_t count = pl_headers_count(&m->hs, *n);
        for (size_t i = count; i > 0; i--)            /* last first: indexes stay valid */
            if (pl_mf_chgheader(ctx, *n, (int)i, NULL) == 0)
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

static sfsistat reject(pl_mctx *ctx, const struct msg *m, const struct route *r, const char *qid,
                       const char *code, const char *dsn, const char *why)
{
    msg_qid(LOG_INFO, qid, "postlink-sync: reject: control from=<%s> user=%s: %s", m->sender,
            r->user, why);
    pl_mf_setreply(ctx, code, dsn, why);
    return SMFIS_REJECT;
}

/* Did Postfix make this Message-ID up because the client sent none?  For
 * clients in local_header_rewrite_clients Postfix's cleanup adds
 * "Message-Id: <YYYYMMDDhhmmss.QUEUEID@myhostname>" (or <QUEUEID@myhostname>
 * with enable_long_queue_ids) before the milter sees the headers, so the
 * milter cannot tell it by its position; it tells it by the queue id, which
 * a client cannot know before it sends the message (a wrong guess only
 * refuses its own control).  A Message-ID that a peer site's Postfix added
 * carries that site's queue id and is not recognised here: controls from
 * peers must carry their device's own Message-ID (postlink-sync(8)). */
static int msgid_by_postfix(pl_mctx *ctx, const char *msgid, const char *qid)
{
    const char *local = msgid + 1, *at;
    size_t qlen, llen, i;
    static atomic_int warned;

    (void)ctx;
    if (qid == NULL || *qid == '\0') {
        /* cannot tell: fail closed (Postfix sends macro i by default) */
        if (!atomic_exchange(&warned, 1))
            msg_warn("postlink-sync: Postfix sends no queue id (macro i) at end of message: "
                     "controls are refused; keep i in milter_end_of_data_macros");
        return 1;
    }
    /* By the queue id alone: cleanup writes its own myhostname, which
     * need not be the one this smtpd (macro j) has. */
    if (msgid[0] != '<' || (at = strrchr(msgid, '@')) == NULL)
        return 0;
    qlen = strlen(qid);
    llen = (size_t)(at - local);
    if (llen == qlen)
        return strncmp(local, qid, qlen) == 0;
    if (llen != 15 + qlen || local[14] != '.' || strncmp(local + 15, qid, qlen) != 0)
        return 0;
    for (i = 0; i < 14 && local[i] >= '0' && local[i] <= '9'; i++)
        ;
    return i == 14;
}

/* Postfix's LMTP and SMTP clients break a line longer than 998 characters,
 * inside a Message-ID if need be, and postlink-syncd (or the device) could
 * no longer read the targets: each target gets a field of its own. */
static int targets_one_per_field(pl_mctx *ctx, const struct msg *m, const struct pl_control *ctl)
{
    for (size_t i = pl_headers_count(&m->hs, "X-Control-Target"); i > 0; i--)
        if (pl_mf_chgheader(ctx, "X-Control-Target", (int)i, NULL) != 0)
            return -1;
    for (size_t i = 0; i < ctl->ntargets; i++)
        if (pl_mf_addheader(ctx, "X-Control-Target", ctl->targets[i]) != 0)
            return -1;
    return 0;
}

static sfsistat route_control(pl_mctx *ctx, const struct msg *m, const struct route *r,
                              const char *qid)
{
    struct pl_control ctl;
    struct route_op op;
    char err[256], agent[ADDRMAX + PL_ROUTE_TOKEN_LEN + PL_ADDR_DOMAIN_MAX + 8], token[PL_ROUTE_TOKEN_LEN + 1];
    int rc = pl_control_parse(&m->hs, sm.max_targets, &ctl, err, sizeof(err)), own;

    if (rc == PL_CTL_BAD)
        return reject(ctx, m, r, qid, "550", "5.6.0", err);
    if (ctl.msgid[0] != '\0' && msgid_by_postfix(ctx, ctl.msgid, qid)) {
        msg_qid(LOG_INFO, qid, "postlink-sync: the control's Message-ID %s was added by Postfix",
                ctl.msgid);
        ctl.msgid[0] = '\0';
    }
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
    if (sync_agent_rcpt(r->user, token, agent, sizeof(agent)) != 0) {
        pl_control_free(&ctl);
        return tempfail(ctx, qid, "sync_transport_domain too long for a recipient address");
    }
    if ((r->intercept && pl_mf_delrcpt(ctx, r->rcpt_raw) != 0) ||
        pl_mf_addrcpt(ctx, agent) != 0) {
        pl_control_free(&ctl);
        return tempfail(ctx, qid, "cannot change recipients");
    }
    if (m->target_line > SMTP_LINE_MAX) {
        if (targets_one_per_field(ctx, m, &ctl) != 0) {
            pl_control_free(&ctl);
            return tempfail(ctx, qid, "cannot rewrite X-Control-Target");
        }
        msg_qid(LOG_INFO, qid, "postlink-sync: X-Control-Target line of %zu characters: "
                "%zu target(s) rewritten one per field", m->target_line, ctl.ntargets);
    }
    msg_qid(LOG_INFO, qid, "postlink-sync: control %s %s %zu target(s) from=<%s> user=%s%s: to postlink-syncd",
            ctl.msgid, pl_ctl_word_name(ctl.word), ctl.ntargets, r->sender, r->user,
            r->intercept ? "" : " (peer to peer)");
    pl_control_free(&ctl);
    return SMFIS_CONTINUE;
}

/* Ordinary mail: for each enabled recipient the message is recorded as
 * seen (releasing and fanning out the controls held for it) and the
 * recipient's devices are added.  All of it is one transaction, left open
 * while the milter changes the message and committed only when nothing
 * can fail any more: a tempfail (which Postfix may never see retried)
 * leaves every held control pending. */
struct seen_user {
    const char *user;
    struct pl_sync_opts o;
    unsigned flags, released;
    struct pl_strvec devices;
    size_t added;                    /* devices added as recipients */
};

struct seen_op {
    const char *msgid;
    struct seen_user *u;
    size_t n;
};

static int add_device(void *ctx, const struct pl_device *d)
{
    pl_strvec_add(&((struct seen_user *)ctx)->devices, d->address);
    return 0;
}

static int seen_fn(pl_txn *t, void *ctx)
{
    struct seen_op *op = ctx;
    int rc = PL_OK;
    for (size_t i = 0; i < op->n && rc == PL_OK; i++) {
        struct seen_user *u = &op->u[i];
        pl_strvec_free(&u->devices);
        u->flags = u->released = 0;
        if (op->msgid[0])
            rc = pl_sync_seen(t, &u->o, u->user, op->msgid, &u->flags, &u->released);
        if (rc == PL_OK)
            rc = pl_device_list_txn(t, u->user, add_device, u);
    }
    return rc;
}

/* Run fn in a transaction and leave it open (*tp) for the caller to commit
 * or abort; retried like pl_store_run while the store says PL_TEMP. */
static int txn_prepare(pl_txn **tp, pl_store_txn_fn fn, void *ctx)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        int rc = pl_store_begin(sm.store, tp, PL_TXN_SYNC);
        if (rc == PL_OK) {
            if ((rc = fn(*tp, ctx)) == PL_OK)
                return PL_OK;
            pl_txn_abort(*tp);
            *tp = NULL;
        }
        if (rc != PL_TEMP)
            return rc;
        usleep((useconds_t)(1000 * (1 + attempt * attempt) + rand() % 1000));
    }
    return PL_TEMP;
}

/* Test hook: $POSTLINK_TEST_FAIL_AFTER_SEEN names a file holding a
 * Message-ID.  The next message with that Message-ID fails (tempfail) after
 * the seen stage, as a failing smfi_addrcpt/smfi_addheader would, and the
 * file is removed, so that the resent message passes.  Logged loudly. */
static int test_fail_after_seen(const char *msgid, const char *qid)
{
    const char *f = getenv("POSTLINK_TEST_FAIL_AFTER_SEEN");
    char buf[PL_MSGID_MAX + 2] = "";
    FILE *fp;

    if (f == NULL || *f == '\0' || (fp = fopen(f, "r")) == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    pl_strtrim_right(buf);
    if (strcmp(buf, msgid) != 0)
        return 0;
    if (unlink(f) != 0)
        msg_warn("postlink-sync: TEST HOOK: cannot remove %s: %s", f, strerror(errno));
    msg_qid(LOG_WARNING, qid, "postlink-sync: TEST HOOK POSTLINK_TEST_FAIL_AFTER_SEEN: "
            "failing %s after the seen stage", msgid);
    return 1;
}

static int has_rcpt(const struct msg *m, const char *addr)
{
    for (size_t i = 0; i < m->rcpt.n; i++)
        if (strcmp(m->rcpt.v[i], addr) == 0)
            return 1;
    return 0;
}

static void seen_free(struct seen_op *op)
{
    for (size_t i = 0; i < op->n; i++)
        pl_strvec_free(&op->u[i].devices);
    free(op->u);
}

static int any_released(const struct seen_op *op)
{
    for (size_t i = 0; i < op->n; i++)
        if (op->u[i].released)
            return 1;
    return 0;
}

static sfsistat ordinary_fail(pl_mctx *ctx, pl_txn *t, struct seen_op *op, const char *qid,
                              const char *why)
{
    pl_txn_abort(t);
    seen_free(op);
    return tempfail(ctx, qid, why);
}

static sfsistat ordinary(pl_mctx *ctx, struct msg *m, const char *qid)
{
    char msgid[PL_MSGID_MAX + 1] = "", state[64], buf[ADDRMAX + 2];
    const char *mv = pl_headers_get(&m->hs, "Message-ID", 0);
    size_t nrcpt = m->rcpt.n;
    unsigned same_flags = 0;
    int mixed = 0, rc;
    struct seen_op op = {msgid, NULL, 0};
    pl_txn *t = NULL;

    if (mv == NULL || pl_msgid_parse(mv, msgid, sizeof(msgid), NULL) != 0)
        msgid[0] = '\0';
    op.u = pl_xcalloc(nrcpt + 1, sizeof(*op.u));
    for (size_t i = 0; i < nrcpt; i++) {
        struct seen_user *u = &op.u[op.n];
        if (!enabled(m->rcpt.v[i]))
            continue;
        u->user = m->rcpt.v[i];
        u->o.now = time(NULL);
        u->o.pending_ttl = sm.pending_ttl;
        u->o.hostname = sm.hostname;
        u->o.imap = pl_cfg_list_map(sm.cfg->imap_url_list, pl_addr_domain(u->user)) != NULL;
        op.n++;
    }
    if (op.n == 0) {
        seen_free(&op);
        return SMFIS_CONTINUE;
    }
    if ((rc = txn_prepare(&t, seen_fn, &op)) != PL_OK) {
        seen_free(&op);
        return tempfail(ctx, qid, "cannot record the message as seen");
    }
    for (size_t i = 0; i < op.n; i++) {
        struct seen_user *u = &op.u[i];
        if (i == 0)
            same_flags = u->flags;
        else if (same_flags != u->flags)
            mixed = 1;
        for (size_t d = 0; d < u->devices.n; d++) {
            const char *dev = u->devices.v[d];
            if (strcmp(dev, m->sender) == 0 || has_rcpt(m, dev))
                continue;
            snprintf(buf, sizeof(buf), "<%s>", dev);
            if (pl_mf_addrcpt(ctx, buf) != 0)
                return ordinary_fail(ctx, t, &op, qid, "cannot add a device recipient");
            pl_strvec_add(&m->rcpt, dev);
            u->added++;
        }
    }
    if (msgid[0] && test_fail_after_seen(msgid, qid))
        return ordinary_fail(ctx, t, &op, qid, "test hook");
    if (same_flags != 0 && !mixed) {
        pl_state_format(same_flags, state, sizeof(state));
        if (pl_mf_addheader(ctx, "X-Postlink-State", state) != 0)
            return ordinary_fail(ctx, t, &op, qid, "cannot add X-Postlink-State");
    } else if (mixed) {
        msg_qid(LOG_INFO, qid, "postlink-sync: recipients hold different states; no X-Postlink-State");
    }
    /* The seen record of plain mail is only a note for a control that may
     * come later: nobody has been told anything that depends on it, so it
     * is not flushed to disk (a power failure may lose the last ones; such
     * a late control is then held as if its target had not arrived).  A
     * release of held controls is flushed: their fan-out was promised. */
    if (!any_released(&op))
        pl_txn_relax(t);
    /* the last step: Postfix discards the changes above if this tempfails */
    if (pl_txn_commit(t) != PL_OK) {
        seen_free(&op);
        return tempfail(ctx, qid, "cannot record the message as seen");
    }
    /* routine arrivals are logged only with -v; a release always */
    for (size_t i = 0; i < op.n; i++)
        if (msgid[0] || op.u[i].added)
            msg_qid(op.u[i].released ? LOG_INFO : LOG_DEBUG, qid,
                    "postlink-sync: user=%s message-id=%s state=%u released=%u devices=%zu",
                    op.u[i].user, msgid[0] ? msgid : "-", op.u[i].flags, op.u[i].released,
                    op.u[i].added);
    seen_free(&op);
    return SMFIS_CONTINUE;
}

static sfsistat on_eom(pl_mctx *ctx)
{
    struct conn *c = pl_mf_getpriv(ctx);
    const char *qid = pl_mf_getsymval(ctx, "i");
    struct route r;
    struct msg *m;

    if (c == NULL || (m = c->m) == NULL)
        return SMFIS_TEMPFAIL;
    memset(&r, 0, sizeof(r));
    if (m->nsync > MAX_SYNC_HEADERS) {
        msg_qid(LOG_INFO, qid, "postlink-sync: reject: %zu postlink sync headers from=<%s>",
                m->nsync, m->sender);
        pl_mf_setreply(ctx, "550", "5.7.1", "too many X-Control/X-Postlink header fields");
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

static void on_abort(pl_mctx *ctx)
{
    struct conn *c = pl_mf_getpriv(ctx);
    if (c) {
        msg_free(c->m);
        c->m = NULL;
    }
}

static void on_close(pl_mctx *ctx)
{
    struct conn *c = pl_mf_getpriv(ctx);
    if (c) {
        msg_free(c->m);
        free(c);
        pl_mf_setpriv(ctx, NULL);
    }
}

/* Postfix waits for an answer only at RCPT (a recipient too long, or in
 * the reserved domain, is refused there) and at the end of the message;
 * the connection, MAIL and the header fields are "no reply" (a sender too
 * long is refused at each RCPT: milter_chain.c), body, HELO, DATA and end
 * of header are not sent at all. */
const struct pl_filter sync_filter = {
    .name = "postlink-sync",
    .actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .stages = PL_MF_BIT(PL_MF_CONNECT) | PL_MF_BIT(PL_MF_MAIL) | PL_MF_BIT(PL_MF_RCPT) |
              PL_MF_BIT(PL_MF_HEADER),
    .replies = PL_MF_BIT(PL_MF_RCPT),
    .macros = {[PL_MF_MAIL] = "{auth_authen}", [PL_MF_EOM] = "i"},
    .connect = on_connect,
    .envfrom = on_envfrom,
    .envrcpt = on_envrcpt,
    .header = on_header,
    .eom = on_eom,
    .abort = on_abort,
    .close = on_close,
};
