/* route_filter.c -- the postlink-route milter's callbacks: note whether
 * the client may name numbers in the text (authenticated, or in
 * route_trusted_networks), which recipients Postfix relays ({rcpt_mailer}
 * in route_relay_transports; for sendmail(1) mail, which has no such
 * macro, those not in route_local_domains or enabled_domains), and, for mail with such recipients, the
 * header fields and the first route_scan_max bytes of the body.  At the
 * end of the message it removes any X-Postlink-Route the sender wrote,
 * decides per relayed recipient (route_decide.c), records the decisions
 * under a fresh token and adds "X-Postlink-Route: <token>", which
 * milter_header_checks turns into a FILTER to postlink-sipd.  Mail with
 * no number is left as it came. */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "address.h"
#include "log.h"
#include "route_milter.h"
#include "siproute.h"

struct rmsg {
    int trusted_conn, trusted;        /* client in trusted networks; this message */
    struct pl_strvec relayed;         /* canonical relayed recipients */
    unsigned n_forged;                /* X-Postlink-Route fields that came with it */
    struct pl_strbuf head, body;      /* kept only when a recipient is relayed */
    int body_cut;
};

static struct rmsg *get_msg(pl_mctx *ctx)
{
    struct rmsg *m = pl_mf_getpriv(ctx);
    if (m == NULL) {
        m = pl_xcalloc(1, sizeof(*m));
        pl_mf_setpriv(ctx, m);
    }
    return m;
}

static void msg_reset(struct rmsg *m)
{
    pl_strvec_free(&m->relayed);
    pl_strbuf_free(&m->head);
    pl_strbuf_free(&m->body);
    m->n_forged = 0;
    m->body_cut = 0;
    m->trusted = m->trusted_conn;
}

static sfsistat on_connect(pl_mctx *ctx, const char *host, const struct sockaddr *sa)
{
    struct route_settings *s = atomic_load(&rm.set);
    struct rmsg *m = get_msg(ctx);
    (void)host;
    /* sendmail(1) mail (non_smtpd_milters) comes from a local user */
    m->trusted_conn = sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
                      pl_netlist_match(&s->trusted, sa);
    return SMFIS_CONTINUE;
}

static sfsistat on_envfrom(pl_mctx *ctx, char **argv)
{
    struct rmsg *m = get_msg(ctx);
    const char *auth = pl_mf_getsymval(ctx, "{auth_authen}");
    (void)argv;
    msg_reset(m);
    if (auth && *auth)
        m->trusted = 1;
    return SMFIS_CONTINUE;
}

static sfsistat on_envrcpt(pl_mctx *ctx, char **argv)
{
    struct route_settings *s = atomic_load(&rm.set);
    struct rmsg *m = get_msg(ctx);
    const char *mailer = pl_mf_getsymval(ctx, "{rcpt_mailer}");
    char addr[PL_ADDR_SIZE];

    if (mailer != NULL && !pl_cfg_list_has(s->relay_transports, mailer))
        return SMFIS_CONTINUE;
    if (argv[0] == NULL || pl_addr_from_smtp(argv[0], addr, sizeof(addr)) != 0 || addr[0] == '\0')
        return SMFIS_CONTINUE;                    /* too long for a table row anyway */
    /* Mail from sendmail(1) (non_smtpd_milters) has no {rcpt_mailer}:
     * relayed is then what is not for a domain delivered here. */
    if (mailer == NULL && (pl_cfg_list_has(s->local_domains, pl_addr_domain(addr)) ||
                           pl_cfg_list_has(s->enabled_domains, pl_addr_domain(addr))))
        return SMFIS_CONTINUE;
    for (size_t i = 0; i < m->relayed.n; i++)
        if (strcmp(m->relayed.v[i], addr) == 0)
            return SMFIS_CONTINUE;
    pl_strvec_add(&m->relayed, addr);
    return SMFIS_CONTINUE;
}

static sfsistat on_header(pl_mctx *ctx, const char *name, const char *value)
{
    struct rmsg *m = get_msg(ctx);
    if (strcasecmp(name, "X-Postlink-Route") == 0) {
        m->n_forged++;
        return SMFIS_CONTINUE;
    }
    if (m->relayed.n > 0 && m->head.len < 4u * 1024 * 1024)
        pl_strbuf_addf(&m->head, "%s: %s\r\n", name, value);
    return SMFIS_CONTINUE;
}

static sfsistat on_body(pl_mctx *ctx, const unsigned char *chunk, size_t len)
{
    struct route_settings *s = atomic_load(&rm.set);
    struct rmsg *m = get_msg(ctx);
    if (m->relayed.n == 0)
        return SMFIS_CONTINUE;
    if (m->body.len + len > s->scan_max) {
        len = s->scan_max > m->body.len ? s->scan_max - m->body.len : 0;
        m->body_cut = 1;
    }
    if (len > 0)
        pl_strbuf_addn(&m->body, (const char *)chunk, len);
    return SMFIS_CONTINUE;
}

static sfsistat tempfail(pl_mctx *ctx, const char *qid, const char *why)
{
    msg_qid(LOG_WARNING, qid, "postlink-route: %s: tempfail", why);
    pl_mf_setreply(ctx, "451", "4.3.0", "postlink routing store busy, try again later");
    return SMFIS_TEMPFAIL;
}

struct decide_op {
    struct rmsg *m;
    struct route_settings *s;
    const char *qid;
    char token[PL_RTOKEN_LEN + 1];
    struct route_hit *hits;
    struct pl_rdecision *d;
    size_t nd;
    int text_cut;
};

static int decide_fn(pl_txn *t, void *ctx)
{
    struct decide_op *op = ctx;
    struct rmsg *m = op->m;
    struct route_text text, *tp = NULL;
    int rc;
    struct route_snap *snap = route_snap_get(t, &rc);
    const struct route_tables *rt;

    op->nd = 0;
    if (snap == NULL)
        return rc;
    rt = route_snap_tables(snap);
    if (route_tables_want_text(rt, m->trusted)) {
        struct pl_strbuf whole = {0};
        pl_strbuf_addn(&whole, m->head.s ? m->head.s : "", m->head.len);
        pl_strbuf_adds(&whole, "\r\n");
        pl_strbuf_addn(&whole, m->body.s ? m->body.s : "", m->body.len);
        if (route_text_from_message(whole.s, whole.len, op->s->scan_max, &text) == 0)
            tp = &text;
        pl_strbuf_free(&whole);
        op->text_cut = m->body_cut || (tp && tp->body_cut);
    }
    rc = PL_OK;
    for (size_t i = 0; i < m->relayed.n; i++) {
        int r = route_decide(t, rt, &op->s->opts, m->relayed.v[i], tp, m->trusted, &op->hits[op->nd]);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 1) {
            struct route_hit *h = &op->hits[op->nd];
            op->d[op->nd++] = (struct pl_rdecision){m->relayed.v[i], h->number, h->rule, h->detail};
        }
    }
    if (tp)
        route_text_free(tp);
    route_snap_put(snap);
    if (rc != PL_OK || op->nd == 0)
        return rc;
    if (pl_rtoken_new(op->token, sizeof(op->token)) != PL_OK)
        return PL_ERR;
    /* Lost in a machine crash, the decision only costs the SIP path:
     * postlink-sipd sends mail it has no decision for the normal way. */
    pl_txn_relax(t);
    return pl_rdecide_put(t, op->token, op->qid, op->d, op->nd, (int64_t)time(NULL));
}

static sfsistat on_eom(pl_mctx *ctx)
{
    struct rmsg *m = pl_mf_getpriv(ctx);
    const char *qid = pl_mf_getsymval(ctx, "i");
    struct decide_op op = {0};
    int rc;

    if (m == NULL)
        return SMFIS_CONTINUE;
    if (qid == NULL)
        qid = "NOQUEUE";
    if (m->n_forged > 0) {
        msg_qid(LOG_INFO, qid, "postlink-route: removed %u X-Postlink-Route field(s) written by "
                "the sender", m->n_forged);
        for (unsigned i = m->n_forged; i >= 1; i--)
            if (pl_mf_chgheader(ctx, "X-Postlink-Route", (int)i, NULL) != 0)
                return tempfail(ctx, qid, "cannot remove a header field");
    }
    if (m->relayed.n == 0)
        return SMFIS_CONTINUE;
    op.m = m;
    op.s = atomic_load(&rm.set);
    op.qid = qid;
    op.hits = pl_xcalloc(m->relayed.n, sizeof(*op.hits));
    op.d = pl_xcalloc(m->relayed.n, sizeof(*op.d));
    rc = pl_store_run(rm.store, 0, decide_fn, &op);
    if (rc != PL_OK) {
        free(op.hits);
        free(op.d);
        return tempfail(ctx, qid, "cannot read the routing tables or record the decision");
    }
    if (op.nd > 0 && pl_mf_addheader(ctx, "X-Postlink-Route", op.token) != 0) {
        free(op.hits);
        free(op.d);
        return tempfail(ctx, qid, "cannot add X-Postlink-Route");
    }
    for (size_t i = 0; i < op.nd; i++)
        msg_qid(LOG_INFO, qid, "postlink-route: to=<%s> number=%s rule=%s (%s): to postlink-sipd",
                op.d[i].addr, op.d[i].number, op.d[i].rule, op.d[i].detail);
    if (op.text_cut)
        msg_qid(LOG_INFO, qid, "postlink-route: only the first %zu bytes of the body were searched",
                op.s->scan_max);
    free(op.hits);
    free(op.d);
    return SMFIS_CONTINUE;
}

static void on_abort(pl_mctx *ctx)
{
    struct rmsg *m = pl_mf_getpriv(ctx);
    if (m)
        msg_reset(m);
}

static void on_close(pl_mctx *ctx)
{
    struct rmsg *m = pl_mf_getpriv(ctx);
    if (m) {
        msg_reset(m);
        free(m);
    }
    pl_mf_setpriv(ctx, NULL);
}

/* Postfix waits for an answer only at the end of the message: the
 * connection, MAIL, RCPT, the header fields and the body are "no reply". */
const struct pl_filter route_filter = {
    .name = "postlink-route",
    .actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    .stages = PL_MF_BIT(PL_MF_CONNECT) | PL_MF_BIT(PL_MF_MAIL) | PL_MF_BIT(PL_MF_RCPT) |
              PL_MF_BIT(PL_MF_HEADER) | PL_MF_BIT(PL_MF_BODY),
    .replies = 0,
    .macros = {[PL_MF_MAIL] = "{auth_authen}", [PL_MF_RCPT] = "{rcpt_mailer}", [PL_MF_EOM] = "i"},
    .connect = on_connect,
    .envfrom = on_envfrom,
    .envrcpt = on_envrcpt,
    .header = on_header,
    .body = on_body,
    .eom = on_eom,
    .abort = on_abort,
    .close = on_close,
};
