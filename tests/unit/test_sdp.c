/* test_sdp.c -- unit tests of the SMTP-over-TCP SDP codec, the RFC 4145
 * role rules and the POSTLINK token line (sdp_tcp.h). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "sdp_tcp.h"

#define TOK  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOK2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static struct pl_sdp_tcp media(int family, const char *addr, unsigned port,
                               enum pl_sdp_setup setup)
{
    struct pl_sdp_tcp m;
    memset(&m, 0, sizeof(m));
    m.family = family;
    snprintf(m.addr, sizeof(m.addr), "%s", addr);
    m.port = port;
    m.setup = setup;
    snprintf(m.token, sizeof(m.token), "%s", TOK);
    return m;
}

/* Parse s, which must fail with an error containing want. */
static void parse_fails(const char *s, size_t len, const char *want)
{
    struct pl_sdp_tcp m;
    char err[200];
    memset(&m, 0x55, sizeof(m));
    assert_int_equal(pl_sdp_parse(s, len, &m, err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\" for:\n%s", err, want, s);
    assert_int_equal(m.port, 0);            /* *m zeroed on error */
    assert_int_equal(m.token[0], 0);
}

static void parse_ok(const char *s, struct pl_sdp_tcp *m)
{
    char err[200] = "";
    if (pl_sdp_parse(s, strlen(s), m, err, sizeof(err)) != 0)
        fail_msg("parse failed: %s for:\n%s", err, s);
}

/* ---- build and round trip ------------------------------------------------ */

static void test_build_exact_ipv4(void **state)
{
    struct pl_sdp_tcp m = media(AF_INET, "127.0.0.1", 40000, PL_SETUP_ACTPASS);
    char out[1024];
    const char *want = "v=0\r\n"
                       "o=postlink 42 7 IN IP4 127.0.0.1\r\n"
                       "s=postlink\r\n"
                       "c=IN IP4 127.0.0.1\r\n"
                       "t=0 0\r\n"
                       "m=application 40000 TCP smtp\r\n"
                       "a=setup:actpass\r\n"
                       "a=connection:new\r\n"
                       "a=postlink-token:" TOK "\r\n";
    (void)state;
    assert_int_equal(pl_sdp_build(out, sizeof(out), 42, 7, &m), (int)strlen(want));
    assert_string_equal(out, want);
    /* exactly fitting, one byte short */
    assert_int_equal(pl_sdp_build(out, strlen(want) + 1, 42, 7, &m), (int)strlen(want));
    assert_int_equal(pl_sdp_build(out, strlen(want), 42, 7, &m), -1);
    assert_string_equal(out, "");
}

static void test_roundtrip_ipv4(void **state)
{
    struct pl_sdp_tcp m = media(AF_INET, "127.0.0.1", 40000, PL_SETUP_ACTPASS), r;
    char out[1024];
    int n;
    (void)state;
    n = pl_sdp_build(out, sizeof(out), UINT64_MAX, 1, &m);
    assert_true(n > 0);
    assert_int_equal(pl_sdp_parse(out, (size_t)n, &r, NULL, 0), 0);
    assert_string_equal(r.addr, "127.0.0.1");
    assert_int_equal(r.family, AF_INET);
    assert_int_equal(r.port, 40000);
    assert_int_equal(r.setup, PL_SETUP_ACTPASS);
    assert_int_equal(r.connection_new, 1);
    assert_string_equal(r.token, TOK);
    assert_string_equal(r.fmt, "smtp");
    assert_non_null(strstr(out, "o=postlink 18446744073709551615 1 IN IP4"));
}

static void test_roundtrip_ipv6(void **state)
{
    /* a non-canonical literal comes back in inet_ntop's form */
    struct pl_sdp_tcp m = media(AF_INET6, "0:0:0:0:0:0:0:1", 9, PL_SETUP_ACTIVE), r;
    char out[1024];
    int n;
    (void)state;
    n = pl_sdp_build(out, sizeof(out), 1, 2, &m);
    assert_true(n > 0);
    assert_non_null(strstr(out, "o=postlink 1 2 IN IP6 0:0:0:0:0:0:0:1\r\n"));
    assert_non_null(strstr(out, "\r\nc=IN IP6 0:0:0:0:0:0:0:1\r\nt=0 0\r\n"));
    assert_non_null(strstr(out, "\r\nm=application 9 TCP smtp\r\na=setup:active\r\n"));
    assert_int_equal(pl_sdp_parse(out, (size_t)n, &r, NULL, 0), 0);
    assert_string_equal(r.addr, "::1");
    assert_int_equal(r.family, AF_INET6);
    assert_int_equal(r.port, 9);
    assert_int_equal(r.setup, PL_SETUP_ACTIVE);
    assert_string_equal(r.token, TOK);

    m = media(AF_INET6, "fd00::1:2", 65535, PL_SETUP_PASSIVE);
    n = pl_sdp_build(out, sizeof(out), 3, 4, &m);
    assert_true(n > 0);
    assert_int_equal(pl_sdp_parse(out, (size_t)n, &r, NULL, 0), 0);
    assert_string_equal(r.addr, "fd00::1:2");
    assert_int_equal(r.port, 65535);
    assert_int_equal(r.setup, PL_SETUP_PASSIVE);
}

static void test_build_refuses(void **state)
{
    struct pl_sdp_tcp m;
    char out[1024];
    (void)state;
    m = media(AF_INET, "::1", 1, PL_SETUP_ACTPASS);           /* family mismatch */
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "localhost", 1, PL_SETUP_ACTPASS);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "0.0.0.0", 1, PL_SETUP_ACTPASS);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_UNIX, "127.0.0.1", 1, PL_SETUP_ACTPASS);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "127.0.0.1", 0, PL_SETUP_ACTPASS);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "127.0.0.1", 65536, PL_SETUP_ACTPASS);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "127.0.0.1", 1, PL_SETUP_NONE);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "127.0.0.1", 1, PL_SETUP_ACTPASS);
    m.token[0] = 'A';
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "127.0.0.1", 1, PL_SETUP_ACTPASS);
    m.token[0] = '\0';
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    m = media(AF_INET, "127.0.0.1", 1, PL_SETUP_ACTPASS);
    snprintf(m.fmt, sizeof(m.fmt), "smtp\r\na=x");
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, &m), -1);
    assert_int_equal(pl_sdp_build(NULL, 0, 1, 1, &m), -1);
    assert_int_equal(pl_sdp_build(out, sizeof(out), 1, 1, NULL), -1);
}

/* ---- what other stacks send ---------------------------------------------- */

static void test_sipp_answer(void **state)
{
    const char *s = "v=0\r\n"
                    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
                    "s=-\r\n"
                    "c=IN IP4 127.0.0.1\r\n"
                    "t=0 0\r\n"
                    "m=application 40000 TCP smtp\r\n"
                    "a=setup:passive\r\n"
                    "a=connection:new\r\n"
                    "a=postlink-token:" TOK2 "\r\n";
    struct pl_sdp_tcp m;
    enum pl_sdp_setup mine;
    (void)state;
    parse_ok(s, &m);
    assert_string_equal(m.addr, "127.0.0.1");
    assert_int_equal(m.port, 40000);
    assert_int_equal(m.setup, PL_SETUP_PASSIVE);
    assert_int_equal(m.connection_new, 1);
    assert_string_equal(m.token, TOK2);
    /* we offered actpass; the answer is passive, so we connect */
    assert_int_equal(pl_sdp_offer_setup(m.setup, &mine), 0);
    assert_int_equal(mine, PL_SETUP_ACTIVE);
    assert_int_equal(pl_sdp_i_connect(mine), 1);
}

static void test_sofia_lowercase(void **state)
{
    /* sofia's offer/answer engine lowercases TCP, puts the host in o= and
     * may end lines in bare LF when handed a LF body */
    const char *s = "v=0\n"
                    "o=- 1234 1234 IN IP4 127.0.0.2\n"
                    "s=-\n"
                    "c=IN IP4 127.0.0.2\n"
                    "t=0 0\n"
                    "m=application 5062 tcp smtp\n"
                    "a=setup:actpass\n"
                    "a=connection:new\n"
                    "a=postlink-token:" TOK "\n";
    struct pl_sdp_tcp m;
    (void)state;
    parse_ok(s, &m);
    assert_int_equal(m.port, 5062);
    assert_string_equal(m.addr, "127.0.0.2");
    assert_int_equal(m.setup, PL_SETUP_ACTPASS);
    assert_string_equal(m.token, TOK);
    parse_ok("v=0\r\nc=in ip4 127.0.0.1\r\nm=APPLICATION 7 Tcp SMTP\r\n", &m);
    assert_int_equal(m.port, 7);
    assert_string_equal(m.fmt, "SMTP");
    assert_int_equal(m.setup, PL_SETUP_NONE);
    assert_int_equal(m.connection_new, 0);
    assert_string_equal(m.token, "");        /* absent: the caller refuses */
}

static void test_audio_first(void **state)
{
    const char *s = "v=0\r\n"
                    "o=- 1 1 IN IP4 127.0.0.1\r\n"
                    "s=-\r\n"
                    "c=IN IP4 127.0.0.1\r\n"
                    "t=0 0\r\n"
                    "m=audio 6000 RTP/AVP 0 8\r\n"
                    "c=IN IP4 127.0.0.9\r\n"
                    "a=rtpmap:0 PCMU/8000\r\n"
                    "a=setup:active\r\n"
                    "a=postlink-token:" TOK2 "\r\n"
                    "m=application 0 TCP/TLS smtp\r\n"    /* not TCP: ignored */
                    "m=application 6001 TCP smtp\r\n"
                    "a=setup:passive\r\n"
                    "a=postlink-token:" TOK "\r\n"
                    "m=application 6002 TCP smtp\r\n"     /* only the first counts */
                    "a=setup:active\r\n"
                    "c=IN IP4 127.0.0.10\r\n";
    struct pl_sdp_tcp m;
    (void)state;
    parse_ok(s, &m);
    assert_int_equal(m.port, 6001);
    assert_string_equal(m.addr, "127.0.0.1");
    assert_int_equal(m.setup, PL_SETUP_PASSIVE);
    assert_string_equal(m.token, TOK);
}

static void test_session_and_media_level(void **state)
{
    struct pl_sdp_tcp m;
    (void)state;
    /* c= and a=setup from the session level only; a session-level token
     * does not count */
    parse_ok("v=0\r\nc=IN IP6 ::1\r\na=setup:active\r\na=connection:existing\r\n"
             "a=postlink-token:" TOK "\r\nt=0 0\r\nm=application 9 TCP smtp\r\n", &m);
    assert_string_equal(m.addr, "::1");
    assert_int_equal(m.family, AF_INET6);
    assert_int_equal(m.setup, PL_SETUP_ACTIVE);
    assert_int_equal(m.connection_new, 0);
    assert_string_equal(m.token, "");
    /* the media level overrides both */
    parse_ok("v=0\r\nc=IN IP6 ::1\r\na=setup:active\r\na=connection:existing\r\n"
             "m=application 25 TCP smtp\r\nc=IN IP4 127.0.0.5\r\na=setup:holdconn\r\n"
             "a=connection:new\r\na=sendrecv\r\na=x-unknown:1 2 3\r\n"
             "a=postlink-token:" TOK "\r\n", &m);
    assert_string_equal(m.addr, "127.0.0.5");
    assert_int_equal(m.family, AF_INET);
    assert_int_equal(m.setup, PL_SETUP_HOLDCONN);
    assert_int_equal(m.connection_new, 1);
    assert_string_equal(m.token, TOK);
    /* several fmts, smtp among them */
    parse_ok("v=0\r\nm=application 25 TCP foo smtp bar\r\nc=IN IP4 127.0.0.5\r\n", &m);
    assert_int_equal(m.port, 25);
    /* blank lines are skipped */
    parse_ok("v=0\r\n\r\nm=application 25 TCP smtp\r\n\nc=IN IP4 127.0.0.5\r\n\r\n", &m);
    assert_int_equal(m.port, 25);
}

/* ---- garbage --------------------------------------------------------------- */

static void test_garbage(void **state)
{
    char big[PL_SDP_MAX + 200], line[PL_SDP_LINE_MAX + 100];
    const char *ok_tail = "m=application 40000 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n";
    (void)state;

#define F(s, want) parse_fails(s, strlen(s), want)
    F("", "empty");
    F("v=0\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n", "no m=application TCP smtp line");
    F("v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n", "no m=application TCP smtp");
    F("v=0\r\nm=application 40000 TCP http\r\nc=IN IP4 127.0.0.1\r\n", "no m=application");
    F("v=0\r\nm=application 40000 UDP smtp\r\nc=IN IP4 127.0.0.1\r\n", "no m=application");
    F("v=0\r\nm=application 0 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "port 0: media rejected");
    F("v=0\r\nm=application 00000 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "port 0: media rejected");
    F("v=0\r\nm=application 70000 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "out of range");
    F("v=0\r\nm=application 65536 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "out of range");
    F("v=0\r\nm=application 123456 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "out of range");
    F("v=0\r\nm=application -1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "not a number");
    F("v=0\r\nm=application 4000/2 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "port count");
    F("v=0\r\nm=application 40000 TCP smtp\r\n", "no c= line");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 localhost\r\n",
      "c= address is not numeric");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 mail.example.com\r\n",
      "c= address is not numeric");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 ::1\r\n", "does not match");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP6 127.0.0.1\r\n", "does not match");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 0.0.0.0\r\n", "unspecified");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP6 ::\r\n", "unspecified");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 224.2.1.1/127\r\n", "not numeric");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 224.2.1.1\r\n", "multicast");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 127.0.0.1 x\r\n", "c= is not");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=ATM IP4 127.0.0.1\r\n", "not IN");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IPX 127.0.0.1\r\n", "not IP4 or IP6");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP6 fe80::1%eth0\r\n", "not numeric");
    F("v=0\r\nc=IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.2\r\nm=application 1 TCP smtp\r\n",
      "second c=");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\nc=IN IP4 127.0.0.1\r\n",
      "second c=");

    /* tokens: wrong length, uppercase, not hex, twice */
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:" TOK "0\r\n", "64 lowercase hex");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:0123456789abcdef\r\n", "64 lowercase hex");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:\r\n", "64 lowercase hex");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
      "64 lowercase hex");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
      "64 lowercase hex");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:" TOK " \r\n", "64 lowercase hex");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=postlink-token:" TOK "\r\na=postlink-token:" TOK2 "\r\n", "second a=postlink-token");

    /* roles */
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\na=setup:both\r\n",
      "unknown a=setup");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\na=setup\r\n", "unknown a=setup");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n"
      "a=setup:active\r\na=setup:passive\r\n", "second a=setup");
    F("v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\na=connection:old\r\n",
      "unknown a=connection");

    /* framing */
    F("x=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "does not start with v=0");
    F("v=1\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "does not start with v=0");
    F("\r\nv=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n", "does not start");
    F("v=0\r\nhello\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n",
      "line 2 is not <type>=<value>");
    F("v=0\r\nM=application 1 TCP smtp\r\n", "line 2 is not");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 127.0.0.1", "line 3 has no line end");
    F("v=0\r\nm=application 40000 TCP smtp\r\nc=IN IP4 127.0.0.1\r", "has no line end");
    F("v=0", "has no line end");

    /* a NUL byte, even one after a complete body */
    {
        const char nul[] = "v=0\r\nm=application 1 TCP smtp\r\nc=IN IP4 127.0.0.1\r\n\0";
        const char nul2[] = "v=0\r\nm=application 1 TCP s\0mtp\r\nc=IN IP4 127.0.0.1\r\n";
        parse_fails(nul, sizeof(nul) - 1, "NUL byte");
        parse_fails(nul2, sizeof(nul2) - 1, "NUL byte");
    }
    /* a line of PL_SDP_LINE_MAX bytes passes, one byte more does not */
    snprintf(line, sizeof(line), "v=0\r\ns=%0*d\r\n%s", PL_SDP_LINE_MAX - 2, 0, ok_tail);
    {
        struct pl_sdp_tcp m;
        parse_ok(line, &m);
    }
    snprintf(line, sizeof(line), "v=0\r\ns=%0*d\r\n%s", PL_SDP_LINE_MAX - 1, 0, ok_tail);
    F(line, "line 2 longer than 1000 bytes");
    /* a body over 16 KB */
    snprintf(big, sizeof(big), "v=0\r\n%s", ok_tail);
    while (strlen(big) <= PL_SDP_MAX)
        strcat(big, "a=x\r\n");
    F(big, "longer than 16384");
#undef F
}

/* The parser reads only sdp[0..len) (each prefix is copied to a buffer of
 * exactly its size, so ASan sees any overread): a body cut anywhere fails
 * unless the cut falls on a line end after the m= line, and then says only
 * what the lines before the cut said. */
static void test_every_prefix(void **state)
{
    struct pl_sdp_tcp m = media(AF_INET, "127.0.0.1", 40000, PL_SETUP_PASSIVE), r;
    char out[1024], err[200];
    int n, mend;
    (void)state;
    n = pl_sdp_build(out, sizeof(out), 1, 1, &m);
    assert_true(n > 0);
    mend = (int)(strchr(strstr(out, "\nm="), '\r') - out) + 2;  /* after m='s CRLF */
    for (int k = 0; k <= n; k++) {
        char *copy = malloc(k ? (size_t)k : 1);
        int rc;
        assert_non_null(copy);
        memcpy(copy, out, (size_t)k);
        rc = pl_sdp_parse(copy, (size_t)k, &r, err, sizeof(err));
        free(copy);
        if (rc != (k >= mend && out[k - 1] == '\n' ? 0 : -1))
            fail_msg("prefix of %d bytes: rc %d (%s)", k, rc, err);
        if (rc == 0) {
            assert_int_equal(r.port, 40000);
            assert_string_equal(r.addr, "127.0.0.1");
            assert_string_equal(r.token, k == n ? TOK : "");
        }
    }
    /* cut inside the token line's CRLF: an error, not a parse */
    assert_int_equal(pl_sdp_parse(out, (size_t)n - 1, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no line end"));
    assert_int_equal(pl_sdp_parse(out, (size_t)n - 2, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no line end"));
}

static void test_err_buffer(void **state)
{
    struct pl_sdp_tcp m;
    char err[8];
    (void)state;
    assert_int_equal(pl_sdp_parse("v=0\r\n", 5, &m, err, sizeof(err)), -1);
    assert_string_equal(err, "no m=ap");                  /* truncated, terminated */
    assert_int_equal(pl_sdp_parse("v=0\r\n", 5, &m, NULL, 0), -1);
    assert_int_equal(pl_sdp_parse(NULL, 0, &m, err, sizeof(err)), -1);
    assert_int_equal(pl_sdp_parse("v=0\r\n", 5, NULL, err, sizeof(err)), -1);
}

/* ---- roles --------------------------------------------------------------- */

static void test_answer_setup(void **state)
{
    static const struct {
        enum pl_sdp_setup offer, preferred;
        int rc;
        enum pl_sdp_setup answer;
    } t[] = {
        {PL_SETUP_ACTPASS, PL_SETUP_NONE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_ACTPASS, PL_SETUP_PASSIVE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_ACTPASS, PL_SETUP_ACTIVE, 0, PL_SETUP_ACTIVE},
        {PL_SETUP_ACTPASS, PL_SETUP_ACTPASS, -1, 0},
        {PL_SETUP_ACTPASS, PL_SETUP_HOLDCONN, -1, 0},
        {PL_SETUP_ACTIVE, PL_SETUP_NONE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_ACTIVE, PL_SETUP_PASSIVE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_ACTIVE, PL_SETUP_ACTIVE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_ACTIVE, PL_SETUP_ACTPASS, -1, 0},
        {PL_SETUP_ACTIVE, PL_SETUP_HOLDCONN, -1, 0},
        {PL_SETUP_NONE, PL_SETUP_NONE, 0, PL_SETUP_PASSIVE},   /* RFC default: active */
        {PL_SETUP_NONE, PL_SETUP_PASSIVE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_NONE, PL_SETUP_ACTIVE, 0, PL_SETUP_PASSIVE},
        {PL_SETUP_NONE, PL_SETUP_ACTPASS, -1, 0},
        {PL_SETUP_NONE, PL_SETUP_HOLDCONN, -1, 0},
        {PL_SETUP_PASSIVE, PL_SETUP_NONE, 0, PL_SETUP_ACTIVE},
        {PL_SETUP_PASSIVE, PL_SETUP_PASSIVE, 0, PL_SETUP_ACTIVE},
        {PL_SETUP_PASSIVE, PL_SETUP_ACTIVE, 0, PL_SETUP_ACTIVE},
        {PL_SETUP_PASSIVE, PL_SETUP_ACTPASS, -1, 0},
        {PL_SETUP_PASSIVE, PL_SETUP_HOLDCONN, -1, 0},
        {PL_SETUP_HOLDCONN, PL_SETUP_NONE, -1, 0},
        {PL_SETUP_HOLDCONN, PL_SETUP_PASSIVE, -1, 0},
        {PL_SETUP_HOLDCONN, PL_SETUP_ACTIVE, -1, 0},
        {PL_SETUP_HOLDCONN, PL_SETUP_ACTPASS, -1, 0},
        {PL_SETUP_HOLDCONN, PL_SETUP_HOLDCONN, -1, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        enum pl_sdp_setup a = (enum pl_sdp_setup)99;
        int rc = pl_sdp_answer_setup(t[i].offer, t[i].preferred, &a);
        if (rc != t[i].rc || (rc == 0 && a != t[i].answer) || (rc != 0 && a != 99))
            fail_msg("case %zu: offer %d preferred %d -> rc %d answer %d", i,
                     t[i].offer, t[i].preferred, rc, a);
    }
    assert_int_equal(pl_sdp_answer_setup(PL_SETUP_ACTPASS, PL_SETUP_NONE, NULL), -1);
    assert_int_equal(pl_sdp_answer_setup((enum pl_sdp_setup)42, PL_SETUP_NONE,
                                         &(enum pl_sdp_setup){0}), -1);
}

static void test_offer_setup_and_i_connect(void **state)
{
    enum pl_sdp_setup mine = PL_SETUP_NONE, ans;
    (void)state;
    assert_int_equal(pl_sdp_offer_setup(PL_SETUP_ACTIVE, &mine), 0);
    assert_int_equal(mine, PL_SETUP_PASSIVE);
    assert_int_equal(pl_sdp_i_connect(mine), 0);
    assert_int_equal(pl_sdp_offer_setup(PL_SETUP_PASSIVE, &mine), 0);
    assert_int_equal(mine, PL_SETUP_ACTIVE);
    assert_int_equal(pl_sdp_i_connect(mine), 1);
    assert_int_equal(pl_sdp_offer_setup(PL_SETUP_NONE, &mine), 0);
    assert_int_equal(mine, PL_SETUP_ACTIVE);
    assert_int_equal(pl_sdp_offer_setup(PL_SETUP_ACTPASS, &mine), -1);
    assert_int_equal(pl_sdp_offer_setup(PL_SETUP_HOLDCONN, &mine), -1);
    assert_int_equal(pl_sdp_i_connect(PL_SETUP_ACTPASS), -1);
    assert_int_equal(pl_sdp_i_connect(PL_SETUP_NONE), -1);
    assert_int_equal(pl_sdp_i_connect(PL_SETUP_HOLDCONN), -1);
    /* both ways round: exactly one side connects */
    for (int pref = PL_SETUP_ACTIVE; pref <= PL_SETUP_PASSIVE; pref++) {
        assert_int_equal(pl_sdp_answer_setup(PL_SETUP_ACTPASS, (enum pl_sdp_setup)pref, &ans), 0);
        assert_int_equal(pl_sdp_offer_setup(ans, &mine), 0);
        assert_int_equal(pl_sdp_i_connect(ans) + pl_sdp_i_connect(mine), 1);
    }
    assert_string_equal(pl_sdp_setup_name(PL_SETUP_ACTPASS), "actpass");
    assert_string_equal(pl_sdp_setup_name(PL_SETUP_HOLDCONN), "holdconn");
    assert_null(pl_sdp_setup_name(PL_SETUP_NONE));
}

/* ---- tokens -------------------------------------------------------------- */

static void test_tokens(void **state)
{
    char a[PL_SDP_TOKEN_LEN + 1], b[PL_SDP_TOKEN_LEN + 1];
    (void)state;
    assert_int_equal(pl_sdp_token_new(a), 0);
    assert_int_equal(pl_sdp_token_new(b), 0);
    assert_int_equal(strlen(a), 64);
    assert_true(pl_sdp_token_ok(a));
    assert_true(pl_sdp_token_ok(b));
    assert_string_not_equal(a, b);
    assert_true(pl_sdp_token_eq(a, a));
    assert_false(pl_sdp_token_eq(a, b));
    assert_true(pl_sdp_token_eq(TOK, TOK));
    assert_false(pl_sdp_token_eq(TOK, TOK2));
    assert_false(pl_sdp_token_eq(TOK, TOK "0"));
    assert_false(pl_sdp_token_eq("abc", "abc"));
    assert_false(pl_sdp_token_eq("", ""));
    assert_false(pl_sdp_token_eq(NULL, TOK));
    memcpy(b, a, sizeof(b));
    b[63] = b[63] == '0' ? '1' : '0';
    assert_false(pl_sdp_token_eq(a, b));
    assert_false(pl_sdp_token_ok("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_false(pl_sdp_token_ok(TOK "0"));
    assert_false(pl_sdp_token_ok(NULL));
}

static void test_token_line(void **state)
{
    char out[PL_SDP_TOKEN_LINE_MAX + 1];
    const char *want = "POSTLINK " TOK "\r\n";
    (void)state;
    assert_int_equal(pl_sdp_token_line(out, sizeof(out), TOK), PL_SDP_TOKEN_LINE_MAX);
    assert_string_equal(out, want);
    assert_int_equal(pl_sdp_token_line(out, sizeof(out) - 1, TOK), -1);
    assert_int_equal(pl_sdp_token_line(out, sizeof(out), "abc"), -1);
    assert_int_equal(pl_sdp_token_line(out, sizeof(out), NULL), -1);

    assert_int_equal(pl_sdp_token_line_check(want, strlen(want), TOK), 1);
    assert_int_equal(pl_sdp_token_line_check("POSTLINK " TOK "\n", 74, TOK), 1);
    assert_int_equal(pl_sdp_token_line_check(want, strlen(want), TOK2), 0);
    assert_int_equal(pl_sdp_token_line_check(want, strlen(want) - 1, TOK), 0);  /* CR only */
    assert_int_equal(pl_sdp_token_line_check(want, strlen(want) - 2, TOK), 0);  /* no end */
    assert_int_equal(pl_sdp_token_line_check("POSTLINK " TOK "\r\n\n", 76, TOK), 0);
    assert_int_equal(pl_sdp_token_line_check("postlink " TOK "\r\n", 75, TOK), 0);
    assert_int_equal(pl_sdp_token_line_check("POSTLINK  " TOK "\n", 75, TOK), 0);
    assert_int_equal(pl_sdp_token_line_check("POSTLINK " TOK " \n", 75, TOK), 0);
    assert_int_equal(pl_sdp_token_line_check("POSTLINK " TOK "\r\r", 75, TOK), 0);
    assert_int_equal(pl_sdp_token_line_check("EHLO x\r\n", 8, TOK), 0);
    assert_int_equal(pl_sdp_token_line_check(want, strlen(want), "abc"), 0);
    assert_int_equal(pl_sdp_token_line_check(want, strlen(want), ""), 0);
    assert_int_equal(pl_sdp_token_line_check(NULL, 0, TOK), 0);
    {   /* the token line check is not fooled by an uppercase copy */
        char up[80];
        snprintf(up, sizeof(up), "POSTLINK %s\r\n", TOK);
        for (char *c = up + 9; *c != '\r'; c++)
            if (*c >= 'a' && *c <= 'f')
                *c = (char)(*c - 'a' + 'A');
        assert_int_equal(pl_sdp_token_line_check(up, strlen(up), TOK), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_exact_ipv4),
        cmocka_unit_test(test_roundtrip_ipv4),
        cmocka_unit_test(test_roundtrip_ipv6),
        cmocka_unit_test(test_build_refuses),
        cmocka_unit_test(test_sipp_answer),
        cmocka_unit_test(test_sofia_lowercase),
        cmocka_unit_test(test_audio_first),
        cmocka_unit_test(test_session_and_media_level),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_err_buffer),
        cmocka_unit_test(test_answer_setup),
        cmocka_unit_test(test_offer_setup_and_i_connect),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_token_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
