/* test_pop3_client.c -- unit tests of lib/pop3_client.h: the pure parsers
 * (status, CAPA, LIST, UIDL, the multi-line body decoder) and the session
 * against a scripted fake server in a thread on 127.0.0.1 (expected
 * command lines, canned responses, closing or staying silent at chosen
 * points), in the clear, with implicit TLS and with STLS, using a
 * self-signed certificate made at run time.  SIGPIPE is left at its
 * default on purpose: the client must not raise it. */
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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pop3_client.h"

/* ---- pure parsers ------------------------------------------------------- */

static int status(const char *s, char *code, const char **text)
{
    return pl_pop3_status_parse(s, strlen(s), code, 32, text);
}

static void test_status(void **state)
{
    char code[32], small[4];
    const char *t;
    (void)state;

    assert_int_equal(status("+OK", code, &t), 1);
    assert_string_equal(code, "");
    assert_string_equal(t, "");
    assert_int_equal(status("+OK 2 320", code, &t), 1);
    assert_string_equal(t, "2 320");
    assert_int_equal(status("-ERR [AUTH] Authentication failed.", code, &t), 0);
    assert_string_equal(code, "AUTH");
    assert_string_equal(t, "Authentication failed.");
    assert_int_equal(status("-ERR [SYS/TEMP] try later", code, &t), 0);
    assert_string_equal(code, "SYS/TEMP");
    assert_int_equal(status("-ERR [IN-USE] locked", code, &t), 0);
    assert_string_equal(code, "IN-USE");
    assert_int_equal(status("-ERR", code, &t), 0);
    assert_string_equal(t, "");
    assert_int_equal(status("-ERR [no end", code, &t), 0);     /* not a code: text */
    assert_string_equal(code, "");
    assert_string_equal(t, "[no end");
    assert_int_equal(status("-ERR [] x", code, &t), 0);
    assert_string_equal(code, "");
    assert_string_equal(t, "[] x");
    assert_int_equal(status("-ERR [A//B] x", code, &t), 0);
    assert_string_equal(code, "");
    assert_int_equal(status("+OKAY", code, &t), -1);
    assert_int_equal(status("+ok", code, &t), -1);
    assert_int_equal(status("", code, &t), -1);
    assert_int_equal(status("* OK imap", code, &t), -1);
    assert_int_equal(status("+ ", code, &t), -1);
    assert_int_equal(pl_pop3_status_parse("-ERR [LOGIN-DELAY] wait", 23, small, sizeof(small), &t),
                     0);
    assert_string_equal(small, "LOG");                         /* truncated */
    assert_string_equal(t, "wait");
    assert_int_equal(pl_pop3_status_parse("+OK a\0b", 7, code, sizeof(code), &t), 1);
    assert_memory_equal(t, "a\0b", 3);
    assert_int_equal(pl_pop3_status_parse("+OK", 3, NULL, 0, NULL), 1);
}

static struct pl_pop3_caps caps_of(const char *const *lines)
{
    struct pl_pop3_caps c;
    memset(&c, 0, sizeof(c));
    c.expire = -1;
    c.login_delay = -1;
    for (; *lines != NULL; lines++)
        pl_pop3_caps_line(&c, *lines, strlen(*lines));
    return c;
}

static void test_caps(void **state)
{
    static const char *const a[] = {"TOP", "UIDL", "RESP-CODES", "pipelining", "AUTH-RESP-CODE",
                                     "USER", "SASL LOGIN PLAIN", "EXPIRE NEVER", "STLS",
                                     "IMPLEMENTATION Dovecot \x01x", "X-UNKNOWN 1 2", "", NULL};
    static const char *const b[] = {"EXPIRE 30 USER", "LOGIN-DELAY 900", "SASL CRAM-MD5", NULL};
    static const char *const c[] = {"EXPIRE 0", "LOGIN-DELAY x", NULL};
    static const char *const d[] = {"EXPIRE", "EXPIRE 99999999999", "EXPIRE -1", NULL};
    struct pl_pop3_caps k;
    (void)state;

    k = caps_of(a);
    assert_true(k.top && k.uidl && k.resp_codes && k.pipelining && k.auth_resp_code && k.user
                && k.sasl_plain && k.stls);
    assert_int_equal(k.expire, -2);
    assert_int_equal(k.expire_per_user, 0);
    assert_int_equal(k.login_delay, -1);
    assert_string_equal(k.implementation, "Dovecot ?x");
    k = caps_of(b);
    assert_int_equal(k.expire, 30);
    assert_int_equal(k.expire_per_user, 1);
    assert_int_equal(k.login_delay, 900);
    assert_false(k.sasl_plain || k.pipelining || k.top);
    k = caps_of(c);
    assert_int_equal(k.expire, 0);
    assert_int_equal(k.login_delay, -1);
    k = caps_of(d);
    assert_int_equal(k.expire, -1);
}

static void test_list_parse(void **state)
{
    static const char *const bad[] = {"", "1", "1 ", " 1 2", "0 5", "1  2", "1 2x", "a b",
                                      "1 99999999999999999999999", "99999999999 1", "1 -2",
                                      "1\t2", NULL};
    unsigned long n;
    unsigned long long s;
    (void)state;

    assert_int_equal(pl_pop3_list_parse("1 200", 5, &n, &s), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s, 200);
    assert_int_equal(pl_pop3_list_parse("7 18446744073709551615 more", 27, &n, &s), 0);
    assert_int_equal(n, 7);
    assert_true(s == 18446744073709551615ULL);
    for (const char *const *b = bad; *b != NULL; b++)
        if (pl_pop3_list_parse(*b, strlen(*b), &n, &s) != -1)
            fail_msg("LIST line \"%s\" accepted", *b);
}

static void test_uidl_parse(void **state)
{
    char id[PL_POP3_ID_MAX + 1], line[128];
    const char *why = NULL;
    unsigned long n;
    struct { const char *line; const char *why; } bad[] = {
        {"", "no message number"}, {"x abc", "no message number"},
        {"0 abc", "message number 0"}, {"1", "no space"}, {"1 ", "no unique id"},
        {"1  abc", "outside"}, {"1 ab c", "outside 0x21-0x7E"},
        {"1 ab\x01" "c", "outside"}, {"1 ab\x7f", "outside"}, {"1 \xc3\xa9t\xc3\xa9", "outside"},
        {"12345678901 a", "too large"}, {"1\tabc", "no space"},
    };
    (void)state;

    assert_int_equal(pl_pop3_uidl_parse("3 whqtswO00WBw418f9t5JxYwZ", 26, &n, id, &why), 0);
    assert_int_equal(n, 3);
    assert_string_equal(id, "whqtswO00WBw418f9t5JxYwZ");
    memset(line, 'a', sizeof(line));
    memcpy(line, "9 ", 2);
    assert_int_equal(pl_pop3_uidl_parse(line, 2 + 70, &n, id, &why), 0);
    assert_int_equal(strlen(id), 70);
    assert_int_equal(pl_pop3_uidl_parse(line, 2 + 71, &n, id, &why), -1);
    assert_non_null(strstr(why, "longer than 70"));
    assert_int_equal(pl_pop3_uidl_parse("1 a\0b", 5, &n, id, &why), -1);   /* embedded NUL */
    assert_int_equal(pl_pop3_uidl_parse("1 !~", 4, &n, id, &why), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (pl_pop3_uidl_parse(bad[i].line, strlen(bad[i].line), &n, id, &why) != -1)
            fail_msg("UIDL line \"%s\" accepted", bad[i].line);
        if (why == NULL || strstr(why, bad[i].why) == NULL)
            fail_msg("UIDL line \"%s\": why \"%s\", wanted \"%s\"", bad[i].line,
                     why ? why : "(null)", bad[i].why);
    }
}

/* Feeds in[0..n) in chunks of `step` bytes (0: at once); returns the
 * output (malloc) and sets *used, *outlen and *done. */
static char *ml_run(const char *in, size_t n, size_t step, size_t *used, size_t *outlen,
                    int *done)
{
    struct pl_pop3_ml m;
    char *out = malloc(2 * n + 2), *tmp = malloc(2 * n + 2);
    size_t off = 0, o = 0;

    assert_non_null(out);
    assert_non_null(tmp);
    pl_pop3_ml_init(&m);
    while (off < n && !m.done) {
        size_t k = step == 0 || step > n - off ? n - off : step, olen, u;
        u = pl_pop3_ml_feed(&m, in + off, k, tmp, &olen);
        assert_true(u <= k);
        assert_true(olen <= 2 * k + 2);
        if (!m.done)
            assert_int_equal(u, k);
        memcpy(out + o, tmp, olen);
        o += olen;
        off += u;
    }
    free(tmp);
    *used = off;
    *outlen = o;
    *done = m.done;
    return out;
}

static void ml_check(const char *in, size_t n, const char *want, size_t wantlen, size_t wantused)
{
    for (size_t step = 0; step <= 3; step++) {
        size_t used, olen;
        int done;
        char *out = ml_run(in, n, step, &used, &olen, &done);
        assert_int_equal(done, 1);
        assert_int_equal(used, wantused);
        assert_int_equal(olen, wantlen);
        assert_memory_equal(out, want, wantlen);
        free(out);
    }
}

#define ML(in, want, used) ml_check(in, sizeof(in) - 1, want, sizeof(want) - 1, used)

static void test_ml(void **state)
{
    static const char body[] = "Subject: x\r\n\r\n..dot\r\n...\r\n.x\r\n.\r\nnext";
    static const char want[] = "Subject: x\r\n\r\n.dot\r\n..\r\nx\r\n";
    size_t blen = sizeof(body) - 1, used0 = blen - 4;
    char bin[64];
    (void)state;

    ML(".\r\n", "", 3);
    ML(".\r\n+OK", "", 3);
    ML(".\n", "", 2);
    ML("a\r\n.\r\n", "a\r\n", 6);
    ML("..\r\n.\r\n", ".\r\n", 7);
    ML("a\nb\n.\n-ERR", "a\r\nb\r\n", 6);                        /* bare LF */
    ML("a\rb\r\n.\r\n", "a\rb\r\n", 8);                          /* bare CR kept */
    ML("a\r\r\n.\r\n", "a\r\r\n", 7);
    ML(".\rx\r\n.\r\n", "\rx\r\n", 8);
    ML("a.\r\n. \r\n.\r\n", "a.\r\n \r\n", 11);
    ML("\r\n.\r\n", "\r\n", 5);
    ML("x\r\n.\r\r\n.\r\n", "x\r\n\r\r\n", 10);
    /* 8-bit bytes and NUL pass unchanged */
    memcpy(bin, "\xff\xfe\0\x80\r\n\xc3\xa9\r\n.\r\n", 13);
    ml_check(bin, 13, "\xff\xfe\0\x80\r\n\xc3\xa9\r\n", 10, 13);
    /* the body split in two chunks at every position */
    for (size_t k = 0; k <= blen; k++) {
        struct pl_pop3_ml m;
        char out[2 * sizeof(body) + 4];
        size_t o1, o2, u1, u2 = 0;
        pl_pop3_ml_init(&m);
        u1 = pl_pop3_ml_feed(&m, body, k, out, &o1);
        if (!m.done)
            u2 = pl_pop3_ml_feed(&m, body + u1, blen - u1, out + o1, &o2);
        else
            o2 = 0;
        assert_int_equal(m.done, 1);
        assert_int_equal(u1 + u2, used0);
        assert_int_equal(o1 + o2, sizeof(want) - 1);
        assert_memory_equal(out, want, sizeof(want) - 1);
        /* fed after the end: nothing more is taken */
        assert_int_equal(pl_pop3_ml_feed(&m, "a\r\n", 3, out, &o1), 0);
        assert_int_equal(o1, 0);
    }
    ml_check(body, blen, want, sizeof(want) - 1, used0);
    {   /* no end yet: everything consumed, not done */
        size_t used, olen;
        int done;
        char *out = ml_run("abc\r\n.", 6, 1, &used, &olen, &done);
        assert_int_equal(done, 0);
        assert_int_equal(used, 6);
        assert_int_equal(olen, 5);
        free(out);
    }
}

/* ---- the scripted server ------------------------------------------------ */

enum op {
    END,        /* script over: read until EOF (at most 10 s), then return */
    SEND,       /* write arg (len bytes when len != 0) */
    EXPECT,     /* read one line; it must equal arg (CRLF not included) */
    ALONE,      /* EXPECT, and nothing else may have arrived with it */
    CLOSE,      /* close our end now */
    SILENT,     /* read and drop everything until EOF (at most 10 s), never reply */
    TLS,        /* TLS handshake as the server (a failure ends the script) */
    BIG,        /* "+OK" and the generated big message (big_msg) */
};

struct step { enum op op; const char *arg; size_t len; };

struct fake {
    const struct step *script;
    pthread_t th;
    int lfd, sfd;
    unsigned port;
    SSL_CTX *sctx;
    SSL *ssl;
    int tls_failed;
    char in[1 << 16];
    size_t inlen;
    char err[512];          /* first script mismatch */
};

static SSL_CTX *server_ctx;          /* the self-signed certificate, made once */
static char ca_path[64];

static char *big_msg;                /* the dot-stuffed big message, on the wire */
static size_t big_len;

static int f_read(struct fake *f, char *buf, size_t n, int ms)
{
    struct pollfd p = {.fd = f->sfd, .events = POLLIN};
    if (f->ssl != NULL) {
        for (;;) {
            int k = SSL_read(f->ssl, buf, (int)n), e;
            if (k > 0)
                return k;
            e = SSL_get_error(f->ssl, k);
            if (e != SSL_ERROR_WANT_READ || poll(&p, 1, ms) <= 0)
                return -1;
        }
    }
    if (poll(&p, 1, ms) <= 0)
        return -1;
    return (int)read(f->sfd, buf, n);
}

static int f_write(struct fake *f, const char *s, size_t n)
{
    if (f->ssl != NULL)
        return SSL_write(f->ssl, s, (int)n) == (int)n ? 0 : -1;
    while (n > 0) {
        ssize_t k = send(f->sfd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fill(struct fake *f, int ms)
{
    int k;
    if (f->inlen == sizeof(f->in))
        return -1;
    k = f_read(f, f->in + f->inlen, sizeof(f->in) - f->inlen, ms);
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
    struct pollfd lp = {.fd = f->lfd, .events = POLLIN};
    char line[4096];

    if (poll(&lp, 1, 10000) != 1 || (f->sfd = accept(f->lfd, NULL, NULL)) < 0) {
        snprintf(f->err, sizeof(f->err), "no connection");
        return NULL;
    }
    for (const struct step *s = f->script; ; s++) {
        switch (s->op) {
        case END:
        case SILENT:
            drain(f);
            goto done;
        case SEND:
            if (f_write(f, s->arg, s->len ? s->len : strlen(s->arg)) != 0)
                snprintf(f->err, sizeof(f->err), "cannot send %.100s", s->arg);
            break;
        case BIG:
            if (f_write(f, "+OK\r\n", 5) != 0 || f_write(f, big_msg, big_len) != 0)
                snprintf(f->err, sizeof(f->err), "cannot send the big message");
            break;
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
        case CLOSE:
            goto done;
        case TLS: {
            struct pollfd p = {.fd = f->sfd, .events = POLLIN};
            int r;
            if (f->inlen != 0) {
                snprintf(f->err, sizeof(f->err), "bytes before the TLS handshake");
                goto done;
            }
            f->ssl = SSL_new(server_ctx);
            SSL_set_fd(f->ssl, f->sfd);
            while ((r = SSL_accept(f->ssl)) != 1) {
                int e = SSL_get_error(f->ssl, r);
                if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    || poll(&p, 1, 10000) <= 0) {
                    f->tls_failed = 1;
                    ERR_clear_error();
                    goto done;
                }
            }
            break;
        }
        }
    }
done:
    if (f->ssl != NULL) {
        SSL_free(f->ssl);
        f->ssl = NULL;
    }
    ERR_clear_error();
    close(f->sfd);
    f->sfd = -1;
    return NULL;
}

static struct fake *fake_start(const struct step *script)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);

    assert_non_null(f);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    f->sfd = -1;
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
    f->port = ntohs(a.sin_port);
    f->script = script;
    assert_int_equal(pthread_create(&f->th, NULL, fake_thread, f), 0);
    return f;
}

/* Waits for the script (the client must have closed); fails on a mismatch. */
static void fake_end(struct fake *f)
{
    assert_int_equal(pthread_join(f->th, NULL), 0);
    close(f->lfd);
    if (f->err[0] != '\0')
        fail_msg("fake server: %s", f->err);
    free(f);
}

#define S(x)  {SEND, x, 0}
#define E(x)  {EXPECT, x, 0}
#define A(x)  {ALONE, x, 0}
#define GREET S("+OK POP3 ready\r\n"), E("CAPA")
#define CAPS_PIPE S("+OK\r\nTOP\r\nUIDL\r\nUSER\r\nPIPELINING\r\nRESP-CODES\r\n.\r\n")
#define CAPS_PLAIN S("+OK\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n")
#define QUIT E("QUIT"), S("+OK bye\r\n"), {END, NULL, 0}

static struct pl_pop3_opts fast = {.connect_ms = 5000, .cmd_ms = 5000, .data_ms = 5000};

static void open_ok(struct pl_pop3 *p, struct fake *f, const struct pl_pop3_opts *o)
{
    if (pl_pop3_connect(p, "127.0.0.1", f->port, o ? o : &fast) != PL_POP3_OK)
        fail_msg("connect: %s", p->err);
}

/* ---- session: connect, CAPA, login --------------------------------------- */

static void test_connect_capa(void **state)
{
    static const struct step s[] = {
        GREET,
        S("+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
          "AUTH-RESP-CODE\r\nEXPIRE NEVER\r\nIMPLEMENTATION Test\r\nSASL PLAIN\r\n.\r\n"),
        QUIT,
    };
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    (void)state;

    open_ok(&p, f, NULL);
    assert_true(p.caps.known && p.caps.top && p.caps.uidl && p.caps.pipelining
                && p.caps.sasl_plain && p.caps.resp_codes && p.caps.auth_resp_code);
    assert_false(p.caps.user || p.caps.stls);
    assert_int_equal(p.caps.expire, -2);
    assert_string_equal(p.caps.implementation, "Test");
    assert_true(p.bytes_in > 100);
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_connect_refused(void **state)
{
    static const struct step s1[] = {S("-ERR [SYS/TEMP] overloaded\r\n"), {END, NULL, 0}};
    static const struct step s2[] = {S("* OK IMAP4rev1\r\n"), {END, NULL, 0}};
    struct fake *f;
    struct pl_pop3 p;
    int lfd;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    (void)state;

    f = fake_start(s1);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &fast), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "refused the session: overloaded"));
    assert_string_equal(p.last_code, "SYS/TEMP");
    assert_int_equal(pl_pop3_stat(&p, NULL, NULL), PL_POP3_BROKEN);
    pl_pop3_close(&p);
    fake_end(f);

    f = fake_start(s2);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &fast), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "not a status line"));
    pl_pop3_close(&p);
    fake_end(f);

    /* nobody listening: a closed port on loopback */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", ntohs(a.sin_port), &fast), PL_POP3_BROKEN);
    close(lfd);
    assert_non_null(strstr(p.err, "Connection refused"));
    pl_pop3_close(&p);
    /* names go through getaddrinfo */
    assert_int_equal(pl_pop3_connect(&p, "no-such-host.invalid", 110, &fast), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "no-such-host.invalid"));
    pl_pop3_close(&p);
}

static void test_connect_by_name(void **state)
{
    static const struct step s[] = {GREET, CAPS_PLAIN, QUIT};
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    (void)state;

    if (pl_pop3_connect(&p, "localhost", f->port, &fast) != PL_POP3_OK) {
        /* localhost may resolve to ::1 first: the fake only listens on IPv4,
         * the client must then have tried 127.0.0.1 too */
        fail_msg("connect localhost: %s", p.err);
    }
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_long_line(void **state)
{
    static char greet[2100];
    static struct step s[] = {{SEND, greet, 0}, {END, NULL, 0}};
    struct fake *f;
    struct pl_pop3 p;
    (void)state;

    memset(greet, 'x', sizeof(greet) - 3);
    memcpy(greet, "+OK ", 4);
    memcpy(greet + sizeof(greet) - 3, "\r\n", 3);
    f = fake_start(s);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &fast), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "longer than 1024"));
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_login_user_pass(void **state)
{
    static const struct step s[] = {
        GREET, CAPS_PLAIN,
        A("USER alice"), S("+OK\r\n"), A("PASS s3cret"), S("+OK Logged in.\r\n"),
        E("CAPA"), S("+OK\r\nTOP\r\nUIDL\r\nEXPIRE 30 USER\r\nLOGIN-DELAY 60\r\n.\r\n"),
        QUIT,
    };
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(p.caps.expire, -1);
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_OK);
    assert_int_equal(p.caps.expire, 30);
    assert_int_equal(p.caps.expire_per_user, 1);
    assert_int_equal(p.caps.login_delay, 60);
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_login_auth_plain(void **state)
{
    static const struct step s[] = {
        GREET, S("+OK\r\nSASL PLAIN LOGIN\r\nUSER\r\n.\r\n"),
        A("AUTH PLAIN AGFsaWNlAHMzY3JldA=="), S("+OK Logged in.\r\n"),
        E("CAPA"), S("-ERR not now\r\n"),          /* the old caps stay */
        QUIT,
    };
    static const struct step cont[] = {
        GREET, S("+OK\r\nSASL PLAIN\r\n.\r\n"),
        A("AUTH PLAIN AGFsaWNlAHMzY3JldA=="), S("+ \r\n"),
        A("AGFsaWNlAHMzY3JldA=="), S("+OK\r\n"), E("CAPA"), CAPS_PLAIN,
        QUIT,
    };
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_OK);
    assert_true(p.caps.sasl_plain);
    pl_pop3_close(&p);
    fake_end(f);

    f = fake_start(cont);
    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_OK);
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_login_refused(void **state)
{
    static const struct step s[] = {
        GREET, S("+OK\r\nSASL PLAIN\r\nAUTH-RESP-CODE\r\n.\r\n"),
        E("AUTH PLAIN AGFsaWNlAHMzY3JldA=="), S("-ERR [AUTH] Authentication failed.\r\n"),
        E("AUTH PLAIN AGFsaWNlAHMzY3JldA=="), S("-ERR [IN-USE] Mailbox locked\r\n"),
        E("STAT"), S("+OK 0 0\r\n"),
        QUIT,
    };
    static const struct step u[] = {
        GREET, CAPS_PLAIN,
        E("USER alice"), S("+OK\r\n"), E("PASS s3cret"), S("-ERR [AUTH] nope\r\n"),
        QUIT,
    };
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    unsigned long n = 9;
    unsigned long long o = 9;
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_AUTH);
    assert_string_equal(p.last_code, "AUTH");
    assert_null(strstr(p.err, "s3cret"));
    assert_null(strstr(p.err, "AGFsaWNl"));
    assert_non_null(strstr(p.err, "Authentication failed"));
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_AUTH);
    assert_string_equal(p.last_code, "IN-USE");
    assert_int_equal(pl_pop3_login(&p, "alice", "pw\r\nDELE 1"), PL_POP3_AUTH);
    assert_null(strstr(p.err, "DELE"));
    assert_int_equal(pl_pop3_stat(&p, &n, &o), PL_POP3_OK);   /* still usable */
    assert_int_equal(n, 0);
    pl_pop3_close(&p);
    fake_end(f);

    f = fake_start(u);
    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_AUTH);
    assert_string_equal(p.last_code, "AUTH");
    assert_null(strstr(p.err, "s3cret"));
    pl_pop3_close(&p);
    fake_end(f);
}

/* ---- STAT, UIDL, LIST ---------------------------------------------------- */

struct seen {
    unsigned long n[16];
    char id[16][PL_POP3_ID_MAX + 1];
    unsigned long long size[16];
    size_t count, bad, stop_after;
    char badline[128], badwhy[128];
};

static int on_uidl(void *ctx, unsigned long n, const char *id)
{
    struct seen *s = ctx;
    s->n[s->count] = n;
    snprintf(s->id[s->count], sizeof(s->id[0]), "%s", id);
    s->count++;
    return s->stop_after != 0 && s->count >= s->stop_after;
}

static int on_list(void *ctx, unsigned long n, unsigned long long size)
{
    struct seen *s = ctx;
    s->n[s->count] = n;
    s->size[s->count] = size;
    s->count++;
    return 0;
}

static void on_bad(void *ctx, const char *line, const char *why)
{
    struct seen *s = ctx;
    s->bad++;
    snprintf(s->badline, sizeof(s->badline), "%s", line);
    snprintf(s->badwhy, sizeof(s->badwhy), "%s", why);
}

static void test_listings(void **state)
{
    static const struct step s[] = {
        GREET, CAPS_PLAIN,
        E("STAT"), S("+OK 3 4711\r\n"),
        E("UIDL"), S("+OK\r\n1 aaa\r\n2 has space\r\n3 ccc\r\n.\r\n"),
        E("LIST"), S("+OK 3 messages\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n"),
        E("UIDL 2"), S("+OK 2 bbb\r\n"),
        E("LIST 3"), S("+OK 3 300\r\n"),
        E("UIDL 9"), S("-ERR no such message\r\n"),
        E("LIST 9"), S("-ERR no such message\r\n"),
        E("UIDL"), S("+OK\r\n1 aaa\r\n2 bbb\r\n3 ccc\r\n.\r\n"),
        E("UIDL 3"), S("+OK 2 bbb\r\n"),                   /* the wrong message */
        {END, NULL, 0},                                   /* broken: no QUIT */
    };
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    struct seen u = {0}, l = {0};
    unsigned long n;
    unsigned long long o;
    char id[PL_POP3_ID_MAX + 1];
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_stat(&p, &n, &o), PL_POP3_OK);
    assert_int_equal(n, 3);
    assert_int_equal(o, 4711);
    assert_int_equal(pl_pop3_uidl(&p, on_uidl, on_bad, &u), PL_POP3_OK);
    assert_int_equal(u.count, 2);
    assert_int_equal(u.n[1], 3);
    assert_string_equal(u.id[1], "ccc");
    assert_int_equal(u.bad, 1);
    assert_string_equal(u.badline, "2 has space");
    assert_non_null(strstr(u.badwhy, "outside 0x21-0x7E"));
    assert_int_equal(pl_pop3_list(&p, on_list, NULL, &l), PL_POP3_OK);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.size[2], 300);
    assert_int_equal(pl_pop3_uidl_one(&p, 2, id), PL_POP3_OK);
    assert_string_equal(id, "bbb");
    assert_int_equal(pl_pop3_list_one(&p, 3, &o), PL_POP3_OK);
    assert_int_equal(o, 300);
    assert_int_equal(pl_pop3_uidl_one(&p, 9, id), PL_POP3_NO);
    assert_string_equal(p.last, "no such message");
    assert_int_equal(pl_pop3_list_one(&p, 9, &o), PL_POP3_NO);
    memset(&u, 0, sizeof(u));
    u.stop_after = 1;                          /* stops the calls, not the reading */
    assert_int_equal(pl_pop3_uidl(&p, on_uidl, on_bad, &u), PL_POP3_OK);
    assert_int_equal(u.count, 1);
    assert_int_equal(pl_pop3_uidl_one(&p, 3, id), PL_POP3_BAD);
    assert_non_null(strstr(p.err, "malformed UIDL n reply"));
    assert_int_equal(p.broken, 0);             /* the session is still in step */
    pl_pop3_close(&p);
    fake_end(f);
}

/* ---- fetching ------------------------------------------------------------ */

struct got {
    char body[8][256];
    size_t len[8];
    int began[8], ended[8], status[8];
    size_t order[16], norder;
    unsigned long long total;
    int stop_data;
};

static int g_begin(void *ctx, size_t i)
{
    struct got *g = ctx;
    g->began[i]++;
    g->order[g->norder++] = i;
    return 0;
}

static int g_data(void *ctx, size_t i, const char *b, size_t n)
{
    struct got *g = ctx;
    assert_true(g->began[i] == 1 && g->ended[i] == 0);
    assert_true(n <= 2 * 16384 + 2);
    if (g->len[i] + n <= sizeof(g->body[0])) {
        memcpy(g->body[i] + g->len[i], b, n);
        g->len[i] += n;
    }
    g->total += n;
    return g->stop_data;
}

static int g_end(void *ctx, size_t i, int st)
{
    struct got *g = ctx;
    g->ended[i]++;
    g->status[i] = st;
    return 0;
}

static const struct pl_pop3_fetch_cb gcb = {g_begin, g_data, g_end, NULL};

static struct pl_pop3_fetch_cb cb_for(struct got *g)
{
    struct pl_pop3_fetch_cb c = gcb;
    c.ctx = g;
    return c;
}

#define BODY(n) S("+OK\r\nSubject: " #n "\r\n\r\n..line\r\n.\r\n")
#define WANT(n) "Subject: " #n "\r\n\r\n.line\r\n"

static void check_body(const struct got *g, size_t i, const char *want)
{
    assert_int_equal(g->began[i], 1);
    assert_int_equal(g->ended[i], 1);
    assert_int_equal(g->status[i], PL_POP3_OK);
    assert_int_equal(g->len[i], strlen(want));
    assert_memory_equal(g->body[i], want, strlen(want));
}

static void test_fetch_pipelined(void **state)
{
    /* window 2: two commands before any response, then one per response */
    static const struct step s[] = {
        GREET, CAPS_PIPE,
        E("TOP 11 0"), A("TOP 12 0"), BODY(11),
        A("TOP 13 0"), BODY(12),
        A("TOP 14 0"), BODY(13), BODY(14),
        E("RETR 1"), E("RETR 2"), E("RETR 3"), S("+OK\r\na\r\n.\r\n+OK\r\nb\r\n.\r\n+OK\r\n.\r\n"),
        QUIT,
    };
    static const unsigned long ids[] = {11, 12, 13, 14};
    static const unsigned long r[] = {1, 2, 3};
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    struct got g = {0};
    struct pl_pop3_fetch_cb cb = cb_for(&g);
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_fetch(&p, ids, 4, 0, 2, &cb), PL_POP3_OK);
    check_body(&g, 0, WANT(11));
    check_body(&g, 3, WANT(14));
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(g.order[i], i);
    memset(&g, 0, sizeof(g));
    assert_int_equal(pl_pop3_fetch(&p, r, 3, -1, 0, &cb), PL_POP3_OK);   /* window 16 */
    check_body(&g, 0, "a\r\n");
    check_body(&g, 2, "");
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_fetch_one_at_a_time(void **state)
{
    static const struct step s[] = {
        GREET, CAPS_PLAIN,
        A("TOP 1 5"), BODY(1), A("TOP 2 5"), BODY(2), A("TOP 3 5"), BODY(3),
        QUIT,
    };
    static const unsigned long ids[] = {1, 2, 3};
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    struct got g = {0};
    struct pl_pop3_fetch_cb cb = cb_for(&g);
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_fetch(&p, ids, 3, 5, 16, &cb), PL_POP3_OK);
    check_body(&g, 1, WANT(2));
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_fetch_err_middle(void **state)
{
    static const struct step s[] = {
        GREET, CAPS_PIPE,
        E("RETR 1"), E("RETR 2"), E("RETR 3"),
        BODY(1), S("-ERR [SYS/TEMP] cannot read message\r\n"), BODY(3),
        QUIT,
    };
    static const unsigned long ids[] = {1, 2, 3};
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    struct got g = {0};
    struct pl_pop3_fetch_cb cb = cb_for(&g);
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_fetch(&p, ids, 3, -1, 8, &cb), PL_POP3_OK);
    check_body(&g, 0, WANT(1));
    assert_int_equal(g.began[1], 0);
    assert_int_equal(g.ended[1], 1);
    assert_int_equal(g.status[1], PL_POP3_NO);
    check_body(&g, 2, WANT(3));
    assert_false(p.broken);
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_fetch_close_mid_body(void **state)
{
    static const struct step s[] = {
        GREET, CAPS_PIPE,
        E("RETR 1"), E("RETR 2"), BODY(1), S("+OK\r\nSubject: 2\r\n\r\npart"), {CLOSE, NULL, 0},
    };
    static const unsigned long ids[] = {1, 2};
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    struct got g = {0};
    struct pl_pop3_fetch_cb cb = cb_for(&g);
    (void)state;

    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_fetch(&p, ids, 2, -1, 0, &cb), PL_POP3_BROKEN);
    check_body(&g, 0, WANT(1));
    assert_int_equal(g.began[1], 1);
    assert_int_equal(g.ended[1], 1);
    assert_int_equal(g.status[1], PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "connection closed by the server in the body of message 2"));
    assert_int_equal(pl_pop3_stat(&p, NULL, NULL), PL_POP3_BROKEN);
    pl_pop3_close(&p);
    fake_end(f);
}

static long long ms_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void test_timeouts(void **state)
{
    static const struct step s1[] = {S("+OK hi\r\n"), E("CAPA"), {SILENT, NULL, 0}};
    static const struct step s2[] = {
        GREET, CAPS_PLAIN, E("RETR 1"), S("+OK\r\nSubject: x\r\n"), {SILENT, NULL, 0},
    };
    struct pl_pop3_opts o = {.connect_ms = 5000, .cmd_ms = 200, .data_ms = 200};
    static const unsigned long ids[] = {1};
    struct fake *f = fake_start(s1);
    struct pl_pop3 p;
    struct got g = {0};
    struct pl_pop3_fetch_cb cb = cb_for(&g);
    long long t0 = ms_now(), dt;
    (void)state;

    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    dt = ms_now() - t0;
    assert_non_null(strstr(p.err, "timeout after CAPA"));
    assert_true(dt >= 190 && dt < 3000);
    pl_pop3_close(&p);
    fake_end(f);

    f = fake_start(s2);
    open_ok(&p, f, &o);
    t0 = ms_now();
    assert_int_equal(pl_pop3_fetch(&p, ids, 1, -1, 0, &cb), PL_POP3_BROKEN);
    dt = ms_now() - t0;
    assert_non_null(strstr(p.err, "timeout in the body of message 1"));
    assert_true(dt >= 190 && dt < 3000);
    assert_int_equal(g.status[0], PL_POP3_BROKEN);
    pl_pop3_close(&p);
    fake_end(f);
}

static void test_fetch_stop(void **state)
{
    static const struct step s[] = {
        GREET, CAPS_PIPE, E("TOP 1 0"), E("TOP 2 0"), BODY(1), BODY(2), {END, NULL, 0},
    };
    static const unsigned long ids[] = {1, 2};
    struct fake *f = fake_start(s);
    struct pl_pop3 p;
    struct got g = {0};
    struct pl_pop3_fetch_cb cb = cb_for(&g);
    (void)state;

    g.stop_data = 7;
    open_ok(&p, f, NULL);
    assert_int_equal(pl_pop3_fetch(&p, ids, 2, 0, 0, &cb), 7);
    assert_true(p.broken);
    assert_int_equal(g.ended[0], 0);                /* no callbacks after the stop */
    assert_int_equal(g.began[1], 0);
    assert_int_equal(pl_pop3_stat(&p, NULL, NULL), PL_POP3_BROKEN);
    pl_pop3_close(&p);
    fake_end(f);
}

/* A 6 MB message with 8-bit bytes, NULs, long lines and dot lines. */
static void make_big(char **wire, size_t *wlen, char **plain, size_t *plen)
{
    size_t cap = 7u << 20, w = 0, q = 0;
    unsigned x = 12345;
    char *a = malloc(cap), *b = malloc(cap);
    assert_non_null(a);
    assert_non_null(b);
    while (q < (6u << 20)) {
        size_t linelen = (x = x * 1103515245u + 12345u) >> 16 & 0x3ff;
        if ((x & 7) == 0) {                         /* a line starting with a dot */
            a[w++] = '.';
            a[w++] = '.';
            b[q++] = '.';
        }
        for (size_t k = 0; k < linelen; k++) {
            char c = (char)((x = x * 1103515245u + 12345u) >> 24);
            if (c == '\r' || c == '\n')
                c = 'x';
            if (k == 0 && c == '.')
                c = 'y';
            a[w++] = c;
            b[q++] = c;
        }
        memcpy(a + w, "\r\n", 2);
        memcpy(b + q, "\r\n", 2);
        w += 2;
        q += 2;
    }
    memcpy(a + w, ".\r\n", 3);
    w += 3;
    *wire = a;
    *wlen = w;
    *plain = b;
    *plen = q;
}

struct bigcheck { const char *want; size_t wantlen, off; int ok, ended; };

static int b_data(void *ctx, size_t i, const char *b, size_t n)
{
    struct bigcheck *c = ctx;
    (void)i;
    if (c->off + n > c->wantlen || memcmp(c->want + c->off, b, n) != 0)
        c->ok = 0;
    c->off += n;
    return 0;
}

static int b_end(void *ctx, size_t i, int st)
{
    struct bigcheck *c = ctx;
    (void)i;
    c->ended = st == PL_POP3_OK ? 1 : -1;
    return 0;
}

static void test_fetch_big(void **state)
{
    static const struct step s[] = {GREET, CAPS_PIPE, E("RETR 1"), {BIG, NULL, 0}, QUIT};
    static const unsigned long ids[] = {1};
    char *plain;
    size_t plen;
    struct bigcheck c = {0};
    struct pl_pop3_fetch_cb cb = {NULL, b_data, b_end, &c};
    struct fake *f;
    struct pl_pop3 p;
    unsigned long long before;
    (void)state;

    make_big(&big_msg, &big_len, &plain, &plen);
    c.want = plain;
    c.wantlen = plen;
    c.ok = 1;
    f = fake_start(s);
    open_ok(&p, f, NULL);
    before = p.bytes_in;
    assert_int_equal(pl_pop3_fetch(&p, ids, 1, -1, 0, &cb), PL_POP3_OK);
    assert_true(c.ok);
    assert_int_equal(c.off, plen);
    assert_int_equal(c.ended, 1);
    assert_int_equal(p.bytes_in - before, big_len + 5);
    pl_pop3_close(&p);
    fake_end(f);
    free(big_msg);
    free(plain);
    big_msg = NULL;
}

/* ---- TLS ------------------------------------------------------------------- */

/* A self-signed P-256 certificate for pop.test, PEM in ca_path. */
static int tls_setup(void **state)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *nm;
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    FILE *fp;
    int fd;
    (void)state;

    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"pop.test", -1, -1, 0);
    X509_set_issuer_name(x, nm);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:pop.test");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);

    snprintf(ca_path, sizeof(ca_path), "/tmp/test_pop3_ca.XXXXXX");
    assert_true((fd = mkstemp(ca_path)) >= 0);
    assert_non_null(fp = fdopen(fd, "w"));
    assert_int_equal(PEM_write_X509(fp, x), 1);
    fclose(fp);

    server_ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(server_ctx);
    assert_int_equal(SSL_CTX_use_certificate(server_ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(server_ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    return 0;
}

static int tls_teardown(void **state)
{
    (void)state;
    unlink(ca_path);
    SSL_CTX_free(server_ctx);
    return 0;
}

static void test_tls_implicit(void **state)
{
    static const struct step ok[] = {
        {TLS, NULL, 0}, GREET, CAPS_PIPE, E("STAT"), S("+OK 1 10\r\n"), QUIT,
    };
    static const struct step refused[] = {{TLS, NULL, 0}, {END, NULL, 0}};
    struct pl_pop3_opts o = fast;
    struct pl_pop3 p;
    struct fake *f;
    unsigned long n;
    unsigned long long sz;
    (void)state;

    o.tls = PL_POP3_IMPLICIT_TLS;
    o.servername = "pop.test";

    /* the system's CAs do not know the certificate */
    f = fake_start(refused);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "certificate verify failed: self"));
    pl_pop3_close(&p);
    fake_end(f);

    o.ca_file = ca_path;
    f = fake_start(ok);
    open_ok(&p, f, &o);
    assert_non_null(p.ssl);
    assert_true(p.caps.pipelining);
    assert_int_equal(pl_pop3_stat(&p, &n, &sz), PL_POP3_OK);
    assert_int_equal(sz, 10);
    pl_pop3_close(&p);
    fake_end(f);

    /* the right CA, the wrong name */
    o.servername = "other.test";
    f = fake_start(refused);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "certificate verify failed: hostname mismatch"));
    pl_pop3_close(&p);
    fake_end(f);

    /* no name given: the host (an IP address) must match, and does not */
    o.servername = NULL;
    f = fake_start(refused);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "certificate verify failed: IP address mismatch"));
    pl_pop3_close(&p);
    fake_end(f);

    /* insecure: any certificate */
    o.ca_file = NULL;
    o.servername = "other.test";
    o.insecure = 1;
    f = fake_start(ok);
    open_ok(&p, f, &o);
    assert_int_equal(pl_pop3_stat(&p, &n, &sz), PL_POP3_OK);
    pl_pop3_close(&p);
    fake_end(f);

    /* a CA file that is not there */
    o.insecure = 0;
    o.ca_file = "/nonexistent/ca.pem";
    f = fake_start(refused);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "cannot load the CA certificates from /nonexistent/ca.pem"));
    pl_pop3_close(&p);
    close(f->lfd);                          /* the fake never got a connection */
    pthread_join(f->th, NULL);
    free(f);
}

static void test_tls_stls(void **state)
{
    static const struct step ok[] = {
        GREET, S("+OK\r\nSTLS\r\nUSER\r\n.\r\n"), A("STLS"), S("+OK Begin TLS\r\n"),
        {TLS, NULL, 0}, E("CAPA"), S("+OK\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n"),
        E("AUTH PLAIN AGFsaWNlAHMzY3JldA=="), S("+OK\r\n"), E("CAPA"), CAPS_PIPE,
        QUIT,
    };
    static const struct step none[] = {GREET, CAPS_PLAIN, {END, NULL, 0}};
    static const struct step inject[] = {
        GREET, S("+OK\r\nSTLS\r\n.\r\n"), E("STLS"), S("+OK Begin TLS\r\n+OK injected\r\n"),
        {END, NULL, 0},
    };
    static const struct step bad[] = {
        GREET, S("+OK\r\nSTLS\r\n.\r\n"), E("STLS"), S("+OK\r\n"), {TLS, NULL, 0}, {END, NULL, 0},
    };
    struct pl_pop3_opts o = fast;
    struct pl_pop3 p;
    struct fake *f;
    (void)state;

    o.tls = PL_POP3_STLS;
    o.servername = "pop.test";
    o.ca_file = ca_path;
    f = fake_start(ok);
    open_ok(&p, f, &o);
    assert_non_null(p.ssl);
    assert_true(p.caps.sasl_plain && p.caps.pipelining);
    assert_false(p.caps.stls);
    assert_int_equal(pl_pop3_login(&p, "alice", "s3cret"), PL_POP3_OK);
    pl_pop3_close(&p);
    fake_end(f);

    f = fake_start(none);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "does not announce STLS"));
    pl_pop3_close(&p);
    fake_end(f);

    f = fake_start(inject);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "data after its STLS reply"));
    pl_pop3_close(&p);
    fake_end(f);

    o.ca_file = NULL;
    f = fake_start(bad);
    assert_int_equal(pl_pop3_connect(&p, "127.0.0.1", f->port, &o), PL_POP3_BROKEN);
    assert_non_null(strstr(p.err, "certificate verify failed"));
    pl_pop3_close(&p);
    fake_end(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_list_parse),
        cmocka_unit_test(test_uidl_parse),
        cmocka_unit_test(test_ml),
        cmocka_unit_test(test_connect_capa),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_by_name),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_login_user_pass),
        cmocka_unit_test(test_login_auth_plain),
        cmocka_unit_test(test_login_refused),
        cmocka_unit_test(test_listings),
        cmocka_unit_test(test_fetch_pipelined),
        cmocka_unit_test(test_fetch_one_at_a_time),
        cmocka_unit_test(test_fetch_err_middle),
        cmocka_unit_test(test_fetch_close_mid_body),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_fetch_stop),
        cmocka_unit_test(test_fetch_big),
        cmocka_unit_test(test_tls_implicit),
        cmocka_unit_test(test_tls_stls),
    };
    return cmocka_run_group_tests(tests, tls_setup, tls_teardown);
}
