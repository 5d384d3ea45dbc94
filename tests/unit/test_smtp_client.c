/* test_smtp_client.c -- unit tests of lib/smtp_client.h: the pure reply and
 * EHLO parsers, and the client against a scripted fake server running in a
 * thread on the other end of a socketpair (expected command lines, canned
 * replies, the message as it arrives on the wire, closing or staying
 * silent at chosen points).  SIGPIPE is left at its default on purpose: the
 * client must not raise it. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "smtp_client.h"
#include "smtp_dsn.h"

/* ---- the scripted server ---------------------------------------------- */

enum op {
    END,        /* script over: read until EOF (at most 10 s), then return */
    SEND,       /* write arg */
    EXPECT,     /* read one line; it must equal arg (CRLF not included) */
    ALONE,      /* EXPECT, and nothing else may have arrived with it */
    DATA,       /* read up to and including "\r\n.\r\n" into the wire buffer */
    CLOSE,      /* close our end now */
    SILENT,     /* read and drop everything until EOF (at most 10 s), never reply */
};

struct step { enum op op; const char *arg; };

struct fake {
    const struct step *script;
    pthread_t th;
    int sfd, cfd;
    char in[1 << 16];
    size_t inlen;
    char err[512];          /* first script mismatch */
    char *wire;             /* DATA as it came, final dot included */
    size_t wirelen, wirecap;
};

static int fill(struct fake *f, int ms)
{
    struct pollfd p = {.fd = f->sfd, .events = POLLIN};
    ssize_t k;
    if (f->inlen == sizeof(f->in) || poll(&p, 1, ms) <= 0)
        return -1;
    k = read(f->sfd, f->in + f->inlen, sizeof(f->in) - f->inlen);
    if (k <= 0)
        return -1;
    f->inlen += (size_t)k;
    return 0;
}

static int get_line(struct fake *f, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(f->in, '\n', f->inlen);
        if (nl != NULL) {
            size_t n = (size_t)(nl - f->in) + 1, m = n > 1 && nl[-1] == '\r' ? n - 2 : n - 1;
            if (m >= outlen)
                m = outlen - 1;
            memcpy(out, f->in, m);
            out[m] = '\0';
            memmove(f->in, f->in + n, f->inlen - n);
            f->inlen -= n;
            return 0;
        }
        if (fill(f, 10000) != 0)
            return -1;
    }
}

static void wire_add(struct fake *f, const char *s, size_t n)
{
    if (f->wirelen + n > f->wirecap) {
        f->wirecap = (f->wirelen + n) * 2;
        f->wire = realloc(f->wire, f->wirecap);
        assert_non_null(f->wire);
    }
    memcpy(f->wire + f->wirelen, s, n);
    f->wirelen += n;
}

static void drain(struct fake *f)
{
    for (int i = 0; i < 100000; i++) {
        f->inlen = 0;
        if (fill(f, 10000) != 0)
            return;
    }
}

static void *fake_thread(void *arg)
{
    struct fake *f = arg;
    char line[4096];

    for (const struct step *s = f->script; ; s++) {
        switch (s->op) {
        case END:
            drain(f);
            goto done;
        case SEND: {
            size_t n = strlen(s->arg);
            if (send(f->sfd, s->arg, n, MSG_NOSIGNAL) != (ssize_t)n)
                snprintf(f->err, sizeof(f->err), "cannot send %s", s->arg);
            break;
        }
        case EXPECT:
        case ALONE:
            if (get_line(f, line, sizeof(line)) != 0) {
                snprintf(f->err, sizeof(f->err), "expected \"%s\", got EOF", s->arg);
                goto done;
            }
            if (strcmp(line, s->arg) != 0) {
                snprintf(f->err, sizeof(f->err), "expected \"%.200s\", got \"%.200s\"", s->arg, line);
                goto done;
            }
            if (s->op == ALONE && f->inlen != 0) {
                snprintf(f->err, sizeof(f->err), "\"%s\" came with %zu more bytes", s->arg,
                         f->inlen);
                goto done;
            }
            break;
        case DATA:
            for (;;) {
                char *end = NULL;
                if (f->inlen >= 3 && f->wirelen == 0 && memcmp(f->in, ".\r\n", 3) == 0)
                    end = f->in;                       /* an empty message */
                for (size_t i = 0; end == NULL && i + 5 <= f->inlen; i++)
                    if (memcmp(f->in + i, "\r\n.\r\n", 5) == 0)
                        end = f->in + i + 2;
                if (end != NULL) {
                    size_t n = (size_t)(end - f->in) + 3;
                    wire_add(f, f->in, n);
                    memmove(f->in, f->in + n, f->inlen - n);
                    f->inlen -= n;
                    break;
                }
                if (f->inlen > 8) {                    /* keep a tail for the marker */
                    size_t n = f->inlen - 8;
                    wire_add(f, f->in, n);
                    memmove(f->in, f->in + n, f->inlen - n);
                    f->inlen -= n;
                }
                if (fill(f, 10000) != 0) {
                    snprintf(f->err, sizeof(f->err), "EOF in DATA");
                    goto done;
                }
            }
            break;
        case CLOSE:
            close(f->sfd);
            f->sfd = -1;
            return NULL;
        case SILENT:
            drain(f);
            goto done;
        }
    }
done:
    close(f->sfd);
    f->sfd = -1;
    return NULL;
}

static struct fake *fake_start(const struct step *script)
{
    struct fake *f = calloc(1, sizeof(*f));
    int sv[2];
    assert_non_null(f);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    f->sfd = sv[0];
    f->cfd = sv[1];
    f->script = script;
    assert_int_equal(pthread_create(&f->th, NULL, fake_thread, f), 0);
    return f;
}

/* Closes the client end, waits for the script; fails on a mismatch. */
static void fake_end(struct fake *f)
{
    close(f->cfd);
    assert_int_equal(pthread_join(f->th, NULL), 0);
    if (f->err[0] != '\0')
        fail_msg("fake server: %s", f->err);
    free(f->wire);
    free(f);
}

static const struct pl_smtpc_timeouts short_to = {
    .greeting_ms = 3000, .ehlo_ms = 3000, .mail_ms = 3000, .rcpt_ms = 3000,
    .data_ms = 3000, .dot_ms = 3000, .body_ms = 3000,
};

#define GREET {SEND, "220 mx.test ESMTP\r\n"}
#define EHLO_STEP {EXPECT, "EHLO client.test"}
#define CAPS_ALL "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n" \
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
#define CAPS_MIN "250-mx.test\r\n250 ENHANCEDSTATUSCODES\r\n"

static struct pl_smtpc *client(struct fake *f, const char *first)
{
    struct pl_smtpc *c = malloc(sizeof(*c));
    assert_non_null(c);
    pl_smtpc_init(c, f->cfd, &short_to);
    if (pl_smtpc_open(c, first, "client.test") != 0)
        fail_msg("open: stage %s: %s", pl_smtpc_stage_name(c->stage), c->err);
    return c;
}

/* ---- the parsers ------------------------------------------------------ */

static void test_reply_parse(void **state)
{
    struct pl_smtp_reply r;
    size_t used;
    static const char multi[] = "250-mx.test hello\r\n250-2.0.0 second\r\n250 2.0.0 third\r\nX";
    char big[PL_SMTP_LINE_MAX + 16];
    (void)state;

    assert_int_equal(pl_smtp_reply_parse(multi, strlen(multi), &r, &used), 1);
    assert_int_equal(used, strlen(multi) - 1);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.enh, "");                 /* only the first line counts */
    assert_string_equal(r.text, "mx.test hello\n2.0.0 second\n2.0.0 third");
    assert_int_equal(r.nlines, 3);

    assert_int_equal(pl_smtp_reply_parse("550-5.1.1 no such\r\n550 5.1.1 user\r\n", 35, &r,
                                         &used), 1);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.enh, "5.1.1");
    assert_string_equal(r.text, "no such\nuser");
    assert_int_equal(pl_smtp_reply_parse("451 4.2.0\n", 10, &r, &used), 1);   /* bare LF */
    assert_string_equal(r.enh, "4.2.0");
    assert_string_equal(r.text, "");
    assert_int_equal(pl_smtp_reply_parse("354\r\n", 5, &r, &used), 1);
    assert_int_equal(r.code, 354);
    assert_int_equal(pl_smtp_reply_parse("550 4.1.1 wrong class\r\n", 23, &r, &used), 1);
    assert_string_equal(r.enh, "");
    assert_string_equal(r.text, "4.1.1 wrong class");
    assert_int_equal(pl_smtp_reply_parse("250 a\tb\r\n", 9, &r, &used), 1);
    assert_string_equal(r.text, "a b");

    /* need more */
    assert_int_equal(pl_smtp_reply_parse("250-a\r\n250 b", 12, &r, &used), 0);
    assert_int_equal(used, 0);
    assert_int_equal(pl_smtp_reply_parse("", 0, &r, &used), 0);
    /* malformed */
    assert_int_equal(pl_smtp_reply_parse("250-a\r\n251 b\r\n", 14, &r, &used), -1);
    assert_int_equal(pl_smtp_reply_parse("25 short\r\n", 10, &r, &used), -1);
    assert_int_equal(pl_smtp_reply_parse("250xtext\r\n", 10, &r, &used), -1);
    assert_int_equal(pl_smtp_reply_parse("650 no\r\n", 8, &r, &used), -1);
    assert_int_equal(pl_smtp_reply_parse("abc\r\n", 5, &r, &used), -1);
    memset(big, 'x', sizeof(big));
    memcpy(big, "250 ", 4);
    assert_int_equal(pl_smtp_reply_parse(big, sizeof(big), &r, &used), -1);
    big[PL_SMTP_LINE_MAX] = '\r';
    big[PL_SMTP_LINE_MAX + 1] = '\n';                 /* exactly LINE_MAX: fine */
    assert_int_equal(pl_smtp_reply_parse(big, PL_SMTP_LINE_MAX + 2, &r, &used), 1);
    assert_int_equal(r.textlen, PL_SMTP_LINE_MAX - 4);
}

static void test_reply_truncated(void **state)
{
    struct pl_smtp_reply r;
    size_t used, len = 0;
    char *buf = malloc(10 * 1100 + 16);
    char line[1100];
    (void)state;
    memset(line, 'y', sizeof(line));
    for (int i = 0; i < 10; i++) {
        memcpy(buf + len, i == 9 ? "250 " : "250-", 4);
        memcpy(buf + len + 4, line, 1000);
        memcpy(buf + len + 1004, "\r\n", 2);
        len += 1006;
    }
    assert_int_equal(pl_smtp_reply_parse(buf, len, &r, &used), 1);
    assert_int_equal(used, len);                      /* consumed all of it */
    assert_int_equal(r.truncated, 1);
    assert_int_equal(r.textlen, PL_SMTP_TEXT_MAX);
    assert_int_equal(strlen(r.text), PL_SMTP_TEXT_MAX);
    assert_int_equal(r.nlines, 10);
    free(buf);
}

static void test_reply_format(void **state)
{
    struct pl_smtp_reply r;
    size_t used;
    char out[256];
    static const char in[] = "220-2.0.0 mx.test\r\n220 2.0.0 ready\r\n";
    (void)state;
    assert_int_equal(pl_smtp_reply_parse(in, strlen(in), &r, &used), 1);
    assert_int_equal(pl_smtp_reply_format(&r, out, sizeof(out)), strlen(in));
    assert_string_equal(out, in);
    assert_int_equal(pl_smtp_reply_format(&r, out, 10), 0);
}

static void test_caps(void **state)
{
    struct pl_smtp_reply r;
    struct pl_smtp_caps k;
    size_t used;
    static const char in[] = "250-mx.test says hi\r\n250-pipelining\r\n250-SIZE 1234\r\n"
                             "250-CHUNKING\r\n250-XCLIENT NAME ADDR PORT HELO\r\n250-DSN\r\n"
                             "250 8BITMIME\r\n";
    (void)state;
    assert_int_equal(pl_smtp_reply_parse(in, strlen(in), &r, &used), 1);
    pl_smtp_caps_parse(&r, &k);
    assert_true(k.pipelining && k.size && k.dsn && k.eightbitmime && k.xclient);
    assert_false(k.smtputf8 || k.enhancedstatuscodes);
    assert_int_equal(k.size_max, 1234);
    assert_int_equal(k.xclient_attrs,
                     PL_SMTP_XCLIENT_NAME | PL_SMTP_XCLIENT_ADDR | PL_SMTP_XCLIENT_HELO);
    /* the first line is the server's name, not a keyword */
    assert_int_equal(pl_smtp_reply_parse("250-DSN\r\n250 SIZE\r\n", 19, &r, &used), 1);
    pl_smtp_caps_parse(&r, &k);
    assert_false(k.dsn);
    assert_true(k.size);
    assert_int_equal(k.size_max, 0);
}

static void test_dsn_syntax(void **state)
{
    char out[32];
    (void)state;
#define OK(f, s) assert_true(f(s, strlen(s)))
#define BAD(f, s) assert_false(f(s, strlen(s)))
    OK(pl_dsn_notify_ok, "NEVER");
    OK(pl_dsn_notify_ok, "success,FAILURE,delay");
    OK(pl_dsn_notify_ok, "DELAY");
    BAD(pl_dsn_notify_ok, "NEVER,SUCCESS");
    BAD(pl_dsn_notify_ok, "SUCCESS,SUCCESS");
    BAD(pl_dsn_notify_ok, "SUCCESS,");
    BAD(pl_dsn_notify_ok, "");
    BAD(pl_dsn_notify_ok, "SOMETIMES");
    OK(pl_dsn_orcpt_ok, "rfc822;bob@example.com");
    OK(pl_dsn_orcpt_ok, "rfc822;b+2Bob@example.com");
    BAD(pl_dsn_orcpt_ok, "rfc822bob@example.com");
    BAD(pl_dsn_orcpt_ok, ";bob@x");
    BAD(pl_dsn_orcpt_ok, "rfc822;");
    BAD(pl_dsn_orcpt_ok, "rfc822;a=b");
    BAD(pl_dsn_orcpt_ok, "rfc822;a+2b");
    BAD(pl_dsn_orcpt_ok, "rfc 822;a");
    OK(pl_dsn_ret_ok, "hdrs");
    BAD(pl_dsn_ret_ok, "HEAD");
    assert_int_equal(pl_xtext_encode("a b+c=", out, sizeof(out)), 12);
    assert_string_equal(out, "a+20b+2Bc+3D");
    assert_int_equal(pl_xtext_encode("abcdef", out, 4), (size_t)-1);
#undef OK
#undef BAD
}

/* ---- sessions --------------------------------------------------------- */

/* Multiline greeting and EHLO, three recipients each with its own reply,
 * pipelined (every command before any reply), a multiline final reply. */
static void test_pipelined_mixed(void **state)
{
    static const struct step script[] = {
        {SEND, "220-mx.test ESMTP\r\n220 2.0.0 second line\r\n"},
        EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<alice@example.com> SIZE=42 BODY=8BITMIME"},
        {EXPECT, "RCPT TO:<one@example.net>"},
        {EXPECT, "RCPT TO:<two@example.net>"},
        {EXPECT, "RCPT TO:<three@example.net>"},
        {EXPECT, "DATA"},
        {SEND, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 <two@example.net>: no such\r\n"
               "550 5.1.1 user here\r\n451 4.2.0 try later\r\n354 go ahead\r\n"},
        {DATA, NULL},
        {SEND, "250-2.0.0 Ok: queued\r\n250 2.0.0 as ABC123\r\n"},
        {EXPECT, "QUIT"}, {SEND, "221 2.0.0 Bye\r\n"}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_rcpt rc[3] = {{.addr = "one@example.net"}, {.addr = "two@example.net"},
                                  {.addr = "three@example.net"}};
    struct pl_smtpc_msg m = {.sender = "alice@example.com", .body = PL_SMTPC_BODY_8BITMIME,
                             .size = 42, .rcpts = rc, .nrcpts = 3, .data = "Subject: x\n\nhi\n",
                             .len = 15};
    struct pl_smtpc_result res;
    (void)state;
    assert_int_equal(c->greeting.code, 220);
    assert_string_equal(c->greeting.text, "mx.test ESMTP\n2.0.0 second line");
    assert_true(c->caps.pipelining && c->caps.dsn && c->caps.smtputf8);
    assert_int_equal(c->caps.size_max, 1000000);
    assert_int_equal(pl_smtpc_send(c, &m, &res), 0);
    assert_int_equal(res.stage, PL_SMTPC_DONE);
    assert_int_equal(res.accepted, 1);
    assert_int_equal(res.mail.code, 250);
    assert_int_equal(rc[0].reply.code, 250);
    assert_string_equal(rc[0].reply.enh, "2.1.5");
    assert_int_equal(rc[1].reply.code, 550);
    assert_string_equal(rc[1].reply.enh, "5.1.1");
    assert_string_equal(rc[1].reply.text, "<two@example.net>: no such\nuser here");
    assert_int_equal(rc[2].reply.code, 451);
    assert_string_equal(rc[2].reply.enh, "4.2.0");
    assert_string_equal(rc[2].reply.text, "try later");
    assert_int_equal(res.data.code, 354);
    assert_int_equal(res.dot.code, 250);
    assert_string_equal(res.dot.text, "Ok: queued\nas ABC123");
    assert_int_equal(res.dsn_dropped, 0);
    pl_smtpc_quit(c);
    assert_int_equal(f->wirelen, 21);
    assert_memory_equal(f->wire, "Subject: x\r\n\r\nhi\r\n.\r\n", 21);
    fake_end(f);
    free(c);
}

/* No PIPELINING: each command goes alone after the previous reply; no DSN:
 * NOTIFY/ORCPT/RET/ENVID are left out and reported dropped; the token line
 * goes before the greeting. */
static void test_unpipelined_no_dsn(void **state)
{
    static const struct step script[] = {
        {ALONE, "POSTLINK 0123abcd"}, GREET, EHLO_STEP, {SEND, CAPS_MIN},
        {ALONE, "MAIL FROM:<>"}, {SEND, "250 2.1.0 Ok\r\n"},
        {ALONE, "RCPT TO:<bob@example.net>"}, {SEND, "250 2.1.5 Ok\r\n"},
        {ALONE, "RCPT TO:<carol@example.net>"}, {SEND, "550 5.1.1 unknown\r\n"},
        {ALONE, "DATA"}, {SEND, "354 go\r\n"},
        {DATA, NULL}, {SEND, "250 2.0.0 Ok\r\n"},
        {EXPECT, "QUIT"}, {SEND, "221 2.0.0 Bye\r\n"}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, "POSTLINK 0123abcd\r\n");
    struct pl_smtpc_rcpt rc[2] = {
        {.addr = "bob@example.net", .notify = "SUCCESS,FAILURE", .orcpt = "rfc822;bob@example.net"},
        {.addr = "carol@example.net", .notify = "NEVER"},
    };
    struct pl_smtpc_msg m = {.sender = "", .ret = "HDRS", .envid = "QQ123", .rcpts = rc,
                             .nrcpts = 2, .data = "x", .len = 1};
    struct pl_smtpc_result res;
    (void)state;
    assert_false(c->caps.pipelining || c->caps.dsn);
    assert_int_equal(pl_smtpc_send(c, &m, &res), 0);
    assert_int_equal(res.stage, PL_SMTPC_DONE);
    assert_int_equal(res.accepted, 1);
    assert_int_equal(res.dsn_dropped, 1);
    assert_int_equal(rc[1].reply.code, 550);
    pl_smtpc_quit(c);
    assert_int_equal(f->wirelen, 6);
    assert_memory_equal(f->wire, "x\r\n.\r\n", 6);
    fake_end(f);
    free(c);
}

/* DSN announced: every DSN parameter goes out as given. */
static void test_dsn_params(void **state)
{
    static const struct step script[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<a@example.com> BODY=7BIT SMTPUTF8 RET=HDRS ENVID=QQ+2B1"},
        {EXPECT, "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.net"},
        {EXPECT, "RCPT TO:<c@example.net> NOTIFY=NEVER"},
        {EXPECT, "DATA"},
        {SEND, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"},
        {DATA, NULL}, {SEND, "250 2.0.0 Ok\r\n"}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_rcpt rc[2] = {
        {.addr = "b@example.net", .notify = "SUCCESS,FAILURE", .orcpt = "rfc822;b@example.net"},
        {.addr = "c@example.net", .notify = "NEVER"},
    };
    struct pl_smtpc_msg m = {.sender = "a@example.com", .ret = "HDRS", .envid = "QQ+2B1",
                             .body = PL_SMTPC_BODY_7BIT, .smtputf8 = 1, .rcpts = rc,
                             .nrcpts = 2, .data = "", .len = 0};
    struct pl_smtpc_result res;
    (void)state;
    assert_int_equal(pl_smtpc_send(c, &m, &res), 0);
    assert_int_equal(res.accepted, 2);
    assert_int_equal(res.dsn_dropped, 0);
    assert_int_equal(f->wirelen, 3);                  /* empty message: just the dot */
    fake_end(f);
    free(c);
}

struct dribble { const char *s; size_t len, pos, step; };

static ssize_t dribble_read(void *ctx, char *buf, size_t n)
{
    struct dribble *d = ctx;
    size_t k = d->len - d->pos;
    if (k > d->step)
        k = d->step;
    if (k > n)
        k = n;
    memcpy(buf, d->s + d->pos, k);
    d->pos += k;
    return (ssize_t)k;
}

/* Sends msg (from memory, or step bytes per read_body call when step > 0)
 * and checks the bytes on the wire. */
static void stuffing_case(const char *msg, size_t len, size_t step, const char *want)
{
    static const struct step script[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<a@example.com>"}, {EXPECT, "RCPT TO:<b@example.net>"},
        {EXPECT, "DATA"}, {SEND, "250 Ok\r\n250 Ok\r\n354 go\r\n"},
        {DATA, NULL}, {SEND, "250 Ok\r\n"}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
    struct dribble d = {.s = msg, .len = len, .step = step};
    struct pl_smtpc_msg m = {.sender = "a@example.com", .rcpts = &rc, .nrcpts = 1,
                             .data = msg, .len = len};
    struct pl_smtpc_result res;
    if (step > 0) {
        m.read_body = dribble_read;
        m.body_ctx = &d;
    }
    assert_int_equal(pl_smtpc_send(c, &m, &res), 0);
    if (f->wirelen != strlen(want) || memcmp(f->wire, want, f->wirelen) != 0)
        fail_msg("wire: \"%.*s\", wanted \"%s\"", (int)f->wirelen, f->wire, want);
    fake_end(f);
    free(c);
}

static void test_dot_stuffing(void **state)
{
    static const char lf[] = ".\n..\nx.y\n.leading\n\nlast";
    static const char crlf[] = ".\r\n..\r\nx.y\r\n.leading\r\n\r\nlast";
    static const char want[] = "..\r\n...\r\nx.y\r\n..leading\r\n\r\nlast\r\n.\r\n";
    static const char cr[] = "a\rb\r\n.\rc\r\nend\r";
    static const char wantcr[] = "a\rb\r\n..\rc\r\nend\r\n.\r\n";
    (void)state;
    for (size_t step = 0; step <= 3; step++) {
        stuffing_case(lf, strlen(lf), step, want);
        stuffing_case(crlf, strlen(crlf), step, want);
        stuffing_case(cr, strlen(cr), step, wantcr);
    }
    stuffing_case("one\r\n", 5, 0, "one\r\n.\r\n");  /* nothing added after a line end */
    stuffing_case(".", 1, 0, "..\r\n.\r\n");
}

/* 8-bit message, no 8BITMIME / SMTPUTF8 needed but not announced: refused
 * before MAIL (the next thing the server sees is QUIT). */
static void test_local_refusals(void **state)
{
    static const struct step script[] = {
        GREET, EHLO_STEP, {SEND, CAPS_MIN},
        {ALONE, "QUIT"}, {SEND, "221 Bye\r\n"}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
    struct pl_smtpc_msg m = {.sender = "a@example.com", .body = PL_SMTPC_BODY_8BITMIME,
                             .rcpts = &rc, .nrcpts = 1, .data = "\xc3\xa9\n", .len = 3};
    struct pl_smtpc_result res;
    (void)state;
    assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
    assert_int_equal(res.stage, PL_SMTPC_MAIL);
    assert_int_equal(res.local, PL_SMTPC_LOCAL_PERM);
    assert_non_null(strstr(res.err, "8BITMIME"));
    assert_int_equal(res.mail.code, 0);
    m.body = PL_SMTPC_BODY_NONE;
    m.smtputf8 = 1;
    assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
    assert_int_equal(res.local, PL_SMTPC_LOCAL_PERM);
    assert_non_null(strstr(res.err, "SMTPUTF8"));
    m.smtputf8 = 0;
    rc.notify = "SOMETIMES";
    assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
    assert_int_equal(res.local, PL_SMTPC_LOCAL_PERM);
    rc.notify = NULL;
    rc.addr = "b@example.net>\r\nRSET";             /* no command injection */
    assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
    assert_int_equal(res.local, PL_SMTPC_LOCAL_PERM);
    assert_false(c->broken);
    pl_smtpc_quit(c);
    fake_end(f);
    free(c);
}

/* The server goes away while the message is being sent: BODY_SENDING. */
static void test_close_in_body(void **state)
{
    static const struct step script[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<a@example.com>"}, {EXPECT, "RCPT TO:<b@example.net>"},
        {EXPECT, "DATA"}, {SEND, "250 Ok\r\n250 Ok\r\n354 go\r\n"}, {CLOSE, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
    size_t len = 4 << 20;                             /* more than socket buffers hold */
    char *big = malloc(len);
    struct pl_smtpc_msg m = {.sender = "a@example.com", .rcpts = &rc, .nrcpts = 1,
                             .data = big, .len = len};
    struct pl_smtpc_result res;
    (void)state;
    memset(big, 'z', len);
    for (size_t i = 70; i < len; i += 71)
        big[i] = '\n';
    assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
    assert_int_equal(res.stage, PL_SMTPC_BODY_SENDING);
    assert_int_equal(res.timedout, 0);
    assert_int_equal(res.local, PL_SMTPC_LOCAL_NONE);
    assert_true(c->broken);
    pl_smtpc_quit(c);                                 /* does nothing, at once */
    fake_end(f);
    free(big);
    free(c);
}

/* The whole message and the final dot were read, then the server closes
 * (or stays silent): AFTER_DOT, outcome unknown. */
static void test_after_dot(void **state)
{
    static const struct step closing[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<a@example.com>"}, {EXPECT, "RCPT TO:<b@example.net>"},
        {EXPECT, "DATA"}, {SEND, "250 Ok\r\n250 Ok\r\n354 go\r\n"}, {DATA, NULL}, {CLOSE, NULL},
    };
    static const struct step silent[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<a@example.com>"}, {EXPECT, "RCPT TO:<b@example.net>"},
        {EXPECT, "DATA"}, {SEND, "250 Ok\r\n250 Ok\r\n354 go\r\n"}, {DATA, NULL}, {SILENT, NULL},
    };
    const struct step *scripts[] = {closing, silent};
    (void)state;
    for (int i = 0; i < 2; i++) {
        struct fake *f = fake_start(scripts[i]);
        struct pl_smtpc *c = client(f, NULL);
        struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
        struct pl_smtpc_msg m = {.sender = "a@example.com", .rcpts = &rc, .nrcpts = 1,
                                 .data = "hello\n", .len = 6};
        struct pl_smtpc_result res;
        c->to.dot_ms = 300;
        assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
        assert_int_equal(res.stage, PL_SMTPC_AFTER_DOT);
        assert_int_equal(res.timedout, i == 1);
        assert_int_equal(res.dot.code, 0);
        assert_int_equal(rc.reply.code, 250);
        fake_end(f);
        assert_true(c->broken);
        free(c);
    }
}

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A silent server: the timeout of the command we wait on, the right stage. */
static void test_silent_server(void **state)
{
    static const struct step at_greeting[] = {{SILENT, NULL}};
    static const struct step at_mail[] = {
        GREET, EHLO_STEP, {SEND, CAPS_MIN}, {EXPECT, "MAIL FROM:<a@example.com>"},
        {SILENT, NULL},
    };
    static const struct step at_rcpt[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL}, {EXPECT, "MAIL FROM:<a@example.com>"},
        {EXPECT, "RCPT TO:<b@example.net>"}, {EXPECT, "DATA"}, {SEND, "250 Ok\r\n"},
        {SILENT, NULL},
    };
    static const struct step at_data[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL}, {EXPECT, "MAIL FROM:<a@example.com>"},
        {EXPECT, "RCPT TO:<b@example.net>"}, {EXPECT, "DATA"}, {SEND, "250 Ok\r\n250 Ok\r\n"},
        {SILENT, NULL},
    };
    struct pl_smtpc c;
    struct pl_smtpc_timeouts to = short_to;
    long long t0;
    (void)state;

    struct fake *f = fake_start(at_greeting);
    to.greeting_ms = 300;
    pl_smtpc_init(&c, f->cfd, &to);
    t0 = mono_ms();
    assert_int_equal(pl_smtpc_open(&c, NULL, "client.test"), -1);
    assert_true(mono_ms() - t0 >= 300 && mono_ms() - t0 < 2500);
    assert_int_equal(c.stage, PL_SMTPC_GREETING);
    assert_int_equal(c.timedout, 1);
    fake_end(f);

    const struct step *scripts[] = {at_mail, at_rcpt, at_data};
    const enum pl_smtpc_stage want[] = {PL_SMTPC_MAIL, PL_SMTPC_RCPT, PL_SMTPC_DATA};
    for (int i = 0; i < 3; i++) {
        struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
        struct pl_smtpc_msg m = {.sender = "a@example.com", .rcpts = &rc, .nrcpts = 1,
                                 .data = "x\n", .len = 2};
        struct pl_smtpc_result res;
        f = fake_start(scripts[i]);
        to = short_to;
        to.mail_ms = to.rcpt_ms = to.data_ms = 300;
        pl_smtpc_init(&c, f->cfd, &to);
        assert_int_equal(pl_smtpc_open(&c, NULL, "client.test"), 0);
        t0 = mono_ms();
        assert_int_equal(pl_smtpc_send(&c, &m, &res), -1);
        assert_true(mono_ms() - t0 < 2500);
        assert_int_equal(res.stage, want[i]);
        assert_int_equal(res.timedout, 1);
        assert_non_null(strstr(res.err, "timeout"));
        fake_end(f);
    }
}

static void test_greeting_554_and_helo(void **state)
{
    static const struct step refuse[] = {{SEND, "554 5.7.1 go away\r\n"}, {END, NULL}};
    static const struct step helo[] = {
        GREET, EHLO_STEP, {SEND, "502 5.5.2 what\r\n"}, {EXPECT, "HELO client.test"},
        {SEND, "250 mx.test\r\n"},
        {ALONE, "MAIL FROM:<a@example.com>"}, {SEND, "250 Ok\r\n"},
        {ALONE, "RCPT TO:<b@example.net>"}, {SEND, "550 5.1.1 no\r\n"},
        {ALONE, "RSET"}, {SEND, "250 Ok\r\n"},
        {END, NULL},
    };
    struct pl_smtpc c;
    struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
    struct pl_smtpc_msg m = {.sender = "a@example.com", .rcpts = &rc, .nrcpts = 1,
                             .data = "x", .len = 1};
    struct pl_smtpc_result res;
    struct fake *f = fake_start(refuse);
    (void)state;
    pl_smtpc_init(&c, f->cfd, &short_to);
    assert_int_equal(pl_smtpc_open(&c, NULL, "client.test"), -1);
    assert_int_equal(c.stage, PL_SMTPC_GREETING);
    assert_int_equal(c.greeting.code, 554);
    assert_string_equal(c.greeting.enh, "5.7.1");
    assert_int_equal(c.timedout, 0);
    fake_end(f);

    f = fake_start(helo);
    pl_smtpc_init(&c, f->cfd, &short_to);
    assert_int_equal(pl_smtpc_open(&c, NULL, "client.test"), 0);
    assert_int_equal(c.esmtp, 0);
    assert_int_equal(pl_smtpc_send(&c, &m, &res), -1);  /* no DATA without a recipient */
    assert_int_equal(res.stage, PL_SMTPC_RCPT);
    assert_int_equal(rc.reply.code, 550);
    assert_int_equal(pl_smtpc_rset(&c), 0);
    fake_end(f);
}

/* Pipelined, MAIL refused: the RCPT and DATA replies are read too and the
 * stage is MAIL. */
static void test_mail_refused_pipelined(void **state)
{
    static const struct step script[] = {
        GREET, EHLO_STEP, {SEND, CAPS_ALL},
        {EXPECT, "MAIL FROM:<a@example.com>"}, {EXPECT, "RCPT TO:<b@example.net>"},
        {EXPECT, "DATA"},
        {SEND, "553 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need RCPT\r\n"},
        {ALONE, "RSET"}, {SEND, "250 Ok\r\n"}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_rcpt rc = {.addr = "b@example.net"};
    struct pl_smtpc_msg m = {.sender = "a@example.com", .rcpts = &rc, .nrcpts = 1,
                             .data = "x", .len = 1};
    struct pl_smtpc_result res;
    (void)state;
    assert_int_equal(pl_smtpc_send(c, &m, &res), -1);
    assert_int_equal(res.stage, PL_SMTPC_MAIL);
    assert_int_equal(res.mail.code, 553);
    assert_int_equal(rc.reply.code, 503);
    assert_int_equal(res.data.code, 503);
    assert_non_null(strstr(res.err, "553"));
    assert_int_equal(pl_smtpc_rset(c), 0);
    fake_end(f);
    free(c);
}

static void test_xclient(void **state)
{
    static const struct step script[] = {
        GREET, EHLO_STEP, {SEND, "250-mx.test\r\n250-XCLIENT ADDR NAME PROTO HELO LOGIN\r\n"
                                 "250 PIPELINING\r\n"},
        {ALONE, "XCLIENT ADDR=127.0.0.2 NAME=peer.example PROTO=ESMTP HELO=a+20b"},
        {SEND, "220 2.0.0 mx.test ESMTP again\r\n"},
        EHLO_STEP, {SEND, CAPS_MIN}, {END, NULL},
    };
    struct fake *f = fake_start(script);
    struct pl_smtpc *c = client(f, NULL);
    struct pl_smtpc_xclient x = {.addr = "127.0.0.2", .name = "peer.example",
                                 .proto = "ESMTP", .helo = "a b"};
    char out[128];
    (void)state;
    assert_int_equal(pl_smtpc_xclient(c, &x), 0);
    assert_int_equal(c->greeting.code, 220);
    assert_int_equal(pl_smtp_reply_format(&c->greeting, out, sizeof(out)), 31);
    assert_string_equal(out, "220 2.0.0 mx.test ESMTP again\r\n");
    assert_int_equal(pl_smtpc_xclient(c, &x), 1);     /* gone until the next EHLO */
    assert_int_equal(pl_smtpc_ehlo(c, "client.test"), 0);
    assert_int_equal(pl_smtpc_xclient(c, &x), 1);     /* not announced */
    fake_end(f);
    free(c);
}

static void test_connect_tcp(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sa);
    char err[256];
    int l = socket(AF_INET, SOCK_STREAM, 0), fd;
    unsigned port;
    (void)state;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    fd = pl_smtpc_connect_tcp("127.0.0.1", port, 2000, err, sizeof(err));
    assert_true(fd >= 0);
    close(fd);
    close(l);                                         /* now nobody listens there */
    assert_int_equal(pl_smtpc_connect_tcp("127.0.0.1", port, 2000, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "refused"));
    assert_int_equal(pl_smtpc_connect_tcp("localhost", 25, 2000, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "numeric"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_parse),
        cmocka_unit_test(test_reply_truncated),
        cmocka_unit_test(test_reply_format),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_dsn_syntax),
        cmocka_unit_test(test_pipelined_mixed),
        cmocka_unit_test(test_unpipelined_no_dsn),
        cmocka_unit_test(test_dsn_params),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_local_refusals),
        cmocka_unit_test(test_close_in_body),
        cmocka_unit_test(test_after_dot),
        cmocka_unit_test(test_silent_server),
        cmocka_unit_test(test_greeting_554_and_helo),
        cmocka_unit_test(test_mail_refused_pipelined),
        cmocka_unit_test(test_xclient),
        cmocka_unit_test(test_connect_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
