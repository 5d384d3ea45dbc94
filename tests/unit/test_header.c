/* test_header.c -- unit tests of header parsing (header.h) and control
 * messages (control.h). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "control.h"
#include "header.h"
#include "strutil.h"

/* ---- header section ----------------------------------------------------- */

static void test_parse_lf_folding(void **state)
{
    const char *m = "From: Alice <alice@example.com>\n"
                    "Subject: a long\n"
                    " folded\n"
                    "\tsubject   \n"
                    "X-Empty:\n"
                    "\n"
                    "Body: not a header\n";
    struct pl_headers hs;
    (void)state;
    assert_int_equal(pl_headers_parse(&hs, m, strlen(m)), 0);
    assert_int_equal(hs.n, 3);
    assert_string_equal(hs.h[0].name, "From");
    assert_string_equal(hs.h[0].value, "Alice <alice@example.com>");
    assert_string_equal(hs.h[1].value, "a long folded\tsubject");
    assert_string_equal(hs.h[2].value, "");
    assert_string_equal(m + hs.body_offset, "Body: not a header\n");
    assert_null(pl_headers_get(&hs, "Body", 0));
    pl_headers_free(&hs);
}

static void test_parse_crlf(void **state)
{
    const char *m = "To: bob@example.com,\r\n carol@example.com\r\n"
                    "Subject : spaced colon\r\n"
                    "\r\n"
                    "hello\r\n";
    struct pl_headers hs;
    (void)state;
    assert_int_equal(pl_headers_parse(&hs, m, strlen(m)), 0);
    assert_int_equal(hs.n, 2);
    assert_string_equal(hs.h[0].value, "bob@example.com, carol@example.com");
    assert_string_equal(hs.h[1].name, "Subject");
    assert_string_equal(hs.h[1].value, "spaced colon");
    assert_string_equal(m + hs.body_offset, "hello\r\n");
    pl_headers_free(&hs);
}

static void test_parse_body_split(void **state)
{
    struct pl_headers hs;
    const char *m;
    (void)state;

    /* A line that is not a field starts the body. */
    m = "A: 1\nthis is body\nB: 2\n";
    pl_headers_parse(&hs, m, strlen(m));
    assert_int_equal(hs.n, 1);
    assert_int_equal(hs.body_offset, 5);
    pl_headers_free(&hs);

    /* An illegal name (space inside) is not a field. */
    m = "A: 1\nBad Name: x\n";
    pl_headers_parse(&hs, m, strlen(m));
    assert_int_equal(hs.n, 1);
    assert_int_equal(hs.body_offset, 5);
    pl_headers_free(&hs);

    /* No body, no final newline; len is respected (no NUL needed). */
    m = "A: 1\nB: 2xxxx";
    pl_headers_parse(&hs, m, 9);
    assert_int_equal(hs.n, 2);
    assert_string_equal(hs.h[1].value, "2");
    assert_int_equal(hs.body_offset, 9);
    pl_headers_free(&hs);

    /* Leading continuation line: no headers at all. */
    m = " x\n\nbody";
    pl_headers_parse(&hs, m, strlen(m));
    assert_int_equal(hs.n, 0);
    assert_int_equal(hs.body_offset, 0);
    pl_headers_free(&hs);

    /* Empty message. */
    pl_headers_parse(&hs, "", 0);
    assert_int_equal(hs.n, 0);
    assert_int_equal(hs.body_offset, 0);
    pl_headers_free(&hs);

    /* Blank line first: everything is body. */
    m = "\r\nA: 1\r\n";
    pl_headers_parse(&hs, m, strlen(m));
    assert_int_equal(hs.n, 0);
    assert_int_equal(hs.body_offset, 2);
    pl_headers_free(&hs);
}

static void test_lookup_case(void **state)
{
    const char *m = "Received: one\nreceived: two\nRECEIVED: three\nX: y\n\n";
    struct pl_headers hs;
    (void)state;
    pl_headers_parse(&hs, m, strlen(m));
    assert_int_equal(pl_headers_count(&hs, "Received"), 3);
    assert_string_equal(pl_headers_get(&hs, "received", 0), "one");
    assert_string_equal(pl_headers_get(&hs, "ReCeIvEd", 2), "three");
    assert_null(pl_headers_get(&hs, "Received", 3));
    assert_int_equal(pl_headers_count(&hs, "Nope"), 0);
    pl_headers_add(&hs, "X-Added", "  folded\r\n value ");
    assert_string_equal(pl_headers_get(&hs, "x-added", 0), "folded value");
    pl_headers_free(&hs);
}

static void test_huge_value(void **state)
{
    size_t n = 100 * 1024;
    char *m = pl_xmalloc(n + 32);
    struct pl_headers hs;
    (void)state;
    memcpy(m, "Subject: ", 9);
    for (size_t i = 9; i < n; i++)
        m[i] = (i % 80 == 0) ? '\n' : (i % 80 == 1 ? ' ' : (char)(0x80 | (i & 0x3f)));
    memcpy(m + n, "\n\nbody", 6);
    pl_headers_parse(&hs, m, n + 6);
    assert_int_equal(hs.n, 1);
    assert_true(strlen(hs.h[0].value) > 90000);
    assert_null(strchr(hs.h[0].value, '\n'));
    assert_int_equal(hs.body_offset, n + 2);
    pl_headers_free(&hs);
    free(m);
}

/* ---- Message-ID --------------------------------------------------------- */

static void test_msgid(void **state)
{
    char out[PL_MSGID_MAX + 1], lng[400];
    const char *why = NULL;
    (void)state;
    assert_int_equal(pl_msgid_parse("<abc.123@example.com>", out, sizeof(out), NULL), 0);
    assert_string_equal(out, "<abc.123@example.com>");
    assert_int_equal(pl_msgid_parse("  (a comment (nested)) <x@y> (trailing)", out,
                                    sizeof(out), NULL), 0);
    assert_string_equal(out, "<x@y>");
    assert_int_equal(pl_msgid_parse("<first@a> <second@b>", out, sizeof(out), NULL), 0);
    assert_string_equal(out, "<first@a>");
    assert_int_equal(pl_msgid_parse("(<not@this>) <yes@this>", out, sizeof(out), NULL), 0);
    assert_string_equal(out, "<yes@this>");

    assert_int_equal(pl_msgid_parse("<a b@c>", out, sizeof(out), &why), -1);
    assert_non_null(why);
    assert_int_equal(pl_msgid_parse("<abc>", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("<@abc>", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("<abc@>", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("abc@def", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("<abc@def", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("<a\xc3\xa9@b>", out, sizeof(out), &why), -1);
    assert_int_equal(pl_msgid_parse("<a<b@c>", out, sizeof(out), &why), -1);

    /* Exactly PL_MSGID_MAX is fine, one more is not; outlen is honoured. */
    lng[0] = '<';
    memset(lng + 1, 'a', PL_MSGID_MAX - 4);
    memcpy(lng + PL_MSGID_MAX - 3, "@b>", 4);
    assert_int_equal(strlen(lng), PL_MSGID_MAX);
    assert_int_equal(pl_msgid_parse(lng, out, sizeof(out), NULL), 0);
    assert_string_equal(out, lng);
    assert_int_equal(pl_msgid_parse(lng, out, PL_MSGID_MAX, NULL), -1);
    lng[0] = '<';
    memset(lng + 1, 'a', PL_MSGID_MAX - 3);
    memcpy(lng + PL_MSGID_MAX - 2, "@b>", 4);
    assert_int_equal(pl_msgid_parse(lng, out, sizeof(out), &why), -1);
    assert_string_equal(why, "message-id too long");
}

/* ---- Date --------------------------------------------------------------- */

static void test_date_ok(void **state)
{
    static const struct { const char *s; int64_t t; } ok[] = {
        {"Mon, 23 Nov 2026 10:00:00 +0100", 1795424400},
        {"23 Nov 2026 10:00 +0100", 1795424400},
        {"mon,23 nov 2026 10:00:00 +0100 (CET)", 1795424400},
        {"Mon, 23 Nov 2026 10:00:00 +0100 CET", 1795424400},
        {"Tue, 1 Feb 2000 00:00:00 -0530", 949383000},
        {"29 Feb 2024 12:34:56 GMT", 1709210096},
        {"Sun, 06 Nov 1994 08:49:37 EST", 784129777},
        {"Sun, 06 Nov 1994 08:49:37 UT", 784111777},
        {"Sun, 06 Nov 1994 08:49:37 Z", 784111777},
        {"Sun, 06 Nov 1994 08:49:37 a", 784111777},
        {"31 Dec 1999 23:59:59 PDT", 946709999},
        {"1 Jan 1970 00:00:00 +0000", 0},
        {"1 Mar 2100 00:00:00 +0000", 4107542400},
        {"1 Jan 99 00:00:00 GMT", 915148800},
        {"(sent) Fri (x), 1 (y) Jan 1999 00 : 00 : 00 -0000 (z)", 915148800},
    };
    int64_t t;
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        t = -12345;
        if (pl_date_parse(ok[i].s, &t) != 0 || t != ok[i].t)
            fail_msg("\"%s\" -> %lld, want %lld", ok[i].s, (long long)t, (long long)ok[i].t);
    }
}

static void test_date_bad(void **state)
{
    static const char *const bad[] = {
        "", "garbage", "Mon, 23 Nov 2026", "Mon, 23 Nov 2026 10:00:00",
        "Mon, 23 Noo 2026 10:00:00 +0100", "Xyz, 23 Nov 2026 10:00:00 +0100",
        "32 Jan 2026 10:00:00 +0000", "29 Feb 2023 10:00:00 +0000",
        "29 Feb 2100 10:00:00 +0000", "1 Jan 2026 24:00:00 +0000",
        "1 Jan 2026 10:60:00 +0000", "1 Jan 2026 10:00:00 +01",
        "1 Jan 2026 10:00:00 +0160", "1 Jan 2026 10:00:00 +0000 trailing junk",
        "1 Jan 2026 10:00:00 Europeanzone", "1 Jan 12026 10:00:00 +0000",
        "0 Jan 2026 10:00:00 +0000",
        "1 Jan 2026 10:00:00 \xc3\xa9",
    };
    int64_t t;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pl_date_parse(bad[i], &t) != -1)
            fail_msg("\"%s\" accepted as %lld", bad[i], (long long)t);
}

/* ---- addresses ---------------------------------------------------------- */

static void test_addr(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(pl_header_addr("\"Alice, A.\" <Alice@Example.COM>", out, sizeof(out)), 0);
    assert_string_equal(out, "alice@example.com");
    assert_int_equal(pl_header_addr("Bob@Example.net", out, sizeof(out)), 0);
    assert_string_equal(out, "bob@example.net");
    assert_int_equal(pl_header_addr("bob@example.net (Bob <x@y>)", out, sizeof(out)), 0);
    assert_string_equal(out, "bob@example.net");
    assert_int_equal(pl_header_addr("\"<fake@x>\" < real@x >", out, sizeof(out)), 0);
    assert_string_equal(out, "real@x");
    assert_int_equal(pl_header_addr("<@relay.example:dst@example.org>", out, sizeof(out)), 0);
    assert_string_equal(out, "dst@example.org");
    assert_int_equal(pl_header_addr("no address here", out, sizeof(out)), -1);
    assert_int_equal(pl_header_addr("<>", out, sizeof(out)), -1);
    assert_int_equal(pl_header_addr("", out, sizeof(out)), -1);
    assert_int_equal(pl_header_addr("averyveryverylonglocalpart@example.com", out, 10), -1);
}

static void test_addr_list(void **state)
{
    struct pl_strvec v = {0};
    (void)state;
    pl_header_addr_list("\"Alice, A.\" <Alice@Example.COM>, bob@b.example (Bob, jr.),"
                        " friends: Carol <carol@c.example>, dave@d.example;,"
                        " undisclosed-recipients:;, \"Eve\" <EVE@e.example>", &v);
    assert_int_equal(v.n, 5);
    assert_string_equal(v.v[0], "alice@example.com");
    assert_string_equal(v.v[1], "bob@b.example");
    assert_string_equal(v.v[2], "carol@c.example");
    assert_string_equal(v.v[3], "dave@d.example");
    assert_string_equal(v.v[4], "eve@e.example");
    pl_strvec_free(&v);
    pl_header_addr_list("", &v);
    pl_header_addr_list("nobody, (just a comment)", &v);
    assert_int_equal(v.n, 0);
    pl_strvec_free(&v);
}

/* ---- control messages --------------------------------------------------- */

static int ctl(const char *msg, size_t max, struct pl_control *c, char *err, size_t errlen)
{
    struct pl_headers hs;
    int rc;
    pl_headers_parse(&hs, msg, strlen(msg));
    rc = pl_control_parse(&hs, max, c, err, errlen);
    pl_headers_free(&hs);
    return rc;
}

static void test_control_words(void **state)
{
    static const struct { const char *name; enum pl_ctl_word w; int flag, set; } words[] = {
        {"read", PL_CW_READ, PL_ST_READ, 1}, {"UNREAD", PL_CW_UNREAD, PL_ST_READ, 0},
        {"Replied", PL_CW_REPLIED, PL_ST_REPLIED, 1}, {"saved", PL_CW_SAVED, PL_ST_SAVED, 1},
        {"deleted", PL_CW_DELETED, PL_ST_DELETED, 1},
        {"undeleted", PL_CW_UNDELETED, PL_ST_DELETED, 0},
    };
    struct pl_control c;
    char msg[256], err[200];
    int set;
    (void)state;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        snprintf(msg, sizeof(msg), "Message-ID: <ctl%zu@dev>\nDate: 23 Nov 2026 10:00 +0100\n"
                 "X-Control: %s\nX-Control-Target: <t@h>\nX-Control-Version: 7\n\n",
                 i, words[i].name);
        assert_int_equal(ctl(msg, 3, &c, err, sizeof(err)), PL_CTL_OK);
        assert_int_equal(c.word, words[i].w);
        assert_int_equal(c.ntargets, 1);
        assert_string_equal(c.targets[0], "<t@h>");
        assert_int_equal(c.version, 7);
        assert_int_equal(c.since, -1);
        assert_int_equal(c.date, 1795424400);
        assert_int_equal(c.forwarded, 0);
        assert_int_equal(pl_ctl_word_parse(words[i].name), words[i].w);
        assert_int_equal(pl_ctl_word_flag(words[i].w, &set), words[i].flag);
        assert_int_equal(set, words[i].set);
        pl_control_free(&c);
    }
    assert_int_equal(pl_ctl_word_flag(PL_CW_RESYNC, &set), -1);
    assert_int_equal(pl_ctl_word_flag(PL_CW_NONE, &set), -1);
    assert_string_equal(pl_ctl_word_name(PL_CW_UNDELETED), "undeleted");
    assert_string_equal(pl_ctl_word_name(PL_CW_RESYNC), "resync");
    assert_int_equal(pl_ctl_word_parse("reed"), PL_CW_NONE);
}

static void test_control_none_and_meta(void **state)
{
    struct pl_control c;
    char err[200];
    (void)state;
    assert_int_equal(ctl("Message-ID: (c) <m@x>\nSubject: hi\nX-Postlink-Forwarded: a\n\n",
                         3, &c, err, sizeof(err)), PL_CTL_NONE);
    assert_string_equal(c.msgid, "<m@x>");
    assert_int_equal(c.forwarded, 1);
    assert_int_equal(c.ntargets, 0);
    pl_control_free(&c);
    assert_int_equal(ctl("Message-ID: broken\nDate: yesterday\nX-Control: read\n"
                         "X-Control-Target: <t@h>\n\n", 3, &c, err, sizeof(err)), PL_CTL_OK);
    assert_string_equal(c.msgid, "");
    assert_int_equal(c.date, 0);
    assert_int_equal(c.version, -1);
    pl_control_free(&c);
}

static void test_control_targets(void **state)
{
    struct pl_control c;
    char err[200];
    (void)state;
    assert_int_equal(ctl("X-Control: read\n"
                         "X-Control-Target: <a@h>, <b@h>\n"
                         "X-Control-Target: <a@h>\t<c@h> (comment, here)\n"
                         " ,<b@h>\n\n", 3, &c, err, sizeof(err)), PL_CTL_OK);
    assert_int_equal(c.ntargets, 3);
    assert_string_equal(c.targets[0], "<a@h>");
    assert_string_equal(c.targets[1], "<b@h>");
    assert_string_equal(c.targets[2], "<c@h>");
    pl_control_free(&c);

    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <a@h> <b@h> <c@h> <d@h>\n\n",
                         3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "more than 3 targets");
    assert_null(c.targets);
    pl_control_free(&c);

    assert_int_equal(ctl("X-Control: saved\n\n", 3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "X-Control-Target missing");
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: saved\nX-Control-Target:\n\n", 3, &c, err, sizeof(err)),
                     PL_CTL_BAD);
    assert_string_equal(err, "X-Control-Target missing");
    pl_control_free(&c);

    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <a@h>, abc\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    assert_true(strncmp(err, "malformed X-Control-Target: abc", 31) == 0);
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <abc>\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    assert_true(strncmp(err, "malformed X-Control-Target: ", 28) == 0);
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <a b@h>\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    pl_control_free(&c);
}

static void test_control_8bit_target(void **state)
{
    struct pl_control c;
    char err[200];
    (void)state;
    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <caf\xc3\xa9@h>\n\n", 3, &c,
                         err, sizeof(err)), PL_CTL_BAD);
    assert_true(strncmp(err, "malformed X-Control-Target: ", 28) == 0);
    for (const char *p = err; *p; p++)          /* the error line stays ASCII */
        assert_true((unsigned char)*p >= 32 && (unsigned char)*p < 127);
    pl_control_free(&c);
}

static void test_control_bad_word(void **state)
{
    struct pl_control c;
    char err[200];
    (void)state;
    assert_int_equal(ctl("X-Control: reed\nX-Control-Target: <a@h>\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "unknown X-Control state \"reed\"");
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control:\nX-Control-Target: <a@h>\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "unknown X-Control state \"\"");
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: none\nX-Control-Target: <a@h>\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    pl_control_free(&c);

    assert_int_equal(ctl("X-Control: read\nx-control: deleted\nX-Control-Target: <a@h>\n\n",
                         3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "X-Control given twice");
    pl_control_free(&c);
    /* The same word twice is harmless. */
    assert_int_equal(ctl("X-Control: read\nX-Control: READ\nX-Control-Target: <a@h>\n\n",
                         3, &c, err, sizeof(err)), PL_CTL_OK);
    assert_int_equal(c.word, PL_CW_READ);
    pl_control_free(&c);
}

static void test_control_numbers(void **state)
{
    static const char *const bad[] = {"-1", "abc", "", "1.5", "+3", "4611686018427387905",
                                      "99999999999999999999999", "12 (x)"};
    struct pl_control c;
    char msg[256], err[200];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(msg, sizeof(msg), "X-Control: read\nX-Control-Target: <a@h>\n"
                 "X-Control-Version: %s\n\n", bad[i]);
        assert_int_equal(ctl(msg, 3, &c, err, sizeof(err)), PL_CTL_BAD);
        assert_string_equal(err, "malformed X-Control-Version");
        pl_control_free(&c);
    }
    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <a@h>\n"
                         "X-Control-Version: 4611686018427387904\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_OK);
    assert_int_equal(c.version, (int64_t)1 << 62);
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: read\nX-Control-Target: <a@h>\n"
                         "X-Control-Version: 3\nX-Control-Version: 4\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "X-Control-Version given twice");
    pl_control_free(&c);
}

static void test_control_resync(void **state)
{
    struct pl_control c;
    char err[200];
    (void)state;
    assert_int_equal(ctl("X-Control: Resync\nX-Control-Since: 0042\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_OK);
    assert_int_equal(c.word, PL_CW_RESYNC);
    assert_int_equal(c.since, 42);
    assert_int_equal(c.ntargets, 0);
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: resync\n\n", 3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "X-Control-Since missing");
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: resync\nX-Control-Since: x\n\n", 3, &c, err,
                         sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "malformed X-Control-Since");
    pl_control_free(&c);
    assert_int_equal(ctl("X-Control: resync\nX-Control-Since: 1\nX-Control-Target: <a@h>\n\n",
                         3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "resync takes no X-Control-Target");
    pl_control_free(&c);
    /* X-Control-Since on another word is ignored. */
    assert_int_equal(ctl("X-Control: read\nX-Control-Since: junk\nX-Control-Target: <a@h>\n\n",
                         3, &c, err, sizeof(err)), PL_CTL_OK);
    assert_int_equal(c.since, -1);
    pl_control_free(&c);
}

static void test_control_huge(void **state)
{
    size_t n = 100 * 1024, len = 0;
    char *m = pl_xmalloc(n + 128), err[200];
    struct pl_control c;
    (void)state;

    /* 100 KB of distinct targets: stops at the cap. */
    len = (size_t)sprintf(m, "X-Control: read\nX-Control-Target:");
    for (unsigned i = 0; len < n; i++)
        len += (size_t)sprintf(m + len, " <t%u@h>", i);
    strcpy(m + len, "\n\n");
    assert_int_equal(ctl(m, 3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_string_equal(err, "more than 3 targets");
    pl_control_free(&c);

    /* 100 KB of the same target: duplicates collapse. */
    len = (size_t)sprintf(m, "X-Control: read\nX-Control-Target:");
    while (len < n)
        len += (size_t)sprintf(m + len, " <t@h>,");
    strcpy(m + len, "\n\n");
    assert_int_equal(ctl(m, 3, &c, err, sizeof(err)), PL_CTL_OK);
    assert_int_equal(c.ntargets, 1);
    pl_control_free(&c);

    /* One 100 KB message-id with no '>'. */
    len = (size_t)sprintf(m, "X-Control: read\nX-Control-Target: <");
    memset(m + len, 'x', n - len);
    strcpy(m + n, "@h\n\n");
    assert_int_equal(ctl(m, 3, &c, err, sizeof(err)), PL_CTL_BAD);
    assert_true(strncmp(err, "malformed X-Control-Target: <xxx", 32) == 0);
    assert_true(strlen(err) < 120);
    pl_control_free(&c);
    free(m);
}

static void test_sync_names_and_state(void **state)
{
    char out[64];
    unsigned f;
    (void)state;
    assert_true(pl_is_sync_header("x-control"));
    assert_true(pl_is_sync_header("X-CONTROL-TARGET"));
    assert_true(pl_is_sync_header("X-Control-Version"));
    assert_true(pl_is_sync_header("X-Control-Since"));
    assert_true(pl_is_sync_header("x-postlink-forwarded"));
    assert_true(pl_is_sync_header("X-Postlink-State"));
    assert_false(pl_is_sync_header("X-Control-Other"));
    assert_false(pl_is_sync_header("Subject"));

    pl_state_format(PL_ST_ALL, out, sizeof(out));
    assert_string_equal(out, "read, replied, saved, deleted");
    pl_state_format(PL_ST_SAVED | PL_ST_READ, out, sizeof(out));
    assert_string_equal(out, "read, saved");
    pl_state_format(0, out, sizeof(out));
    assert_string_equal(out, "");
    pl_state_format(PL_ST_ALL, out, 12);
    assert_true(strlen(out) < 12);

    assert_int_equal(pl_state_parse("read, saved", &f), 0);
    assert_int_equal(f, PL_ST_READ | PL_ST_SAVED);
    assert_int_equal(pl_state_parse(" Deleted,replied  READ ", &f), 0);
    assert_int_equal(f, PL_ST_DELETED | PL_ST_REPLIED | PL_ST_READ);
    assert_int_equal(pl_state_parse("", &f), 0);
    assert_int_equal(f, 0);
    assert_int_equal(pl_state_parse("read, flagged", &f), -1);
    assert_int_equal(pl_state_parse("reads", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_lf_folding),
        cmocka_unit_test(test_parse_crlf),
        cmocka_unit_test(test_parse_body_split),
        cmocka_unit_test(test_lookup_case),
        cmocka_unit_test(test_huge_value),
        cmocka_unit_test(test_msgid),
        cmocka_unit_test(test_date_ok),
        cmocka_unit_test(test_date_bad),
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_addr_list),
        cmocka_unit_test(test_control_words),
        cmocka_unit_test(test_control_none_and_meta),
        cmocka_unit_test(test_control_targets),
        cmocka_unit_test(test_control_8bit_target),
        cmocka_unit_test(test_control_bad_word),
        cmocka_unit_test(test_control_numbers),
        cmocka_unit_test(test_control_resync),
        cmocka_unit_test(test_control_huge),
        cmocka_unit_test(test_sync_names_and_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
