/* milter_chain.c -- the filters of a milter process, called in order for
 * each session (milter_chain.h), and the pl_mf_*() calls a filter makes
 * (milter_api.h), which go to the engine through the session's ops. */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "milter_chain.h"

static const struct pl_filter *filt[PL_CHAIN_MAX];
static unsigned nfilt;
static unsigned wants;                 /* stages any filter wants */
static unsigned answers;               /* stages at which some filter may answer */
static unsigned long need_actions;
static char macro_list[PL_MF_NSTAGES][256];
static char names[256];
static atomic_int draining;
static atomic_uint live, busy;

/* Is w one of the space-separated words of list? */
static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

void pl_chain_init(const struct pl_filter *const *filters, unsigned n)
{
    size_t o = 0;
    nfilt = n > PL_CHAIN_MAX ? PL_CHAIN_MAX : n;
    wants = PL_MF_BIT(PL_MF_EOM);
    answers = PL_MF_BIT(PL_MF_EOM);
    need_actions = 0;
    memset(macro_list, 0, sizeof(macro_list));
    names[0] = '\0';
    for (unsigned i = 0; i < nfilt; i++) {
        const struct pl_filter *f = filt[i] = filters[i];
        wants |= f->stages;
        answers |= f->replies & f->stages;
        need_actions |= f->actions;
        o += (size_t)snprintf(names + o, o < sizeof(names) ? sizeof(names) - o : 0, "%s%s",
                              i ? ", " : "", f->name);
        for (int s = 0; s < PL_MF_NSTAGES; s++) {
            const char *m = f->macros[s];
            char *l = macro_list[s];
            size_t len = strlen(l);
            if (m == NULL || *m == '\0' || has_word(l, m))
                continue;
            snprintf(l + len, sizeof(macro_list[s]) - len, "%s%s", len ? " " : "", m);
        }
    }
}

const char *pl_chain_names(void) { return names; }

const char *pl_chain_symlist(int smfim)
{
    static const enum pl_mf_stage stage_of[SMFIM_LAST + 1] = {
        [SMFIM_CONNECT] = PL_MF_CONNECT, [SMFIM_HELO] = PL_MF_HELO, [SMFIM_ENVFROM] = PL_MF_MAIL,
        [SMFIM_ENVRCPT] = PL_MF_RCPT, [SMFIM_DATA] = PL_MF_DATA, [SMFIM_EOM] = PL_MF_EOM,
        [SMFIM_EOH] = PL_MF_EOH,
    };
    const char *l;
    if (smfim < SMFIM_FIRST || smfim > SMFIM_LAST)
        return NULL;
    l = macro_list[stage_of[smfim]];
    return l[0] ? l : NULL;
}

void pl_chain_drain(void) { atomic_store(&draining, 1); }
int pl_chain_draining(void) { return atomic_load(&draining); }
unsigned pl_chain_live(void) { return atomic_load(&live); }
unsigned pl_chain_busy(void) { return atomic_load(&busy); }

int pl_chain_negotiate(pl_mctx *c, unsigned long offer_actions, unsigned long offer_proto,
                       unsigned long *actions, unsigned long *proto)
{
    static const struct { int stage; unsigned long no, nr; } st[] = {
        {PL_MF_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN},
        {PL_MF_HELO, SMFIP_NOHELO, SMFIP_NR_HELO},
        {PL_MF_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL},
        {PL_MF_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT},
        {PL_MF_DATA, SMFIP_NODATA, SMFIP_NR_DATA},
        {PL_MF_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR},
        {PL_MF_EOH, SMFIP_NOEOH, SMFIP_NR_EOH},
        {PL_MF_BODY, SMFIP_NOBODY, SMFIP_NR_BODY},
    };
    unsigned long p = 0;

    if (atomic_load(&draining))
        return -1;             /* stopping: Postfix applies milter_default_action */
    if ((offer_actions & need_actions) != need_actions) {
        msg_error("%s: Postfix does not offer the milter actions 0x%lx (it offers 0x%lx): "
                  "set milter_protocol = 6", names, need_actions, offer_actions);
        return -1;
    }
    c->nr = 0;
    /* The transaction must be seen to be counted: MAIL is always asked for. */
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        unsigned bit = PL_MF_BIT(st[i].stage);
        if (!(wants & bit) && st[i].stage != PL_MF_MAIL && (offer_proto & st[i].no))
            p |= st[i].no;
        else if (!(answers & bit) && (offer_proto & st[i].nr)) {
            p |= st[i].nr;
            c->nr |= bit;
        }
    }
    p |= offer_proto & SMFIP_NOUNKNOWN;
    if ((offer_proto & SMFIP_SKIP) && !(c->nr & PL_MF_BIT(PL_MF_BODY))) {
        p |= SMFIP_SKIP;
        c->can_skip = 1;
    }
    *actions = need_actions | (offer_actions & SMFIF_SETSYMLIST);
    *proto = p;
    return 0;
}

void pl_chain_begin(pl_mctx *c, const struct pl_mctx_ops *ops, void *eng)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->eng = eng;
    c->deferred = SMFIS_CONTINUE;
}

/* ---- calling the filters ------------------------------------------------- */

#define FOR_EACH(c, skip) \
    for (unsigned i_ = 0; i_ < nfilt; i_++) \
        if (!(((c)->done_conn | (skip)) & (1u << i_)) && ((c)->cur = i_, 1))

static void txn_begin(pl_mctx *c)
{
    if (!c->in_txn) {
        c->in_txn = 1;
        atomic_fetch_add(&live, 1);
    }
}

static void txn_end(pl_mctx *c)
{
    if (c->in_txn) {
        c->in_txn = 0;
        atomic_fetch_sub(&live, 1);
    }
    c->done_msg = c->skip_body = 0;
    if (c->doomed == 1) {
        c->doomed = 0;
        c->deferred = SMFIS_CONTINUE;
    }
}

/* Fold one filter's result into the stage's verdict; 1 when final. */
static int fold(pl_mctx *c, sfsistat r, int conn_stage, sfsistat *verdict)
{
    unsigned bit = 1u << c->cur;
    switch (r) {
    case SMFIS_CONTINUE:
    case SMFIS_NOREPLY:
        return 0;
    case SMFIS_ACCEPT:
        if (conn_stage)
            c->done_conn |= bit;
        else
            c->done_msg |= bit;
        return 0;
    case SMFIS_SKIP:
        c->skip_body |= bit;
        return 0;
    case SMFIS_REJECT:
    case SMFIS_TEMPFAIL:
    case SMFIS_DISCARD:
        *verdict = r;
        return 1;
    default:
        msg_error("%s: unknown result %d: tempfail", filt[c->cur]->name, (int)r);
        *verdict = SMFIS_TEMPFAIL;
        c->have_reply = 0;
        return 1;
    }
}

/* A failure where Postfix waits for no answer dooms what that stage
 * belongs to: the connection (connect, HELO) or the transaction.  It is
 * kept, with its reply, and given as the answer to every later stage
 * Postfix waits for -- each RCPT, the end of the message -- until the
 * transaction (or the connection) ends; no filter is called meanwhile. */
static void defer(pl_mctx *c, sfsistat verdict, int conn_level)
{
    if (c->doomed)
        return;
    c->doomed = conn_level ? 2 : 1;
    c->deferred = verdict;
    c->d_have = c->have_reply;
    memcpy(c->d_rcode, c->rcode, sizeof(c->d_rcode));
    memcpy(c->d_xcode, c->xcode, sizeof(c->d_xcode));
    memcpy(c->d_text, c->text, sizeof(c->d_text));
}

/* The answer of a doomed session at stage s. */
static sfsistat doom_answer(pl_mctx *c, enum pl_mf_stage s)
{
    if (c->nr & PL_MF_BIT(s))
        return SMFIS_NOREPLY;
    c->have_reply = c->d_have;
    memcpy(c->rcode, c->d_rcode, sizeof(c->d_rcode));
    memcpy(c->xcode, c->d_xcode, sizeof(c->d_xcode));
    memcpy(c->text, c->d_text, sizeof(c->d_text));
    return c->deferred;
}

/* The answer for a stage once every filter had its say. */
static sfsistat answer(pl_mctx *c, enum pl_mf_stage s, sfsistat verdict)
{
    unsigned all = (1u << nfilt) - 1;
    int nr = (c->nr & PL_MF_BIT(s)) != 0;

    if (verdict != SMFIS_CONTINUE && nr) {
        defer(c, verdict, s <= PL_MF_HELO);
        return SMFIS_NOREPLY;
    }
    if (nr)
        return SMFIS_NOREPLY;
    if (verdict != SMFIS_CONTINUE)
        return verdict;
    if (s <= PL_MF_HELO ? (c->done_conn & all) == all : ((c->done_conn | c->done_msg) & all) == all)
        return SMFIS_ACCEPT;
    if (s == PL_MF_BODY && c->can_skip && ((c->done_conn | c->done_msg | c->skip_body) & all) == all)
        return SMFIS_SKIP;
    return SMFIS_CONTINUE;
}

#define CALL(expr) do { \
        atomic_fetch_add(&busy, 1); \
        r_ = (expr); \
        atomic_fetch_sub(&busy, 1); \
    } while (0)

/* Run one stage: each filter with a callback for it, in order, until one
 * decides. */
#define STAGE(c, s, skip, member, ...) do { \
        sfsistat verdict_ = SMFIS_CONTINUE, r_; \
        if ((c)->doomed) \
            return doom_answer(c, s); \
        (c)->have_reply = 0; \
        FOR_EACH(c, skip) { \
            if (filt[(c)->cur]->member == NULL) \
                continue; \
            (c)->have_reply = 0; \
            CALL(filt[(c)->cur]->member(c, ##__VA_ARGS__)); \
            if (fold(c, r_, (s) <= PL_MF_HELO, &verdict_)) \
                break; \
        } \
        return answer(c, s, verdict_); \
    } while (0)

sfsistat pl_chain_connect(pl_mctx *c, const char *host, const struct sockaddr *sa)
{
    c->connected = 1;
    STAGE(c, PL_MF_CONNECT, 0, connect, host, sa);
}

sfsistat pl_chain_helo(pl_mctx *c, const char *name)
{
    STAGE(c, PL_MF_HELO, 0, helo, name);
}

sfsistat pl_chain_envfrom(pl_mctx *c, char **argv)
{
    if (c->in_txn || c->doomed == 1)   /* a MAIL without the end of the last one */
        pl_chain_abort(c);
    if (atomic_load(&draining) && !c->doomed) {
        c->have_reply = 0;
        return answer(c, PL_MF_MAIL, SMFIS_TEMPFAIL);   /* the client retries later */
    }
    txn_begin(c);
    STAGE(c, PL_MF_MAIL, c->done_msg, envfrom, argv);
}

sfsistat pl_chain_envrcpt(pl_mctx *c, char **argv)
{
    STAGE(c, PL_MF_RCPT, c->done_msg, envrcpt, argv);
}

sfsistat pl_chain_data(pl_mctx *c)
{
    STAGE(c, PL_MF_DATA, c->done_msg, data);
}

sfsistat pl_chain_header(pl_mctx *c, const char *name, const char *value)
{
    STAGE(c, PL_MF_HEADER, c->done_msg, header, name, value);
}

sfsistat pl_chain_eoh(pl_mctx *c)
{
    STAGE(c, PL_MF_EOH, c->done_msg, eoh);
}

sfsistat pl_chain_body(pl_mctx *c, const unsigned char *chunk, size_t len)
{
    STAGE(c, PL_MF_BODY, c->done_msg | c->skip_body, body, chunk, len);
}

sfsistat pl_chain_eom(pl_mctx *c)
{
    sfsistat verdict = SMFIS_CONTINUE, r_;
    unsigned skip = c->done_msg;

    if (c->doomed) {
        verdict = doom_answer(c, PL_MF_EOM);   /* a failure earlier on */
    } else {
        c->have_reply = 0;
        FOR_EACH(c, skip) {
            if (filt[c->cur]->eom == NULL)
                continue;
            c->have_reply = 0;
            CALL(filt[c->cur]->eom(c));
            if (fold(c, r_, 0, &verdict))
                break;
        }
    }
    txn_end(c);
    return verdict == SMFIS_ACCEPT ? SMFIS_CONTINUE : verdict;
}

/* Every filter's abort (closing = 0) or close (1) callback. */
static void tell_all(pl_mctx *c, int closing)
{
    for (unsigned i = 0; i < nfilt; i++) {
        void (*fn)(pl_mctx *) = closing ? filt[i]->close : filt[i]->abort;
        if (fn) {
            c->cur = i;
            atomic_fetch_add(&busy, 1);
            fn(c);
            atomic_fetch_sub(&busy, 1);
        }
    }
}

void pl_chain_abort(pl_mctx *c)
{
    tell_all(c, 0);
    txn_end(c);
}

void pl_chain_close(pl_mctx *c)
{
    if (c->in_txn)
        pl_chain_abort(c);
    tell_all(c, 1);
    c->done_conn = 0;
    c->connected = 0;
    c->doomed = 0;
    c->deferred = SMFIS_CONTINUE;
}

/* ---- what a filter calls ------------------------------------------------- */

void *pl_mf_getpriv(pl_mctx *c) { return c->priv[c->cur]; }
void pl_mf_setpriv(pl_mctx *c, void *p) { c->priv[c->cur] = p; }

const char *pl_mf_getsymval(pl_mctx *c, const char *name)
{
    return c->ops->getsymval(c->eng, name);
}

int pl_mf_setreply(pl_mctx *c, const char *rcode, const char *xcode, const char *text)
{
    if (rcode == NULL || strlen(rcode) != 3 || (rcode[0] != '4' && rcode[0] != '5') ||
        (xcode && xcode[0] != rcode[0]))
        return -1;                     /* Postfix would call the reply malformed */
    snprintf(c->rcode, sizeof(c->rcode), "%s", rcode);
    snprintf(c->xcode, sizeof(c->xcode), "%s", xcode ? xcode : (rcode[0] == '4' ? "4.0.0" : "5.0.0"));
    snprintf(c->text, sizeof(c->text), "%s", text ? text : "");
    for (char *p = c->text; *p; p++)       /* one line; '%' is special to libmilter */
        if (*p == '\r' || *p == '\n' || *p == '%')
            *p = ' ';
    c->have_reply = 1;
    return 0;
}

int pl_mf_addheader(pl_mctx *c, const char *name, const char *value)
{
    return c->ops->addheader(c->eng, name, value);
}

int pl_mf_chgheader(pl_mctx *c, const char *name, int index, const char *value)
{
    return c->ops->chgheader(c->eng, name, index, value);
}

int pl_mf_addrcpt(pl_mctx *c, const char *rcpt)
{
    return c->ops->addrcpt(c->eng, rcpt);
}

int pl_mf_delrcpt(pl_mctx *c, const char *rcpt)
{
    return c->ops->delrcpt(c->eng, rcpt);
}
