/* test_imap_resp.c -- unit tests of lib/imap_resp.h: the framer (whole
 * responses out of a stream cut anywhere, literals with any bytes in them,
 * a body line that looks like a response, bounded text and body, a bad
 * literal) and the parsers of tagged status, EXISTS, UIDVALIDITY and
 * FETCH responses, as Dovecot and other servers write them. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "imap_resp.h"

/* Feeds the whole stream in chunks of `step` bytes; collects each
 * response's text (joined with "|") and bodies (joined with "|"). */
static int frame(const char *in, size_t n, size_t step, size_t body_max, char *texts,
                 size_t tl, char *bodies, size_t bl, int *cuts)
{
    struct pl_imap_rd r;
    size_t pos = 0, chunk_end = 0;
    int count = 0;

    texts[0] = bodies[0] = '\0';
    *cuts = 0;
    pl_imap_rd_init(&r, body_max);
    while (pos < n) {
        size_t used = 0;
        int rc;
        if (pos >= chunk_end)
            chunk_end = pos + step < n ? pos + step : n;
        rc = pl_imap_rd_feed(&r, in + pos, chunk_end - pos, &used);
        assert_true(used <= chunk_end - pos);
        pos += used;
        if (rc < 0) {
            count = -1;
            break;
        }
        if (rc == 1) {
            count++;
            snprintf(texts + strlen(texts), tl - strlen(texts), "%s|", r.text);
            if (r.has_body)
                snprintf(bodies + strlen(bodies), bl - strlen(bodies), "%.*s|", (int)r.body_len,
                         r.body ? r.body : "");
            *cuts += r.body_cut;
        }
    }
    pl_imap_rd_free(&r);
    return count;
}

static const char STREAM[] =
    "* 3 EXISTS\r\n"
    "* OK [UIDVALIDITY 1796214830] UIDs valid\r\n"
    "* 1 FETCH (UID 7 RFC822.SIZE 47 BODY[] {47}\r\n"
    "Subject: x\r\n\r\n* 9 FETCH (UID 99)\r\npl3 OK fake\r\n)\r\n"
    "* 2 FETCH (BODY[HEADER] {12}\r\nSubject: y\r\n UID 8)\r\n"
    "* 3 FETCH (FLAGS (\\Seen) UID 9)\r\n"
    "pl2 OK Fetch completed.\r\n";

static void test_frame_any_chunks(void **state)
{
    char texts[2048], bodies[512], first_t[2048], first_b[512];
    int cuts;
    (void)state;
    assert_int_equal(frame(STREAM, strlen(STREAM), strlen(STREAM), 1000, first_t,
                           sizeof(first_t), first_b, sizeof(first_b), &cuts), 6);
    assert_string_equal(first_t,
                        "* 3 EXISTS|* OK [UIDVALIDITY 1796214830] UIDs valid|"
                        "* 1 FETCH (UID 7 RFC822.SIZE 47 BODY[] {47})|"
                        "* 2 FETCH (BODY[HEADER] {12} UID 8)|* 3 FETCH (FLAGS (\\Seen) UID 9)|"
                        "pl2 OK Fetch completed.|");
    /* the body line that looks like a response and the fake tag stay body */
    assert_string_equal(first_b, "Subject: x\r\n\r\n* 9 FETCH (UID 99)\r\npl3 OK fake\r\n|"
                                 "Subject: y\r\n|");
    for (size_t step = 1; step < 40; step++) {
        assert_int_equal(frame(STREAM, strlen(STREAM), step, 1000, texts, sizeof(texts), bodies,
                               sizeof(bodies), &cuts), 6);
        assert_string_equal(texts, first_t);
        assert_string_equal(bodies, first_b);
        assert_int_equal(cuts, 0);
    }
}

static void test_frame_bounds(void **state)
{
    char texts[40000], bodies[512];
    int cuts;
    static char big[PL_IMAP_TEXT_MAX + 200];
    (void)state;
    /* a body over body_max is cut (flagged), the stream stays in step */
    assert_int_equal(frame(STREAM, strlen(STREAM), 7, 5, texts, sizeof(texts), bodies,
                           sizeof(bodies), &cuts), 6);
    assert_string_equal(bodies, "Subje|Subje|");
    assert_int_equal(cuts, 2);
    /* a line longer than the text limit: cut, and the literal at its end still read */
    memset(big, 'a', sizeof(big));
    memcpy(big, "* 1 FETCH (X ", 13);
    snprintf(big + sizeof(big) - 40, 40, " BODY[] {3}\r\nabc)\r\nt OK\r\n");
    {
        struct pl_imap_rd r;
        size_t used, n = strlen(big);
        pl_imap_rd_init(&r, 100);
        assert_int_equal(pl_imap_rd_feed(&r, big, n, &used), 1);
        assert_int_equal(r.cut, 1);
        assert_int_equal(r.len, PL_IMAP_TEXT_MAX);
        assert_int_equal(r.has_body, 0);  /* cut: "BODY[]" was not seen */
        assert_int_equal(pl_imap_rd_feed(&r, big + used, n - used, &used), 1);
        assert_string_equal(r.text, "t OK");
        pl_imap_rd_free(&r);
    }
    /* an absurd literal is an error */
    {
        struct pl_imap_rd r;
        size_t used;
        const char *s = "* 1 FETCH (BODY[] {99999999999999999999}\r\n";
        pl_imap_rd_init(&r, 100);
        assert_int_equal(pl_imap_rd_feed(&r, s, strlen(s), &used), -1);
        assert_non_null(strstr(r.err, "literal"));
        pl_imap_rd_free(&r);
    }
}

static void test_frame_lf_and_empty_literal(void **state)
{
    char texts[512], bodies[512];
    int cuts;
    const char *s = "* 1 FETCH (UID 4 BODY[] {0}\n)\n* 2 FETCH (UID 5 BODY[]<0> {2+}\r\nhi)\r\n";
    (void)state;
    assert_int_equal(frame(s, strlen(s), 3, 100, texts, sizeof(texts), bodies, sizeof(bodies),
                           &cuts), 2);
    assert_string_equal(texts, "* 1 FETCH (UID 4 BODY[] {0})|* 2 FETCH (UID 5 BODY[]<0> {2+})|");
    assert_string_equal(bodies, "|hi|");
    /* a NUL in a line does not end the text early */
    assert_int_equal(frame("pl1 OK a\0b\r\n", 12, 4, 100, texts, sizeof(texts), bodies,
                           sizeof(bodies), &cuts), 1);
    assert_string_equal(texts, "pl1 OK a?b|");
}

static void test_tagged(void **state)
{
    const char *rest;
    (void)state;
    assert_int_equal(pl_imap_tagged("pl2 OK Fetch completed.", "pl2", &rest), PL_IMAP_OK);
    assert_string_equal(rest, "Fetch completed.");
    assert_int_equal(pl_imap_tagged("pl2 no [NONEXISTENT] Unknown", "pl2", &rest), PL_IMAP_NO);
    assert_string_equal(rest, "[NONEXISTENT] Unknown");
    assert_int_equal(pl_imap_tagged("pl2 BAD", "pl2", &rest), PL_IMAP_BAD);
    assert_int_equal(pl_imap_tagged("pl21 OK x", "pl2", &rest), -1);
    assert_int_equal(pl_imap_tagged("pl2 OKAY", "pl2", &rest), -1);
    assert_int_equal(pl_imap_tagged("* OK x", "pl2", &rest), -1);
    assert_int_equal(pl_imap_tagged("", "pl2", &rest), -1);
}

static void test_untagged(void **state)
{
    unsigned long n;
    (void)state;
    assert_int_equal(pl_imap_untagged_num("* 23 EXISTS", "EXISTS", &n), 0);
    assert_int_equal(n, 23);
    assert_int_equal(pl_imap_untagged_num("* 0 exists", "EXISTS", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pl_imap_untagged_num("* 23 EXISTS x", "EXISTS", &n), -1);
    assert_int_equal(pl_imap_untagged_num("* 99999999999 EXISTS", "EXISTS", &n), -1);
    assert_int_equal(pl_imap_untagged_num("* 2 RECENT", "EXISTS", &n), -1);
    assert_int_equal(pl_imap_code_num("* OK [UIDVALIDITY 1796214830] UIDs valid", "UIDVALIDITY",
                                      &n), 0);
    assert_int_equal(n, 1796214830UL);
    assert_int_equal(pl_imap_code_num("* OK [UIDVALIDITY 17x] ", "UIDVALIDITY", &n), -1);
    assert_int_equal(pl_imap_code_num("* OK [UIDNEXT 6] next", "UIDVALIDITY", &n), -1);
    assert_int_equal(pl_imap_code_num("* NO [UIDVALIDITY 5]", "UIDVALIDITY", &n), -1);
}

static void test_fetch(void **state)
{
    struct pl_imap_fetch f;
    char out[32];
    (void)state;
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (UID 1 RFC822.SIZE 4475)", &f), 0);
    assert_int_equal(f.seq, 1);
    assert_int_equal(f.uid, 1);
    assert_true(f.has_size);
    assert_int_equal(f.size, 4475);
    assert_int_equal(f.body, 0);
    /* any order, other items between, a body literal */
    assert_int_equal(pl_imap_fetch_parse("* 5 FETCH (FLAGS (\\Seen $Label1) RFC822.SIZE 10 "
                                         "BODY[] {10} INTERNALDATE \"02-Dec-2026 12:00:00 +0000\" "
                                         "UID 42)", &f), 0);
    assert_int_equal(f.uid, 42);
    assert_int_equal(f.size, 10);
    assert_int_equal(f.body, 1);
    assert_int_equal(pl_imap_fetch_parse("* 2 FETCH (UID 8 BODY[HEADER] \"a\\\"b\")", &f), 0);
    assert_int_equal(f.body, 2);
    assert_int_equal(pl_imap_unquote(f.q, f.qlen, out), 3);
    assert_memory_equal(out, "a\"b", 3);
    assert_int_equal(pl_imap_fetch_parse("* 2 FETCH (UID 8 BODY[] NIL)", &f), 0);
    assert_int_equal(f.body, 3);
    assert_int_equal(pl_imap_fetch_parse("* 2 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] {4} UID 3)",
                                         &f), 0);
    assert_int_equal(f.uid, 3);
    assert_int_equal(f.body, 1);
    assert_int_equal(pl_imap_fetch_parse("* 3 FETCH (FLAGS ())", &f), 0);
    assert_int_equal(f.uid, 0);
    /* not FETCH at all */
    assert_int_equal(pl_imap_fetch_parse("* 3 EXPUNGE", &f), 1);
    assert_int_equal(pl_imap_fetch_parse("pl1 OK FETCH (UID 1)", &f), 1);
    /* malformed */
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (UID 0)", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (UID 4294967296)", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (UID 1", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (UID 1) x", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH UID 1", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (RFC822.SIZE x)", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (BODY[ {3})", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (BODY[] {3)", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (FLAGS (\\Seen)", &f), -1);
    assert_int_equal(pl_imap_fetch_parse("* 1 FETCH (X \"unterminated)", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_any_chunks),
        cmocka_unit_test(test_frame_bounds),
        cmocka_unit_test(test_frame_lf_and_empty_literal),
        cmocka_unit_test(test_tagged),
        cmocka_unit_test(test_untagged),
        cmocka_unit_test(test_fetch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
