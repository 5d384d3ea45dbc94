/* test_presence_proto.c -- unit tests of the presence lookup request line
 * (state/presence_proto.c), the parser postlink-xmppd's lookup socket runs
 * on every request a local client sends. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "presence_proto.h"

/* Parse a request given as bytes (n may include NULs). */
static int req(const char *bytes, size_t n, char *jid, size_t jidlen)
{
    memset(jid, 'X', jidlen);
    return pl_presence_parse_request(bytes, n, jid, jidlen);
}
#define REQ(lit, jid) req(lit, sizeof(lit) - 1, jid, sizeof(jid))

static void test_request_ok(void **state)
{
    char jid[64];
    (void)state;
    assert_int_equal(REQ("PRESENCE alice@example.org\n", jid), 0);
    assert_string_equal(jid, "alice@example.org");
    assert_int_equal(REQ("PRESENCE alice@example.org\r\n", jid), 0);
    assert_string_equal(jid, "alice@example.org");
    /* no line end yet (EOF after the request): the bytes are the line */
    assert_int_equal(REQ("PRESENCE bob@example.org", jid), 0);
    assert_string_equal(jid, "bob@example.org");
    /* only the first line counts */
    assert_int_equal(REQ("PRESENCE a@b\nPRESENCE c@d\n", jid), 0);
    assert_string_equal(jid, "a@b");
    /* the JID is not checked here: the caller runs pl_jid_check */
    assert_int_equal(REQ("PRESENCE x y\n", jid), 0);
    assert_string_equal(jid, "x y");
}

static void test_request_bad(void **state)
{
    char jid[64];
    (void)state;
    assert_int_equal(REQ("", jid), -1);
    assert_int_equal(REQ("\n", jid), -1);
    assert_int_equal(REQ("PRESENCE\n", jid), -1);
    assert_int_equal(REQ("PRESENCE \n", jid), -1);
    assert_int_equal(REQ("PRESENCE \r\n", jid), -1);
    assert_int_equal(REQ("presence a@b\n", jid), -1);
    assert_int_equal(REQ("PRESENCEa@b\n", jid), -1);
    assert_int_equal(REQ("PRES", jid), -1);
    assert_int_equal(REQ("HELLO a@b\n", jid), -1);
}

/* A NUL or a lone CR inside the line used to cut the JID silently
 * ("PRESENCE a@b\0junk" was asked as a@b): now the request is refused. */
static void test_request_nul_cr(void **state)
{
    char jid[64];
    (void)state;
    assert_int_equal(REQ("PRESENCE a@b\0junk\n", jid), -1);
    assert_int_equal(REQ("PRESENCE a@b\rjunk\n", jid), -1);
    assert_int_equal(REQ("PRESENCE a@b\r\r\n", jid), -1);
    assert_int_equal(REQ("\0PRESENCE a@b\n", jid), -1);
    /* a NUL after the line end does not matter */
    assert_int_equal(REQ("PRESENCE a@b\n\0", jid), 0);
    assert_string_equal(jid, "a@b");
}

static void test_request_length(void **state)
{
    char line[600], jid[16], big[512];
    size_t n;
    (void)state;
    /* 15 bytes + NUL fit in 16, 16 do not */
    n = (size_t)snprintf(line, sizeof(line), "PRESENCE %s\n", "abcdefg@ijklmno");
    assert_int_equal(req(line, n, jid, sizeof(jid)), 0);
    assert_string_equal(jid, "abcdefg@ijklmno");
    n = (size_t)snprintf(line, sizeof(line), "PRESENCE %s\n", "abcdefg@ijklmnop");
    assert_int_equal(req(line, n, jid, sizeof(jid)), -1);
    /* the bytes past len are never read: len cuts the JID */
    n = (size_t)snprintf(line, sizeof(line), "PRESENCE a@bcdef\n");
    assert_int_equal(req(line, 12, jid, sizeof(jid)), 0);
    assert_string_equal(jid, "a@b");
    /* a full 511-byte read without a line end */
    memset(line, 'a', 511);
    memcpy(line, "PRESENCE ", 9);
    assert_int_equal(req(line, 511, big, sizeof(big)), 0);
    assert_int_equal(strlen(big), 502);
    assert_int_equal(req(line, 511, jid, sizeof(jid)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ok),
        cmocka_unit_test(test_request_bad),
        cmocka_unit_test(test_request_nul_cr),
        cmocka_unit_test(test_request_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
