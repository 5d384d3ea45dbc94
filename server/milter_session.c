/* milter_session.c -- one milter connection, protocol side
 * (milter_session.h): commands in, the chain called, replies out. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_session.h"
#include "strutil.h"

#define MAX_ARGS 256                   /* ESMTP parameters of one MAIL or RCPT */

/* The macro slot of a stage command, in protocol order (-1: none). */
static int macro_slot(unsigned char cmd)
{
    switch (cmd) {
    case SMFIC_CONNECT: return 0;
    case SMFIC_HELO: return 1;
    case SMFIC_MAIL: return 2;
    case SMFIC_RCPT: return 3;
    case SMFIC_DATA: return 4;
    case SMFIC_EOH: return 5;
    case SMFIC_BODYEOB: return 6;
    case SMFIC_UNKNOWN: return 7;
    default: return -1;
    }
}

/* ---- what the filters call, through the chain ------------------------------ */

static const char *find_macro(const char *data, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = data, *end = data + len;
    /* "{x}" also matches "x" and the other way round, as in libmilter */
    const char *bare = name;
    size_t bl = nl;
    if (nl > 2 && name[0] == '{' && name[nl - 1] == '}')
        bare = name + 1, bl = nl - 2;
    while (p < end) {
        const char *n = p, *v;
        size_t l = strnlen(n, (size_t)(end - n));
        if (n + l >= end)
            break;
        v = n + l + 1;
        if (v >= end)
            break;
        if ((l == nl && memcmp(n, name, nl) == 0) ||
            (l == bl + 2 && n[0] == '{' && memcmp(n + 1, bare, bl) == 0) ||
            (l == bl && memcmp(n, bare, bl) == 0))
            return memchr(v, '\0', (size_t)(end - v)) ? v : NULL;
        p = v + strnlen(v, (size_t)(end - v)) + 1;
    }
    return NULL;
}

static const char *s_getsymval(void *eng, const char *name)
{
    struct pl_msess *s = eng;
    for (int i = s->mstage; i >= 0; i--)
        if (s->macros[i]) {
            const char *v = find_macro(s->macros[i], s->macro_len[i], name);
            if (v)
                return v;
        }
    return NULL;
}

static int may(struct pl_msess *s, unsigned long action)
{
    return s->at_eom && (s->actions & action) == action;
}

static int s_addheader(void *eng, const char *name, const char *value)
{
    struct pl_msess *s = eng;
    if (!may(s, SMFIF_ADDHDRS) || name == NULL || value == NULL || *name == '\0')
        return -1;
    pl_mproto_put_strings(&s->out, SMFIR_ADDHEADER, name, value, (const char *)NULL);
    return 0;
}

static int s_chgheader(void *eng, const char *name, int index, const char *value)
{
    struct pl_msess *s = eng;
    if (!may(s, SMFIF_CHGHDRS) || name == NULL || *name == '\0' || index < 0)
        return -1;
    pl_mproto_put_indexed(&s->out, SMFIR_CHGHEADER, (uint32_t)index, name, value ? value : "");
    return 0;
}

static int s_addrcpt(void *eng, const char *rcpt)
{
    struct pl_msess *s = eng;
    if (!may(s, SMFIF_ADDRCPT) || rcpt == NULL || *rcpt == '\0')
        return -1;
    pl_mproto_put_strings(&s->out, SMFIR_ADDRCPT, rcpt, (const char *)NULL);
    return 0;
}

static int s_delrcpt(void *eng, const char *rcpt)
{
    struct pl_msess *s = eng;
    if (!may(s, SMFIF_DELRCPT) || rcpt == NULL || *rcpt == '\0')
        return -1;
    pl_mproto_put_strings(&s->out, SMFIR_DELRCPT, rcpt, (const char *)NULL);
    return 0;
}

static const struct pl_mctx_ops session_ops = {
    s_getsymval, s_addheader, s_chgheader, s_addrcpt, s_delrcpt,
};

void pl_msess_init(struct pl_msess *s)
{
    memset(s, 0, sizeof(*s));
    pl_chain_begin(&s->mc, &session_ops, s);
}

static void macros_clear(struct pl_msess *s, int from)
{
    for (int i = from; i < PL_MSESS_NMACRO; i++) {
        free(s->macros[i]);
        s->macros[i] = NULL;
        s->macro_len[i] = 0;
    }
}

void pl_msess_free(struct pl_msess *s)
{
    if (s->mc.connected || s->mc.in_txn || s->negotiated)
        pl_chain_close(&s->mc);
    macros_clear(s, 0);
    pl_mbuf_free(&s->in);
    pl_mbuf_free(&s->out);
}

/* ---- commands --------------------------------------------------------------- */

static void reply(struct pl_msess *s, sfsistat r)
{
    pl_mctx *c = &s->mc;
    char line[sizeof(c->rcode) + sizeof(c->xcode) + sizeof(c->text) + 4];
    switch (r) {
    case SMFIS_NOREPLY:
        return;
    case SMFIS_ACCEPT:
        pl_mproto_put(&s->out, SMFIR_ACCEPT, NULL, 0);
        return;
    case SMFIS_DISCARD:
        pl_mproto_put(&s->out, SMFIR_DISCARD, NULL, 0);
        return;
    case SMFIS_SKIP:
        pl_mproto_put(&s->out, SMFIR_SKIP, NULL, 0);
        return;
    case SMFIS_REJECT:
    case SMFIS_TEMPFAIL:
        if (c->have_reply && c->rcode[0] == (r == SMFIS_REJECT ? '5' : '4')) {
            snprintf(line, sizeof(line), "%s %s %s", c->rcode, c->xcode, c->text);
            pl_mproto_put(&s->out, SMFIR_REPLYCODE, line, strlen(line) + 1);
        } else {
            pl_mproto_put(&s->out, r == SMFIS_REJECT ? SMFIR_REJECT : SMFIR_TEMPFAIL, NULL, 0);
        }
        return;
    default:
        pl_mproto_put(&s->out, SMFIR_CONTINUE, NULL, 0);
    }
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int optneg(struct pl_msess *s, const unsigned char *d, size_t n, char *why, size_t wl)
{
    uint32_t ver, act, proto;
    unsigned long a, p;
    unsigned char hdr[12];
    struct pl_mbuf body = {0};

    if ((s->negotiated && !s->renegotiate) || pl_mproto_optneg(d, n, &ver, &act, &proto) != 0) {
        snprintf(why, wl, "bad option negotiation");
        return -1;
    }
    if (ver < 2) {
        snprintf(why, wl, "milter protocol version %u is too old", (unsigned)ver);
        return -1;
    }
    if (pl_chain_negotiate(&s->mc, act, proto, &a, &p) != 0) {
        snprintf(why, wl, pl_chain_draining() ? "stopping: session refused"
                                              : "Postfix lacks a milter action the filters need");
        return -1;
    }
    s->negotiated = 1;
    s->renegotiate = 0;
    s->actions = a;
    put32(hdr, ver < SMFI_PROT_VERSION ? ver : SMFI_PROT_VERSION);
    put32(hdr + 4, (uint32_t)a);
    put32(hdr + 8, (uint32_t)p);
    pl_mbuf_add(&body, hdr, sizeof(hdr));
    if (a & SMFIF_SETSYMLIST)
        for (int smfim = SMFIM_FIRST; smfim <= SMFIM_LAST; smfim++) {
            const char *m = pl_chain_symlist(smfim);
            unsigned char code[4];
            if (m == NULL)
                continue;
            put32(code, (uint32_t)smfim);
            pl_mbuf_add(&body, code, 4);
            pl_mbuf_add(&body, m, strlen(m) + 1);
        }
    pl_mproto_put(&s->out, SMFIC_OPTNEG, body.p, body.len);
    pl_mbuf_free(&body);
    return 0;
}

static int macro(struct pl_msess *s, const unsigned char *d, size_t n)
{
    int slot;
    if (n < 1 || (slot = macro_slot(d[0])) < 0)
        return 0;                      /* a stage we do not know: ignored */
    /* a stage's macros replace the ones of this stage and of the later ones */
    macros_clear(s, slot);
    if (n > 1) {
        s->macros[slot] = pl_xmalloc(n);
        memcpy(s->macros[slot], d + 1, n - 1);
        s->macros[slot][n - 1] = '\0';
        s->macro_len[slot] = n - 1;
    }
    return 0;
}

/* One command.  0 go on, 1 end, -1 error. */
static int command(struct pl_msess *s, unsigned char cmd, const unsigned char *d, size_t n,
                   char *why, size_t wl)
{
    pl_mctx *c = &s->mc;
    char **argv = NULL;
    int slot = macro_slot(cmd);

    if (!s->negotiated && cmd != SMFIC_OPTNEG && cmd != SMFIC_QUIT) {
        snprintf(why, wl, "command '%c' before option negotiation", cmd >= 32 && cmd < 127 ? cmd : '?');
        return -1;
    }
    if (slot >= 0 && slot < 7)
        s->mstage = slot;
    switch (cmd) {
    case SMFIC_OPTNEG:
        return optneg(s, d, n, why, wl);
    case SMFIC_MACRO:
        return macro(s, d, n);
    case SMFIC_CONNECT: {
        char *store;
        const char *host = "";
        struct sockaddr_storage ss;
        if (c->connected)
            pl_chain_close(c);
        if (pl_mproto_connect(d, n, &store, &host, &ss) != 0) {
            free(store);
            snprintf(why, wl, "malformed connect information");
            return -1;
        }
        reply(s, pl_chain_connect(c, host, ss.ss_family == AF_UNSPEC ? NULL : (struct sockaddr *)&ss));
        free(store);
        return 0;
    }
    case SMFIC_HELO:
    case SMFIC_MAIL:
    case SMFIC_RCPT:
    case SMFIC_HEADER:
        if (pl_mproto_strings(d, n, &argv, MAX_ARGS) < (cmd == SMFIC_HEADER ? 2 : 1)) {
            free(argv);
            snprintf(why, wl, "malformed '%c' command", cmd);
            return -1;
        }
        if (cmd == SMFIC_HELO)
            reply(s, pl_chain_helo(c, argv[0]));
        else if (cmd == SMFIC_MAIL)
            reply(s, pl_chain_envfrom(c, argv));
        else if (cmd == SMFIC_RCPT)
            reply(s, pl_chain_envrcpt(c, argv));
        else {
            s->mstage = 4;             /* headers see the DATA macros and before */
            reply(s, pl_chain_header(c, argv[0], argv[1]));
        }
        free(argv);
        return 0;
    case SMFIC_DATA:
        reply(s, pl_chain_data(c));
        return 0;
    case SMFIC_EOH:
        reply(s, pl_chain_eoh(c));
        return 0;
    case SMFIC_BODY:
        s->mstage = 5;
        reply(s, pl_chain_body(c, d, n));
        return 0;
    case SMFIC_BODYEOB:
        if (n > 0) {                   /* a last chunk with the end */
            sfsistat r = pl_chain_body(c, d, n);
            if (r == SMFIS_REJECT || r == SMFIS_TEMPFAIL || r == SMFIS_DISCARD) {
                reply(s, r);           /* the one answer to the end of message */
                pl_chain_abort(c);
                return 0;
            }
        }
        s->at_eom = 1;
        reply(s, pl_chain_eom(c));
        s->at_eom = 0;
        return 0;
    case SMFIC_ABORT:
        pl_chain_abort(c);
        return 0;
    case SMFIC_QUIT_NC: {              /* a new SMTP session follows on this socket */
        unsigned nr = c->nr;
        int can_skip = c->can_skip;
        pl_chain_close(c);
        macros_clear(s, 0);
        pl_chain_begin(c, &session_ops, s);
        c->nr = nr;
        c->can_skip = can_skip;
        s->renegotiate = 1;
        return 0;
    }
    case SMFIC_QUIT:
        return 1;
    case SMFIC_UNKNOWN:
        reply(s, SMFIS_CONTINUE);
        return 0;
    default:
        snprintf(why, wl, "unknown command 0x%02x", cmd);
        return -1;
    }
}

/* Serve the packets in s->in; with stop_at_eom, stop in front of an end of
 * message (2).  max: at most this many packets (0: all there are). */
static int serve(struct pl_msess *s, int stop_at_eom, unsigned max, char *why, size_t whylen)
{
    size_t off = 0;
    unsigned done = 0;
    int rc = 0;

    while (rc == 0 && (max == 0 || done < max)) {
        unsigned char cmd;
        const unsigned char *d;
        size_t n, used;
        int got = pl_mproto_next(s->in.p + off, s->in.len - off, &cmd, &d, &n, &used);
        if (got == 0)
            break;
        if (got < 0) {
            snprintf(why, whylen, "malformed packet (length 0 or over %u bytes)",
                     PL_MPROTO_MAX_PACKET);
            rc = -1;
            break;
        }
        if (stop_at_eom && cmd == SMFIC_BODYEOB) {
            rc = 2;
            break;
        }
        rc = command(s, cmd, d, n, why, whylen);
        off += used;
        done++;
    }
    pl_mbuf_consume(&s->in, off);
    return rc;
}

int pl_msess_input(struct pl_msess *s, const void *data, size_t len, char *why, size_t whylen)
{
    pl_mbuf_add(&s->in, data, len);
    return serve(s, s->eom_apart, 0, why, whylen);
}

int pl_msess_eom(struct pl_msess *s, char *why, size_t whylen)
{
    return serve(s, 0, 1, why, whylen);
}
