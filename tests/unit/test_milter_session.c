/* test_milter_session.c -- the native milter engine's protocol side
 * (server/milter_session.c, milter_chain.c, milter_proto.c) fed the
 * packets Postfix sends: what is negotiated (stages left out, "no reply"
 * stages, macro lists), the replies at each stage, a failure in a
 * no-reply stage answered at the next stage that replies, the order of
 * two filters in one chain, changes allowed only at end of message, and
 * torn or malformed input. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "milter_chain.h"
#include "milter_session.h"

/* ---- two test filters ------------------------------------------------------ */

static char seen_auth[64], seen_qid[64], seen_hdrs[256];
static int early_edit;                 /* an edit tried before the end: its result */
static unsigned eom_calls_a, eom_calls_b, close_calls;

static sfsistat a_envfrom(pl_mctx *c, char **argv)
{
    const char *auth = pl_mf_getsymval(c, "{auth_authen}");
    snprintf(seen_auth, sizeof(seen_auth), "%s", auth ? auth : "-");
    early_edit = pl_mf_addheader(c, "X-Early", "1");
    pl_mf_setpriv(c, seen_auth);
    return strcmp(argv[0], "<refused@example.org>") == 0 ? SMFIS_REJECT : SMFIS_CONTINUE;
}
static sfsistat a_header(pl_mctx *c, const char *n, const char *v)
{
    size_t l = strlen(seen_hdrs);
    (void)c;
    snprintf(seen_hdrs + l, sizeof(seen_hdrs) - l, "%s=%s;", n, v);
    if (strcmp(n, "X-Break") == 0) {
        pl_mf_setreply(c, "451", "4.3.0", "broken header");
        return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
}
static sfsistat a_eom(pl_mctx *c)
{
    const char *q = pl_mf_getsymval(c, "i");
    eom_calls_a++;
    snprintf(seen_qid, sizeof(seen_qid), "%s", q ? q : "-");
    assert_ptr_equal(pl_mf_getpriv(c), seen_auth);
    assert_int_equal(pl_mf_addheader(c, "X-A", "1"), 0);
    assert_int_equal(pl_mf_chgheader(c, "X-Old", 1, NULL), 0);
    return SMFIS_CONTINUE;
}
static void a_close(pl_mctx *c) { close_calls++; pl_mf_setpriv(c, NULL); }

static sfsistat b_envrcpt(pl_mctx *c, char **argv)
{
    if (strstr(argv[0], "nobody")) {
        pl_mf_setreply(c, "550", "5.1.1", "no such user");
        return SMFIS_REJECT;
    }
    return SMFIS_CONTINUE;
}
static sfsistat b_eom(pl_mctx *c)
{
    eom_calls_b++;
    assert_int_equal(pl_mf_addrcpt(c, "<dev@example.org>"), 0);
    return SMFIS_CONTINUE;
}

static const struct pl_filter fa = {
    .name = "a",
    .actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    .stages = PL_MF_BIT(PL_MF_MAIL) | PL_MF_BIT(PL_MF_HEADER),
    .replies = PL_MF_BIT(PL_MF_MAIL),
    .macros = {[PL_MF_MAIL] = "{auth_authen}", [PL_MF_EOM] = "i"},
    .envfrom = a_envfrom, .header = a_header, .eom = a_eom, .close = a_close,
};
static const struct pl_filter fb = {
    .name = "b",
    .actions = SMFIF_ADDRCPT,
    .stages = PL_MF_BIT(PL_MF_RCPT),
    .replies = PL_MF_BIT(PL_MF_RCPT),
    .macros = {[PL_MF_EOM] = "i"},
    .envrcpt = b_envrcpt, .eom = b_eom,
};

/* ---- packets ------------------------------------------------------------------ */

struct pkt { unsigned char b[1024]; size_t n; };

static void add(struct pkt *p, char cmd, const void *d, size_t n)
{
    uint32_t len = (uint32_t)n + 1;
    unsigned char h[5] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 8), (unsigned char)len, (unsigned char)cmd};
    memcpy(p->b + p->n, h, 5);
    if (n > 0)
        memcpy(p->b + p->n + 5, d, n);
    p->n += 5 + n;
}

/* strings, each NUL-terminated, given as one string with '|' between */
static void adds(struct pkt *p, char cmd, const char *s)
{
    char buf[512];
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '|')
            buf[i] = '\0';
    add(p, cmd, buf, n + 1);
}

static void optneg(struct pkt *p)
{
    unsigned char d[12] = {0, 0, 0, 6, 0, 0, 0x01, 0xff, 0, 0x1f, 0xff, 0xff};
    add(p, 'O', d, sizeof(d));
}

/* The replies in s->out as a string of command letters ("c", "y:550 ...") */
static void replies(struct pl_msess *s, char *out, size_t len)
{
    size_t off = 0, o = 0;
    out[0] = '\0';
    while (off < s->out.len) {
        unsigned char cmd;
        const unsigned char *d;
        size_t n, used;
        assert_int_equal(pl_mproto_next(s->out.p + off, s->out.len - off, &cmd, &d, &n, &used), 1);
        if (cmd == 'y' || cmd == 'h' || cmd == '+' || cmd == 'm')
            o += (size_t)snprintf(out + o, len - o, "%c:%s ", cmd,
                                  cmd == 'm' ? (const char *)d + 4 : (const char *)d);
        else if (cmd != 'O')
            o += (size_t)snprintf(out + o, len - o, "%c ", cmd);
        off += used;
    }
    s->out.len = 0;
}

static int feed(struct pl_msess *s, struct pkt *p)
{
    char why[160];
    int rc = pl_msess_input(s, p->b, p->n, why, sizeof(why));
    p->n = 0;
    return rc;
}

/* A session that has been through the option negotiation. */
static void start(struct pl_msess *s, struct pkt *p)
{
    char r[512];
    pl_msess_init(s);
    optneg(p);
    feed(s, p);
    replies(s, r, sizeof(r));
}

static int setup(void **st)
{
    static const struct pl_filter *const two[] = {&fa, &fb};
    (void)st;
    pl_chain_init(two, 2);
    seen_auth[0] = seen_qid[0] = seen_hdrs[0] = '\0';
    eom_calls_a = eom_calls_b = close_calls = 0;
    early_edit = 99;
    return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_negotiation(void **st)
{
    struct pl_msess s;
    struct pkt p = {.n = 0};
    const unsigned char *d;
    unsigned char cmd;
    size_t n, used;
    uint32_t proto, actions;

    (void)st;
    pl_msess_init(&s);
    optneg(&p);
    assert_int_equal(feed(&s, &p), 0);
    assert_int_equal(pl_mproto_next(s.out.p, s.out.len, &cmd, &d, &n, &used), 1);
    assert_int_equal(cmd, 'O');
    actions = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
    proto = (uint32_t)d[8] << 24 | (uint32_t)d[9] << 16 | (uint32_t)d[10] << 8 | d[11];
    assert_int_equal(actions & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT),
                     SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT);
    assert_false(actions & SMFIF_DELRCPT);              /* nobody asked for it */
    /* stages nobody wants are not sent; headers are "no reply" */
    assert_true(proto & SMFIP_NOCONNECT);
    assert_true(proto & SMFIP_NOHELO);
    assert_true(proto & SMFIP_NOBODY);
    assert_true(proto & SMFIP_NOEOH);
    assert_true(proto & SMFIP_NODATA);
    assert_true(proto & SMFIP_NR_HDR);
    assert_false(proto & (SMFIP_NOMAIL | SMFIP_NR_MAIL | SMFIP_NORCPT | SMFIP_NR_RCPT));
    /* macro lists: MAIL {auth_authen}, EOM i */
    assert_true(n > 12);
    assert_non_null(memmem(d + 12, n - 12, "{auth_authen}", 13));
    assert_non_null(memmem(d + 12, n - 12, "\0\0\0\5i\0", 6));
    pl_msess_free(&s);
}

static void test_message(void **st)
{
    struct pl_msess s;
    struct pkt p = {.n = 0};
    char r[512];

    (void)st;
    start(&s, &p);
    add(&p, 'D', "M{auth_authen}\0alice@example.org\0", 33);
    adds(&p, 'M', "<alice@example.org>|SIZE=10");
    assert_int_equal(feed(&s, &p), 0);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "c ");
    assert_string_equal(seen_auth, "alice@example.org");
    assert_int_equal(early_edit, -1);                   /* no changes before the end */
    adds(&p, 'R', "<nobody@example.org>");
    adds(&p, 'R', "<bob@example.org>");
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "y:550 5.1.1 no such user c ");
    /* headers: no reply each; all of them in one read */
    adds(&p, 'L', "Subject|hi");
    adds(&p, 'L', "X-Old|1");
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "");
    assert_string_equal(seen_hdrs, "Subject=hi;X-Old=1;");
    add(&p, 'D', "Ei\0Q1\0", 6);
    add(&p, 'E', NULL, 0);
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "h:X-A m:X-Old +:<dev@example.org> c ");
    assert_string_equal(seen_qid, "Q1");
    assert_int_equal(eom_calls_a, 1);
    assert_int_equal(eom_calls_b, 1);
    assert_int_equal(pl_chain_live(), 0);
    adds(&p, 'Q', "");
    assert_int_equal(feed(&s, &p), 1);
    pl_msess_free(&s);
    assert_int_equal(close_calls, 1);
}

static void test_deferred_failure(void **st)
{
    struct pl_msess s;
    struct pkt p = {.n = 0};
    char r[512];

    (void)st;
    pl_msess_init(&s);
    optneg(&p);
    adds(&p, 'M', "<a@example.org>");
    adds(&p, 'L', "X-Break|1");       /* fails where Postfix waits for no answer */
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "c ");
    assert_int_equal(pl_chain_live(), 1);
    add(&p, 'E', NULL, 0);
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "y:451 4.3.0 broken header ");   /* answered at the end */
    assert_int_equal(eom_calls_a, 0);                      /* and the filters not asked */
    assert_int_equal(pl_chain_live(), 0);
    /* the next message starts clean */
    adds(&p, 'M', "<a@example.org>");
    add(&p, 'E', NULL, 0);
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "c h:X-A m:X-Old +:<dev@example.org> c ");
    pl_msess_free(&s);
}

static void test_reject_mail_and_abort(void **st)
{
    struct pl_msess s;
    struct pkt p = {.n = 0};
    char r[512];

    (void)st;
    pl_msess_init(&s);
    optneg(&p);
    adds(&p, 'M', "<refused@example.org>");
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "r ");
    add(&p, 'A', NULL, 0);
    feed(&s, &p);
    assert_int_equal(pl_chain_live(), 0);
    pl_msess_free(&s);
}

static void test_draining(void **st)
{
    struct pl_msess s;
    struct pkt p = {.n = 0};
    char why[160];

    (void)st;
    pl_msess_init(&s);
    optneg(&p);
    pl_chain_drain();
    assert_int_equal(pl_msess_input(&s, p.b, p.n, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "stopping"));
    pl_msess_free(&s);
}

static void test_torn_and_malformed(void **st)
{
    struct pl_msess s;
    struct pkt p = {.n = 0};
    char r[512], why[160];

    (void)st;
    pl_msess_init(&s);
    optneg(&p);
    adds(&p, 'M', "<a@example.org>");
    /* one byte at a time: the same answers */
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(pl_msess_input(&s, p.b + i, 1, why, sizeof(why)), 0);
    p.n = 0;
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "c ");
    /* MAIL whose data does not end in NUL */
    add(&p, 'M', "<x", 2);
    assert_int_equal(feed(&s, &p), -1);
    pl_msess_free(&s);
    /* a length of 0 */
    pl_msess_init(&s);
    assert_int_equal(pl_msess_input(&s, "\0\0\0\0O", 5, why, sizeof(why)), -1);
    pl_msess_free(&s);
    /* a command before the negotiation */
    pl_msess_init(&s);
    adds(&p, 'M', "<a@example.org>");
    assert_int_equal(feed(&s, &p), -1);
    pl_msess_free(&s);
}

/* A filter that fails where Postfix waits for no answer (MAIL, as
 * postlink-tag has it): the whole transaction is refused, recipient by
 * recipient and at the end, without calling the filters again; the next
 * transaction is clean. */
static int c_fail, c_eoms;
static sfsistat c_envfrom(pl_mctx *c, char **argv)
{
    (void)c;
    (void)argv;
    return c_fail ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
}
static sfsistat c_eom(pl_mctx *c) { (void)c; c_eoms++; return SMFIS_CONTINUE; }
static const struct pl_filter fc = {
    .name = "c",
    .stages = PL_MF_BIT(PL_MF_MAIL) | PL_MF_BIT(PL_MF_RCPT),
    .replies = PL_MF_BIT(PL_MF_RCPT),
    .envfrom = c_envfrom, .envrcpt = b_envrcpt, .eom = c_eom,
};

static void test_doomed_transaction(void **st)
{
    static const struct pl_filter *const one[] = {&fc};
    struct pl_msess s;
    struct pkt p = {.n = 0};
    char r[512];

    (void)st;
    pl_chain_init(one, 1);
    start(&s, &p);
    c_fail = 1;
    c_eoms = 0;
    adds(&p, 'M', "<a@example.org>");
    adds(&p, 'R', "<r1@example.org>");
    adds(&p, 'R', "<r2@example.org>");
    add(&p, 'E', NULL, 0);
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "t t t ");                   /* MAIL: no reply; RCPT, RCPT, EOM */
    assert_int_equal(c_eoms, 0);
    assert_int_equal(pl_chain_live(), 0);
    c_fail = 0;
    adds(&p, 'M', "<a@example.org>");
    adds(&p, 'R', "<r1@example.org>");
    add(&p, 'E', NULL, 0);
    feed(&s, &p);
    replies(&s, r, sizeof(r));
    assert_string_equal(r, "c c ");                     /* RCPT, EOM */
    assert_int_equal(c_eoms, 1);
    pl_msess_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_negotiation, setup),
        cmocka_unit_test_setup(test_message, setup),
        cmocka_unit_test_setup(test_deferred_failure, setup),
        cmocka_unit_test_setup(test_reject_mail_and_abort, setup),
        cmocka_unit_test_setup(test_torn_and_malformed, setup),
        cmocka_unit_test_setup(test_doomed_transaction, setup),
        cmocka_unit_test_setup(test_draining, setup),       /* last: draining stays on */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
