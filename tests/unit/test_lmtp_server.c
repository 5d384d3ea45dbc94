/* test_lmtp_server.c -- unit tests of the LMTP server: pl_lmtp_serve runs in
 * a thread on one end of a socketpair, the test speaks LMTP on the other
 * end; and of pl_unix_listen on a temporary directory.  SIGPIPE is left at
 * its default here on purpose: the server must not raise it. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "lmtp_server.h"
#include "log.h"
#include "testdir.h"

#define HOST "lmtp.test.example"

/* What the deliver callback saw (written by the server thread, read by the
 * test after a reply that the server sends only after the callback). */
struct rec {
    int calls;
    char sender[256];
    size_t nrcpts;
    char rcpts[8][256];
    char *msg;
    size_t msglen;
    /* the ESMTP parameters passed on ("-" when absent) */
    unsigned long long size;
    int body, smtputf8;
    char ret[16], envid[128];
    char notify[8][64], orcpt[8][600];
};

struct srv {
    struct pl_lmtp_server_opts o;
    struct rec rec;
    pthread_t th;
    int sfd, cfd;
    char in[1 << 16];                      /* client-side read buffer */
    size_t inlen;
};

static void deliver(void *ctx, const struct pl_lmtp_envelope *env,
                    char (*replies)[PL_LMTP_REPLY_MAX])
{
    struct rec *r = &((struct srv *)ctx)->rec;
    r->calls++;
    snprintf(r->sender, sizeof(r->sender), "%s", env->sender);
    r->nrcpts = env->nrcpts;
    for (size_t i = 0; i < env->nrcpts && i < 8; i++)
        snprintf(r->rcpts[i], sizeof(r->rcpts[i]), "%s", env->rcpts[i]);
    free(r->msg);
    r->msg = malloc(env->msglen + 1);
    memcpy(r->msg, env->msg, env->msglen);
    r->msg[env->msglen] = '\0';
    r->msglen = env->msglen;
    r->size = env->size;
    r->body = env->body;
    r->smtputf8 = env->smtputf8;
    snprintf(r->ret, sizeof(r->ret), "%s", env->ret ? env->ret : "-");
    snprintf(r->envid, sizeof(r->envid), "%s", env->envid ? env->envid : "-");
    for (size_t i = 0; i < env->nrcpts && i < 8; i++) {
        snprintf(r->notify[i], sizeof(r->notify[i]), "%s", env->notify[i] ? env->notify[i] : "-");
        snprintf(r->orcpt[i], sizeof(r->orcpt[i]), "%s", env->orcpt[i] ? env->orcpt[i] : "-");
    }
    for (size_t i = 0; i < env->nrcpts; i++)
        snprintf(replies[i], PL_LMTP_REPLY_MAX, "250 2.0.0 <%s> delivered", env->rcpts[i]);
}

static const char *check_rcpt(void *ctx, const char *rcpt)
{
    (void)ctx;
    return strncmp(rcpt, "bad@", 4) == 0 ? "550 5.1.1 <bad> no such sync address" : NULL;
}

static void *serve_thread(void *arg)
{
    struct srv *s = arg;
    pl_lmtp_serve(s->sfd, &s->o);
    return NULL;
}

static void srv_run(struct srv *s)
{
    assert_int_equal(pthread_create(&s->th, NULL, serve_thread, s), 0);
}

/* A server on a socketpair; the options may be changed before srv_run. */
static struct srv *srv_new(void)
{
    struct srv *s = calloc(1, sizeof(*s));
    int sv[2];
    assert_non_null(s);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s->sfd = sv[0];
    s->cfd = sv[1];
    s->o.hostname = HOST;
    s->o.idle_timeout_s = 10;
    s->o.deliver = deliver;
    s->o.ctx = s;
    return s;
}

static struct srv *srv_start(void)
{
    struct srv *s = srv_new();
    srv_run(s);
    return s;
}

/* Closes the client end, waits for the server thread to return. */
static void srv_end(struct srv *s)
{
    if (s->cfd >= 0)
        close(s->cfd);
    assert_int_equal(pthread_join(s->th, NULL), 0);
    free(s->rec.msg);
    free(s);
}

static void sendn(struct srv *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(s->cfd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        p += k;
        n -= (size_t)k;
    }
}

static void sends(struct srv *s, const char *p)
{
    sendn(s, p, strlen(p));
}

/* Reads one reply line without CRLF; returns 0, or -1 at EOF or after 5s. */
static int getline_(struct srv *s, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(s->in, '\n', s->inlen);
        struct pollfd p = {.fd = s->cfd, .events = POLLIN};
        ssize_t k;
        if (nl != NULL) {
            size_t n = (size_t)(nl - s->in) + 1, m = n;
            assert_true(n >= 2 && nl[-1] == '\r');
            m -= 2;
            if (m >= outlen)
                m = outlen - 1;
            memcpy(out, s->in, m);
            out[m] = '\0';
            memmove(s->in, s->in + n, s->inlen - n);
            s->inlen -= n;
            return 0;
        }
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        k = read(s->cfd, s->in + s->inlen, sizeof(s->in) - s->inlen);
        if (k <= 0)
            return -1;
        s->inlen += (size_t)k;
    }
}

static void expect(struct srv *s, const char *prefix)
{
    char line[1024];
    if (getline_(s, line, sizeof(line)) != 0)
        fail_msg("expected \"%s\", got EOF or timeout", prefix);
    if (strncmp(line, prefix, strlen(prefix)) != 0)
        fail_msg("expected \"%s\", got \"%s\"", prefix, line);
}

static void expect_eof(struct srv *s)
{
    char line[1024];
    assert_int_equal(getline_(s, line, sizeof(line)), -1);
}

/* Greeting and LHLO: the opening of every test. */
static void hello(struct srv *s)
{
    expect(s, "220 " HOST " LMTP postlink");
    sends(s, "LHLO client.example\r\n");
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-ENHANCEDSTATUSCODES");
    expect(s, "250-8BITMIME");
    expect(s, "250 SIZE ");
}

static void quit(struct srv *s)
{
    sends(s, "QUIT\r\n");
    expect(s, "221 2.0.0");
    expect_eof(s);
}

/* ---- tests ------------------------------------------------------------ */

static void test_greeting_lhlo(void **state)
{
    struct srv *s = srv_new();
    char line[256];
    (void)state;
    s->o.max_msg_bytes = 123456;
    srv_run(s);
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "220 " HOST " LMTP postlink");
    sends(s, "lhlo client.example\r\n");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250-" HOST);
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250-PIPELINING");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250-ENHANCEDSTATUSCODES");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250-8BITMIME");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250 SIZE 123456");
    sends(s, "LHLO\r\n");
    expect(s, "501 5.5.4");
    sends(s, "NOOP\r\nVRFY someone\r\nVRFY\r\n");
    expect(s, "250 2.0.0");
    expect(s, "252 2.5.2");
    expect(s, "501 5.5.4");
    quit(s);
    srv_end(s);
}

static void test_two_recipients(void **state)
{
    struct srv *s = srv_start();
    char line[256];
    (void)state;
    hello(s);
    sends(s, "MAIL FROM:<alice@example.com> SIZE=20 BODY=8BITMIME X-FOO=bar\r\n");
    expect(s, "250 2.1.0");
    sends(s, "RCPT TO:<one@sync.example> NOTIFY=NEVER\r\n");
    expect(s, "250 2.1.5");
    sends(s, "rcpt to:<two@sync.example>\r\n");
    expect(s, "250 2.1.5");
    sends(s, "DATA\r\n");
    expect(s, "354 ");
    sends(s, "Subject: hi\r\n\r\nbody\r\n.\r\n");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250 2.0.0 <one@sync.example> delivered");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "250 2.0.0 <two@sync.example> delivered");
    assert_int_equal(s->rec.calls, 1);
    assert_string_equal(s->rec.sender, "alice@example.com");
    assert_int_equal(s->rec.nrcpts, 2);
    assert_string_equal(s->rec.rcpts[0], "one@sync.example");
    assert_string_equal(s->rec.rcpts[1], "two@sync.example");
    assert_string_equal(s->rec.msg, "Subject: hi\r\n\r\nbody\r\n");
    /* a second transaction on the same connection, null sender */
    sends(s, "MAIL FROM:<>\r\nRCPT TO:<three@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <three@sync.example>");
    assert_int_equal(s->rec.calls, 2);
    assert_string_equal(s->rec.sender, "");
    assert_int_equal(s->rec.msglen, 0);
    quit(s);
    srv_end(s);
}

static void test_dot_unstuffing(void **state)
{
    struct srv *s = srv_start();
    static const char sent[] =
        "Subject: dots\r\n\r\n..\r\n..leading\r\n...two\r\nbare lf\nbare\rcr\r\n"
        ". space\r\nmid.dot\r\n.\r\n";
    static const char want[] =
        "Subject: dots\r\n\r\n.\r\n.leading\r\n..two\r\nbare lf\nbare\rcr\r\n"
        " space\r\nmid.dot\r\n";
    (void)state;
    hello(s);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@sync.example>\r\nDATA\r\n");
    expect(s, "250 ");
    expect(s, "250 ");
    expect(s, "354 ");
    sends(s, sent);
    expect(s, "250 2.0.0 <b@sync.example>");
    assert_int_equal(s->rec.msglen, strlen(want));
    assert_memory_equal(s->rec.msg, want, strlen(want));
    quit(s);
    srv_end(s);
}

/* The message arrives one byte per read: dots, CRs and the end marker are
 * split across reads. */
static void test_dribbled_data(void **state)
{
    struct srv *s = srv_start();
    static const char sent[] = "a\r\n..b\r\n.\rc\r\n\r\n.\r\nNOOP\r\n";
    static const char want[] = "a\r\n.b\r\n\rc\r\n\r\n";
    (void)state;
    hello(s);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@sync.example>\r\nDATA\r\n");
    expect(s, "250 ");
    expect(s, "250 ");
    expect(s, "354 ");
    for (size_t i = 0; i < sizeof(sent) - 1; i++) {
        sendn(s, sent + i, 1);
        usleep(2000);
    }
    expect(s, "250 2.0.0 <b@sync.example>");
    expect(s, "250 2.0.0");                /* the NOOP after the message */
    assert_int_equal(s->rec.msglen, strlen(want));
    assert_memory_equal(s->rec.msg, want, strlen(want));
    quit(s);
    srv_end(s);
}

static void test_pipelining(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    expect(s, "220 ");
    sends(s, "LHLO c\r\nMAIL FROM:<p@example.com>\r\nRCPT TO:<x@sync.example>\r\n"
             "RCPT TO:<y@sync.example>\r\nDATA\r\nline\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n");
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-ENHANCEDSTATUSCODES");
    expect(s, "250-8BITMIME");
    expect(s, "250 SIZE ");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    expect(s, "250 2.0.0 <x@sync.example>");
    expect(s, "250 2.0.0 <y@sync.example>");
    expect(s, "250 2.0.0");
    expect(s, "250 2.0.0");
    expect(s, "221 ");
    expect_eof(s);
    assert_int_equal(s->rec.calls, 1);
    assert_string_equal(s->rec.msg, "line\r\n");
    srv_end(s);
}

static void test_rset(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    hello(s);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@sync.example>\r\nRSET\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "250 2.0.0");
    sends(s, "DATA\r\n");
    expect(s, "503 5.5.1");
    sends(s, "RCPT TO:<b@sync.example>\r\n");
    expect(s, "503 5.5.1");
    sends(s, "MAIL FROM:<a@example.com>\r\n");   /* not "nested MAIL" */
    expect(s, "250 2.1.0");
    sends(s, "RSET extra\r\n");
    expect(s, "501 5.5.4");
    quit(s);
    assert_int_equal(s->rec.calls, 0);
    srv_end(s);
}

static void test_bad_sequence(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    expect(s, "220 ");
    sends(s, "MAIL FROM:<a@example.com>\r\n");
    expect(s, "503 5.5.1");                /* before LHLO */
    sends(s, "LHLO c\r\n");
    for (int i = 0; i < 5; i++)
        expect(s, "250");
    sends(s, "DATA\r\n");
    expect(s, "503 5.5.1");                /* before MAIL */
    sends(s, "RCPT TO:<b@sync.example>\r\n");
    expect(s, "503 5.5.1");                /* before MAIL */
    sends(s, "MAIL FROM:<a@example.com>\r\n");
    expect(s, "250 2.1.0");
    sends(s, "DATA\r\n");
    expect(s, "503 5.5.1");                /* before any RCPT */
    sends(s, "MAIL FROM:<a@example.com>\r\n");
    expect(s, "503 5.5.1");                /* nested */
    quit(s);
    srv_end(s);
}

static void test_unknown_and_syntax(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    hello(s);
    sends(s, "FROB\r\n");
    expect(s, "500 5.5.2");
    sends(s, "\r\n");
    expect(s, "500 5.5.2");
    sends(s, "EHLO c\r\n");
    expect(s, "500 5.5.2");
    sends(s, "DATAX\r\n");
    expect(s, "500 5.5.2");
    sends(s, "MAIL FROM:bogus@example.com\r\n");
    expect(s, "501 5.5.4");
    sends(s, "MAIL TO:<a@example.com>\r\n");
    expect(s, "501 5.5.4");
    sends(s, "MAIL FROM:<a@example.com> SIZE=12x\r\n");
    expect(s, "501 5.5.4");
    sends(s, "MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n");
    expect(s, "501 5.5.4");
    sends(s, "MAIL FROM:<a b@example.com>\r\n");
    expect(s, "501 5.5.4");
    sendn(s, "NO\0OP\r\n", 7);
    expect(s, "500 5.5.2");
    sends(s, "MAIL FROM: <\"a>b\"@example.com>\r\n");
    expect(s, "250 2.1.0");
    sends(s, "RCPT TO:<>\r\n");
    expect(s, "501 5.1.3");
    sends(s, "RCPT TO:<@relay.example:c@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, "x\n.\n");                    /* bare LF line ends, kept */
    expect(s, "250 2.0.0 <c@sync.example>");
    assert_string_equal(s->rec.sender, "\"a>b\"@example.com");
    assert_string_equal(s->rec.msg, "x\n");
    quit(s);
    srv_end(s);
}

static void test_oversize(void **state)
{
    struct srv *s = srv_new();
    char big[1000], exact[101];
    (void)state;
    s->o.max_msg_bytes = 100;
    srv_run(s);
    hello(s);
    sends(s, "MAIL FROM:<a@example.com> SIZE=101\r\n");
    expect(s, "552 5.3.4");
    sends(s, "MAIL FROM:<a@example.com> SIZE=99999999999999999999999\r\n");
    expect(s, "552 5.3.4");
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@sync.example>\r\n"
             "RCPT TO:<c@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    for (size_t i = 0; i < sizeof(big); i += 50)
        memcpy(big + i, "0123456789012345678901234567890123456789012345678\n", 50);
    for (int i = 0; i < 20; i++)
        sendn(s, big, sizeof(big));
    sends(s, ".\r\n");
    expect(s, "552 5.3.4");
    expect(s, "552 5.3.4");
    assert_int_equal(s->rec.calls, 0);
    /* the connection stays usable: exactly 100 bytes are accepted */
    memset(exact, 'x', 98);
    memcpy(exact + 98, "\r\n", 3);
    sends(s, "MAIL FROM:<a@example.com> SIZE=100\r\nRCPT TO:<b@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, exact);
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <b@sync.example>");
    assert_int_equal(s->rec.calls, 1);
    assert_int_equal(s->rec.msglen, 100);
    quit(s);
    srv_end(s);
}

/* keep_head_only: any size is accepted, the first max_msg_bytes handed over */
static void test_keep_head_only(void **state)
{
    struct srv *s = srv_new();
    char big[1000];
    (void)state;
    s->o.max_msg_bytes = 100;
    s->o.keep_head_only = 1;
    srv_run(s);
    expect(s, "220 " HOST " LMTP postlink");
    sends(s, "LHLO client.example\r\n");
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-ENHANCEDSTATUSCODES");
    expect(s, "250-8BITMIME");
    expect(s, "250 SIZE");             /* no fixed maximum (RFC 1870) */
    sends(s, "MAIL FROM:<a@example.com> SIZE=20000\r\nRCPT TO:<b@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    for (size_t i = 0; i < sizeof(big); i += 50)
        memcpy(big + i, "0123456789012345678901234567890123456789012345678\n", 50);
    for (int i = 0; i < 20; i++)
        sendn(s, big, sizeof(big));
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <b@sync.example>");
    assert_int_equal(s->rec.calls, 1);
    assert_int_equal(s->rec.msglen, 100);
    quit(s);
    srv_end(s);
}

static void test_check_rcpt(void **state)
{
    struct srv *s = srv_new();
    char line[256];
    (void)state;
    s->o.check_rcpt = check_rcpt;
    srv_run(s);
    hello(s);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<good@sync.example>\r\n"
             "RCPT TO:<bad@sync.example>\r\nRCPT TO:<good2@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    assert_int_equal(getline_(s, line, sizeof(line)), 0);
    assert_string_equal(line, "550 5.1.1 <bad> no such sync address");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, "hello\r\n.\r\n");
    expect(s, "250 2.0.0 <good@sync.example>");
    expect(s, "250 2.0.0 <good2@sync.example>");
    assert_int_equal(s->rec.nrcpts, 2);
    assert_string_equal(s->rec.rcpts[0], "good@sync.example");
    assert_string_equal(s->rec.rcpts[1], "good2@sync.example");
    /* only refused recipients: DATA is a bad sequence */
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<bad@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "550 5.1.1");
    expect(s, "503 5.5.1");
    quit(s);
    srv_end(s);
}

static void test_max_rcpts(void **state)
{
    struct srv *s = srv_new();
    (void)state;
    s->o.max_rcpts = 2;
    srv_run(s);
    hello(s);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<r1@sync.example>\r\n"
             "RCPT TO:<r2@sync.example>\r\nRCPT TO:<r3@sync.example>\r\nDATA\r\nm\r\n.\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "250 2.1.5");
    expect(s, "452 4.5.3");
    expect(s, "354 ");
    expect(s, "250 2.0.0 <r1@sync.example>");
    expect(s, "250 2.0.0 <r2@sync.example>");
    assert_int_equal(s->rec.nrcpts, 2);
    quit(s);
    srv_end(s);
}

static void test_quit(void **state)
{
    struct srv *s = srv_start();
    char c;
    (void)state;
    hello(s);
    sends(s, "QUIT\r\n");
    expect(s, "221 2.0.0");
    /* the server returns by itself and has closed its end */
    assert_int_equal(pthread_join(s->th, NULL), 0);
    assert_int_equal(read(s->cfd, &c, 1), 0);
    close(s->cfd);
    free(s);
}

static void test_long_command_line(void **state)
{
    struct srv *s = srv_start();
    char *line = malloc(20001);
    (void)state;
    hello(s);
    memset(line, 'A', 20000);
    line[20000] = '\0';
    sends(s, "NOOP ");
    sends(s, line);
    sends(s, "\r\nNOOP\r\n");
    expect(s, "500 5.5.2");
    expect(s, "250 2.0.0");                /* the rest of the long line was dropped */
    /* 2048 bytes are allowed, 2049 are not */
    memcpy(line, "NOOP ", 5);
    line[2048] = '\0';
    sends(s, line);
    sends(s, "\r\n");
    expect(s, "250 2.0.0");
    line[2048] = 'A';
    line[2049] = '\0';
    sends(s, line);
    sends(s, "\r\n");
    expect(s, "500 5.5.2");
    free(line);
    quit(s);
    srv_end(s);
}

static void test_long_data_line(void **state)
{
    struct srv *s = srv_start();
    size_t n = 300000;
    char *body = malloc(n + 3);
    (void)state;
    hello(s);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    memcpy(body + n, "\r\n", 3);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@sync.example>\r\nDATA\r\n");
    expect(s, "250 ");
    expect(s, "250 ");
    expect(s, "354 ");
    sends(s, body);
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <b@sync.example>");
    assert_int_equal(s->rec.msglen, n + 2);
    assert_memory_equal(s->rec.msg, body, n + 2);
    free(body);
    quit(s);
    srv_end(s);
}

static void test_disconnect_mid_data(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    hello(s);
    sends(s, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@sync.example>\r\nDATA\r\n");
    expect(s, "250 ");
    expect(s, "250 ");
    expect(s, "354 ");
    sends(s, "Subject: cut\r\n\r\nhalf a mess");
    close(s->cfd);
    s->cfd = -1;
    assert_int_equal(pthread_join(s->th, NULL), 0);
    assert_int_equal(s->rec.calls, 0);
    free(s);
}

/* The client sends and goes away without reading: the server's writes fail
 * with EPIPE, which must not kill the process with SIGPIPE. */
static void test_client_vanishes(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    expect(s, "220 ");
    sends(s, "LHLO c\r\nNOOP\r\nNOOP\r\n");
    close(s->cfd);
    s->cfd = -1;
    assert_int_equal(pthread_join(s->th, NULL), 0);
    free(s);
}

/* The client pipelines commands but never reads the replies: once both
 * socket buffers are full the server gives up after its idle timeout. */
static void test_client_never_reads(void **state)
{
    struct srv *s = srv_new();
    char chunk[600];
    (void)state;
    s->o.idle_timeout_s = 1;
    srv_run(s);
    for (size_t i = 0; i < sizeof(chunk); i += 6)
        memcpy(chunk + i, "NOOP\r\n", 6);
    for (int i = 0; i < 100000; i++) {
        ssize_t k = send(s->cfd, chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = s->cfd, .events = POLLOUT};
            if (poll(&p, 1, 1500) == 0)
                break;                     /* the server has stopped reading */
        } else if (k < 0) {
            break;                         /* EPIPE: the server is gone */
        }
    }
    assert_int_equal(pthread_join(s->th, NULL), 0);
    close(s->cfd);
    free(s);
}

static void test_idle_timeout(void **state)
{
    struct srv *s = srv_new();
    (void)state;
    s->o.idle_timeout_s = 1;
    srv_run(s);
    hello(s);
    expect(s, "421 4.4.2");
    expect_eof(s);
    srv_end(s);
}

static void test_unix_listen(void **state)
{
    char dir[64], path[128], err[256];
    struct srv *s;
    struct sockaddr_un sa;
    struct stat st;
    int lfd, fd;
    (void)state;
    assert_non_null(testdir_new(dir, sizeof(dir)));
    snprintf(path, sizeof(path), "%s/lmtp", dir);

    lfd = pl_unix_listen(path, 0, err, sizeof(err));
    assert_true(lfd >= 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);
    assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    close(lfd);                            /* leaves a stale socket file */

    lfd = pl_unix_listen(path, 1, err, sizeof(err));
    if (lfd < 0)
        fail_msg("pl_unix_listen over a stale socket: %s", err);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);

    /* a real session over it */
    s = srv_new();
    close(s->sfd);
    close(s->cfd);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_true((s->cfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(connect(s->cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_true((s->sfd = accept(lfd, NULL, NULL)) >= 0);
    srv_run(s);
    hello(s);
    quit(s);
    srv_end(s);
    close(lfd);

    /* a regular file is never removed */
    assert_int_equal(unlink(path), 0);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    err[0] = '\0';
    assert_int_equal(pl_unix_listen(path, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a socket"));
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 4);

    /* a path too long for sun_path */
    memset(path, 'x', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(pl_unix_listen(path, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "longer than"));
    testdir_remove(dir);
}

/* The dsn option: DSN (and with smtputf8 SMTPUTF8) announced, every DSN
 * parameter and SIZE, BODY, SMTPUTF8 handed to the agent as sent. */
static void test_dsn_pass_through(void **state)
{
    struct srv *s = srv_new();
    (void)state;
    s->o.dsn = 1;
    s->o.smtputf8 = 1;
    srv_run(s);
    expect(s, "220 ");
    sends(s, "LHLO client.example\r\n");
    expect(s, "250-" HOST);
    expect(s, "250-PIPELINING");
    expect(s, "250-ENHANCEDSTATUSCODES");
    expect(s, "250-8BITMIME");
    expect(s, "250-DSN");
    expect(s, "250-SMTPUTF8");
    expect(s, "250 SIZE ");
    sends(s, "MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME SMTPUTF8 ret=hdrs "
             "ENVID=QQ+2B1\r\n"
             "RCPT TO:<x@sync.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+2By@sync.example\r\n"
             "RCPT TO:<y@sync.example>\r\n"
             "RCPT TO:<z@sync.example> X-OTHER=1 NOTIFY=NEVER\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "250 2.1.5");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, "hi\r\n.\r\n");
    expect(s, "250 2.0.0 <x@sync.example>");
    expect(s, "250 2.0.0 <y@sync.example>");
    expect(s, "250 2.0.0 <z@sync.example>");
    assert_int_equal(s->rec.size, 100);
    assert_int_equal(s->rec.body, PL_LMTP_BODY_8BITMIME);
    assert_int_equal(s->rec.smtputf8, 1);
    assert_string_equal(s->rec.ret, "hdrs");
    assert_string_equal(s->rec.envid, "QQ+2B1");
    assert_string_equal(s->rec.notify[0], "SUCCESS,DELAY");
    assert_string_equal(s->rec.orcpt[0], "rfc822;x+2By@sync.example");
    assert_string_equal(s->rec.notify[1], "-");
    assert_string_equal(s->rec.orcpt[1], "-");
    assert_string_equal(s->rec.notify[2], "NEVER");
    /* the next transaction starts with nothing of the last one */
    sends(s, "MAIL FROM:<b@example.com> BODY=7BIT\r\nRCPT TO:<x@sync.example>\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <x@sync.example>");
    assert_int_equal(s->rec.size, 0);
    assert_int_equal(s->rec.body, PL_LMTP_BODY_7BIT);
    assert_int_equal(s->rec.smtputf8, 0);
    assert_string_equal(s->rec.ret, "-");
    assert_string_equal(s->rec.envid, "-");
    assert_string_equal(s->rec.notify[0], "-");
    quit(s);
    srv_end(s);
}

/* Malformed DSN parameters (RFC 3461 syntax) get 501 5.5.4 and change
 * nothing; unknown parameters are still ignored. */
static void test_dsn_malformed(void **state)
{
    static const char *const bad_mail[] = {
        "RET=BOTH", "RET=", "RET=FULL RET=HDRS", "ENVID=a=b", "ENVID=", "ENVID=a+2b",
        "ENVID=12345678901234567890123456789012345678901234567890"
        "123456789012345678901234567890123456789012345678901",
    };
    static const char *const bad_rcpt[] = {
        "NOTIFY=NEVER,SUCCESS", "NOTIFY=", "NOTIFY=SUCCESS,", "NOTIFY=SOMETIMES",
        "NOTIFY=SUCCESS NOTIFY=FAILURE", "ORCPT=rfc822", "ORCPT=;a@b", "ORCPT=rfc822;",
        "ORCPT=rfc822;a=b", "ORCPT=rfc822;a@b ORCPT=rfc822;c@d",
    };
    struct srv *s = srv_new();
    char line[1200];
    (void)state;
    s->o.dsn = 1;
    srv_run(s);
    expect(s, "220 ");
    sends(s, "LHLO c\r\n");
    for (int i = 0; i < 6; i++)
        expect(s, "250");
    for (size_t i = 0; i < sizeof(bad_mail) / sizeof(bad_mail[0]); i++) {
        snprintf(line, sizeof(line), "MAIL FROM:<a@example.com> %s\r\n", bad_mail[i]);
        sends(s, line);
        expect(s, "501 5.5.4");
    }
    sends(s, "MAIL FROM:<a@example.com> X-UNKNOWN=1\r\n");
    expect(s, "250 2.1.0");
    for (size_t i = 0; i < sizeof(bad_rcpt) / sizeof(bad_rcpt[0]); i++) {
        snprintf(line, sizeof(line), "RCPT TO:<x@sync.example> %s\r\n", bad_rcpt[i]);
        sends(s, line);
        expect(s, "501 5.5.4");
    }
    sends(s, "RCPT TO:<y@sync.example> NOTIFY=failure\r\nDATA\r\n");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <y@sync.example>");   /* the only recipient */
    assert_int_equal(s->rec.nrcpts, 1);
    assert_string_equal(s->rec.notify[0], "failure");
    assert_string_equal(s->rec.ret, "-");
    quit(s);
    srv_end(s);
}

/* Without the dsn option: no DSN announced, its parameters ignored as
 * before (not checked, not handed over); SMTPUTF8 handed over anyway. */
static void test_dsn_off(void **state)
{
    struct srv *s = srv_start();
    (void)state;
    hello(s);                              /* 250-8BITMIME, then 250 SIZE: no DSN */
    sends(s, "MAIL FROM:<a@example.com> RET=BOGUS SMTPUTF8\r\n"
             "RCPT TO:<x@sync.example> NOTIFY=junk ORCPT=junk\r\nDATA\r\n");
    expect(s, "250 2.1.0");
    expect(s, "250 2.1.5");
    expect(s, "354 ");
    sends(s, ".\r\n");
    expect(s, "250 2.0.0 <x@sync.example>");
    assert_string_equal(s->rec.ret, "-");
    assert_string_equal(s->rec.notify[0], "-");
    assert_string_equal(s->rec.orcpt[0], "-");
    assert_int_equal(s->rec.smtputf8, 1);
    quit(s);
    srv_end(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_lhlo),
        cmocka_unit_test(test_two_recipients),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_dribbled_data),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_rset),
        cmocka_unit_test(test_bad_sequence),
        cmocka_unit_test(test_unknown_and_syntax),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_keep_head_only),
        cmocka_unit_test(test_check_rcpt),
        cmocka_unit_test(test_max_rcpts),
        cmocka_unit_test(test_quit),
        cmocka_unit_test(test_long_command_line),
        cmocka_unit_test(test_long_data_line),
        cmocka_unit_test(test_disconnect_mid_data),
        cmocka_unit_test(test_client_vanishes),
        cmocka_unit_test(test_client_never_reads),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_unix_listen),
        cmocka_unit_test(test_dsn_pass_through),
        cmocka_unit_test(test_dsn_malformed),
        cmocka_unit_test(test_dsn_off),
    };
    pl_log_open("test_lmtp_server", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
