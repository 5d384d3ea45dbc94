/* fuzz_milter.c -- libFuzzer target: the native milter engine's protocol
 * side (server/milter_proto.c, milter_session.c, milter_chain.c) as
 * Postfix would drive it.  The input is what the MTA sends, fed in a few
 * pieces (the split points come from the input) so that packets arrive
 * torn; two filters sit in the chain: the first reads macros and headers
 * and changes the message at the end, the second refuses now and then.
 * Every reply the session writes must be a well-formed packet. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_chain.h"
#include "milter_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sum;

static sfsistat f1_connect(pl_mctx *c, const char *host, const struct sockaddr *sa)
{
    sum += (unsigned)strlen(host) + (sa ? sa->sa_family : 0);
    pl_mf_setpriv(c, (void *)1);
    return SMFIS_CONTINUE;
}
static sfsistat f1_envfrom(pl_mctx *c, char **argv)
{
    const char *a = pl_mf_getsymval(c, "{auth_authen}");
    for (; *argv; argv++)
        sum += (unsigned)strlen(*argv);
    return a && strcmp(a, "bad") == 0 ? SMFIS_REJECT : SMFIS_CONTINUE;
}
static sfsistat f1_header(pl_mctx *c, const char *n, const char *v)
{
    (void)c;
    sum += (unsigned)strlen(n) + (unsigned)strlen(v);
    return strcmp(n, "X-Fail") == 0 ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;   /* no-reply stage */
}
static sfsistat f1_body(pl_mctx *c, const unsigned char *b, size_t n)
{
    (void)c;
    for (size_t i = 0; i < n; i++)
        sum += b[i];
    return n > 100 ? SMFIS_SKIP : SMFIS_CONTINUE;
}
static sfsistat f1_eom(pl_mctx *c)
{
    const char *q = pl_mf_getsymval(c, "i");
    pl_mf_addheader(c, "X-Test", q ? q : "none");
    pl_mf_chgheader(c, "Subject", 1, NULL);
    pl_mf_addrcpt(c, "<dev@example.org>");
    pl_mf_delrcpt(c, "<u@example.org>");
    return SMFIS_CONTINUE;
}
static void f1_close(pl_mctx *c) { pl_mf_setpriv(c, NULL); }

static sfsistat f2_envrcpt(pl_mctx *c, char **argv)
{
    if (strstr(argv[0], "reject")) {
        pl_mf_setreply(c, "550", "5.1.1", "no such user\r\n%s");
        return SMFIS_REJECT;
    }
    return strstr(argv[0], "accept") ? SMFIS_ACCEPT : SMFIS_CONTINUE;
}
static sfsistat f2_eom(pl_mctx *c)
{
    const char *q = pl_mf_getsymval(c, "i");
    if (q && q[0] == 'T') {
        pl_mf_setreply(c, "451", "4.3.0", "busy");
        return SMFIS_TEMPFAIL;
    }
    return q && q[0] == 'D' ? SMFIS_DISCARD : SMFIS_CONTINUE;
}

static const struct pl_filter f1 = {
    .name = "fuzz-one",
    .actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .stages = PL_MF_BIT(PL_MF_CONNECT) | PL_MF_BIT(PL_MF_MAIL) | PL_MF_BIT(PL_MF_HEADER) |
              PL_MF_BIT(PL_MF_BODY),
    .replies = PL_MF_BIT(PL_MF_MAIL),
    .macros = {[PL_MF_MAIL] = "{auth_authen}", [PL_MF_EOM] = "i"},
    .connect = f1_connect, .envfrom = f1_envfrom, .header = f1_header, .body = f1_body,
    .eom = f1_eom, .close = f1_close,
};
static const struct pl_filter f2 = {
    .name = "fuzz-two",
    .stages = PL_MF_BIT(PL_MF_RCPT),
    .replies = PL_MF_BIT(PL_MF_RCPT),
    .macros = {[PL_MF_EOM] = "i"},
    .envrcpt = f2_envrcpt, .eom = f2_eom,
};

/* The replies must parse back into packets, and only reply commands. */
static void check_out(struct pl_mbuf *o)
{
    size_t off = 0;
    while (off < o->len) {
        unsigned char cmd;
        const unsigned char *d;
        size_t n, used;
        if (pl_mproto_next(o->p + off, o->len - off, &cmd, &d, &n, &used) != 1)
            abort();
        if (!strchr("Ocartdsy+-hm", cmd))
            abort();
        off += used;
    }
    o->len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    static const struct pl_filter *const chain[] = {&f1, &f2};
    struct pl_msess s;
    char why[160];
    size_t off = 0, cut = size > 2 ? (size_t)data[0] % (size / 2 + 1) : size;
    int rc = 0;

    if (!init) {
        pl_chain_init(chain, 2);
        init = 1;
    }
    pl_msess_init(&s);
    while (off < size && rc == 0) {
        size_t n = cut ? cut : size - off;
        if (n > size - off)
            n = size - off;
        rc = pl_msess_input(&s, data + off, n, why, sizeof(why));
        check_out(&s.out);
        off += n;
        cut = cut * 3 + 1;
    }
    pl_msess_free(&s);
    if (pl_chain_live() != 0 || pl_chain_busy() != 0)
        abort();                       /* a transaction left counted */
    return 0;
}
