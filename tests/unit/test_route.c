/* test_route.c -- unit tests of capability 3's number handling (lib/phone.c),
 * the keyword matcher (lib/kwscan.c) and the routing tables
 * (state/siproute.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kwscan.h"
#include "phone.h"
#include "siproute.h"
#include "testdir.h"

static void norm_is(const char *in, const char *cc, const char *want)
{
    char out[PL_PHONE_MAX];
    const char *why = NULL;
    int rc = pl_phone_norm(in, cc, out, sizeof(out), &why);
    if (rc != 0)
        fail_msg("'%s' refused: %s", in, why);
    assert_string_equal(out, want);
}

static void norm_bad(const char *in)
{
    char out[PL_PHONE_MAX];
    const char *why = NULL;
    assert_int_equal(pl_phone_norm(in, "81", out, sizeof(out), &why), -1);
    assert_non_null(why);
}

static void test_norm(void **state)
{
    (void)state;
    norm_is("050-1234-5678", "81", "05012345678");
    norm_is("05012345678", "81", "05012345678");
    norm_is("+81 50 1234 5678", "81", "05012345678");
    norm_is("+81-50-1234-5678", "81", "05012345678");
    norm_is("(050) 1234-5678", "81", "05012345678");
    norm_is("050.1234.5678", NULL, "05012345678");
    norm_is("+81 50 1234 5678", "", "+815012345678");
    norm_is("+1 555 0100", "81", "+15550100");
    norm_is("  050-1234-5678 ", "81", "05012345678");
    norm_bad("");
    norm_bad("050-1234-567x");
    norm_bad("05");
    norm_bad("+");
    norm_bad("+811");
    norm_bad("1234567890123456");
    norm_bad("050--1234---5678");
    norm_bad("050-1234-5678-");
    norm_bad("tel:050-1234-5678");
    norm_bad("050/1234");
}

static void test_prefix(void **state)
{
    struct pl_phone_prefix p;
    const char *why;
    (void)state;
    assert_int_equal(pl_phone_prefix_parse("050-", 0, "81", &p, &why), 0);
    assert_string_equal(p.digits, "050");
    assert_int_equal(p.after, 8);
    assert_int_equal(pl_phone_prefix_parse("+81 80", 8, "81", &p, &why), 0);
    assert_string_equal(p.digits, "080");
    assert_int_equal(pl_phone_prefix_parse("05", 9, "81", &p, &why), 0);
    assert_string_equal(p.digits, "05");
    assert_int_equal(pl_phone_prefix_parse("05x", 8, "81", &p, &why), -1);
    assert_int_equal(pl_phone_prefix_parse("", 8, "81", &p, &why), -1);
    assert_int_equal(pl_phone_prefix_parse("050", 20, "81", &p, &why), -1);
}

static void test_in_address(void **state)
{
    struct pl_phone_prefix p[2];
    const char *why;
    char out[PL_PHONE_MAX];
    (void)state;
    assert_int_equal(pl_phone_prefix_parse("050-", 8, "81", &p[0], &why), 0);
    assert_int_equal(pl_phone_prefix_parse("080-", 8, "81", &p[1], &why), 0);
    assert_int_equal(pl_phone_in_address("050-0000-9999@gw.example", p, 2, "81", out, sizeof(out)), 1);
    assert_string_equal(out, "05000009999");
    assert_int_equal(pl_phone_in_address("sales.080-1111-2222@x.example", p, 2, "81", out, sizeof(out)), 1);
    assert_string_equal(out, "08011112222");
    assert_int_equal(pl_phone_in_address("bob@05012345678.gw.example", p, 2, "81", out, sizeof(out)), 1);
    assert_string_equal(out, "05012345678");
    assert_int_equal(pl_phone_in_address("bob@050-1234-5678.gw.example", p, 2, "81", out, sizeof(out)), 1);
    /* not adjacent to '@', wrong length, glued to letters, other prefix */
    assert_int_equal(pl_phone_in_address("05012345678x@gw.example", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("050123456789@gw.example", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("x05012345678@gw.example", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("03-1234-5678@gw.example", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("bob@example.com", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("bob@05012345678x.example", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("noat", p, 2, "81", out, sizeof(out)), 0);
    assert_int_equal(pl_phone_in_address("050-0000-9999@gw.example", p, 0, "81", out, sizeof(out)), 0);
}

static void test_in_text(void **state)
{
    struct pl_phone_prefix p;
    const char *why;
    char out[PL_PHONE_MAX];
    size_t at = 0;
    const char *t1 = "Call our Kyoto office at 03-1234-5678 or 050-2222-3333 today.";
    const char *t2 = "ID 12-050-1234-5678, phone +81 50 9999 0000.";
    const char *t3 = "ref x05012345678 and 0501234567899 and 050-1234-56789";
    (void)state;
    assert_int_equal(pl_phone_prefix_parse("050", 8, "81", &p, &why), 0);
    assert_int_equal(pl_phone_in_text(t1, strlen(t1), &p, 1, "81", out, sizeof(out), &at), 1);
    assert_string_equal(out, "05022223333");
    assert_int_equal(at, strstr(t1, "050") - t1);
    assert_int_equal(pl_phone_in_text(t2, strlen(t2), &p, 1, "81", out, sizeof(out), &at), 1);
    assert_string_equal(out, "05099990000");
    assert_int_equal(pl_phone_in_text(t3, strlen(t3), &p, 1, "81", out, sizeof(out), &at), 0);
    /* the end of the buffer ends a number; a cut one is no number */
    assert_int_equal(pl_phone_in_text("tel 050-1234-5678", 17, &p, 1, "81", out, sizeof(out), &at), 1);
    assert_int_equal(pl_phone_in_text("tel 050-1234-5678", 16, &p, 1, "81", out, sizeof(out), &at), 0);
}

static void test_kwscan(void **state)
{
    const char *words[] = {"KYOTOSITEN", "OSAKASITEN", "", "SITEN", "\xe4\xba\xac\xe9\x83\xbd"};
    struct pl_kw *kw = pl_kw_build(words, 5);
    size_t at = 99;
    const char *t1 = "Dear team, re: kyotositen order";
    const char *t2 = "the osakaSiten and KYOTOSITEN";
    const char *t3 = "only SITEN here";
    const char *t4 = "\xe5\x8f\xb8\xe4\xba\xac\xe9\x83\xbd\xe6\x94\xaf\xe5\xba\x97";
    (void)state;
    assert_non_null(kw);
    /* "siten" ends at the same byte as "kyotositen": the longer wins */
    assert_int_equal(pl_kw_first(kw, t1, strlen(t1), &at), 0);
    assert_int_equal(at, strstr(t1, "kyoto") - t1);
    assert_int_equal(pl_kw_first(kw, t2, strlen(t2), &at), 1);
    assert_int_equal(pl_kw_first(kw, t3, strlen(t3), &at), 3);
    assert_int_equal(pl_kw_first(kw, t4, strlen(t4), &at), 4);
    assert_int_equal(at, 3);
    assert_int_equal(pl_kw_first(kw, "nothing", 7, &at), -1);
    assert_int_equal(pl_kw_first(kw, "KYOTOSITE", 9, &at), -1);
    pl_kw_free(kw);
    /* a classic failure-link case */
    const char *w2[] = {"he", "she", "his", "hers"};
    kw = pl_kw_build(w2, 4);
    assert_int_equal(pl_kw_first(kw, "ushers", 6, &at), 1);
    assert_int_equal(at, 1);
    pl_kw_free(kw);
    char longw[300];
    memset(longw, 'a', 299);
    longw[299] = '\0';
    const char *w3[] = {longw};
    assert_null(pl_kw_build(w3, 1));
}

struct rows { int n; char s[8][128]; };

static int collect(void *ctx, const struct pl_rrow *r)
{
    struct rows *w = ctx;
    if (w->n < 8)
        snprintf(w->s[w->n++], 128, "%s %s %u", r->key, r->number, r->after);
    return 0;
}

struct op { const char *what; };

static int tables_fn(pl_txn *t, void *ctx)
{
    struct pl_phone_prefix p;
    const char *why;
    (void)ctx;
    assert_int_equal(pl_phone_prefix_parse("050-", 8, "81", &p, &why), 0);
    assert_int_equal(pl_rprefix_add(t, &p, 100), PL_OK);
    assert_int_equal(pl_rmap_add(t, "abc@efg.com", "05012345678", 100), PL_OK);
    assert_int_equal(pl_rmap_add(t, "muratec.co.jp", "05022223333", 100), PL_OK);
    assert_int_equal(pl_rmap_add(t, "*.com", "05099990000", 100), PL_OK);
    assert_int_equal(pl_rmap_add(t, "*.b.com", "05088880000", 100), PL_OK);
    assert_int_equal(pl_rkeyword_add(t, "KYOTOSITEN", "05012345678", 100), PL_OK);
    return PL_OK;
}

static void test_tables(void **state)
{
    char dir[64], err[256], num[PL_PHONE_MAX], row[300], key[300];
    struct pl_store_opts o = {0};
    pl_store *s;
    pl_txn *t;
    const char *kind;
    uint64_t gen;
    struct rows w = {0};
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    o.home = dir;
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_store_run(s, 0, tables_fn, NULL), PL_OK);
    assert_int_equal(pl_store_begin(s, &t, 0), PL_OK);
    assert_int_equal(pl_route_gen(t, &gen), PL_OK);
    assert_int_equal(gen, 6);
    assert_int_equal(pl_rmap_lookup(t, "ABC@efg.com", num, sizeof(num), row, sizeof(row), &kind), PL_OK);
    assert_string_equal(num, "05012345678");
    assert_string_equal(kind, "address");
    assert_int_equal(pl_rmap_lookup(t, "x@efg.com", num, sizeof(num), row, sizeof(row), &kind), PL_OK);
    assert_string_equal(kind, "wildcard");
    assert_string_equal(row, "*.com");
    assert_int_equal(pl_rmap_lookup(t, "x@a.b.com", num, sizeof(num), row, sizeof(row), &kind), PL_OK);
    assert_string_equal(row, "*.b.com");
    assert_int_equal(pl_rmap_lookup(t, "y@Muratec.co.jp", num, sizeof(num), row, sizeof(row), &kind), PL_OK);
    assert_string_equal(kind, "domain");
    assert_string_equal(num, "05022223333");
    assert_int_equal(pl_rmap_lookup(t, "y@sub.muratec.co.jp", num, sizeof(num), row, sizeof(row), &kind),
                     PL_NOTFOUND);
    assert_int_equal(pl_rtable_list(t, PL_T_RKEYWORD, collect, &w), PL_OK);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.s[0], "KYOTOSITEN 05012345678 0");
    w.n = 0;
    assert_int_equal(pl_rtable_list(t, PL_T_RPREFIX, collect, &w), PL_OK);
    assert_string_equal(w.s[0], "050  8");
    assert_int_equal(pl_rkeyword_del(t, "kyotositen"), PL_OK);
    assert_int_equal(pl_rkeyword_del(t, "kyotositen"), PL_NOTFOUND);
    assert_int_equal(pl_rmap_del(t, "nothere.example"), PL_NOTFOUND);
    assert_int_equal(pl_txn_commit(t), PL_OK);

    /* keys as postlinkctl checks them */
    assert_null(pl_rmap_key_check("ABC@Efg.com", key, sizeof(key)));
    assert_string_equal(key, "abc@efg.com");
    assert_null(pl_rmap_key_check("*.com", key, sizeof(key)));
    assert_non_null(pl_rmap_key_check("*com", key, sizeof(key)));
    assert_non_null(pl_rmap_key_check("a b.com", key, sizeof(key)));
    assert_non_null(pl_rmap_key_check("x@", key, sizeof(key)));
    assert_non_null(pl_rmap_key_check(".com", key, sizeof(key)));
    assert_non_null(pl_rkeyword_check(""));
    assert_non_null(pl_rkeyword_check("a\tb"));
    assert_null(pl_rkeyword_check("KYOTO SITEN"));

    /* a decision and a result */
    char tok[PL_RTOKEN_LEN + 1], outc[64], det[256];
    struct pl_rdecision d[2] = {{"bob@efg.com", "05012345678", "map:address", "abc@efg.com"},
                                {"amy@x.org", "05022223333", "keyword:body", "KYOTOSITEN"}};
    assert_int_equal(pl_rtoken_new(tok, sizeof(tok)), PL_OK);
    assert_true(pl_rtoken_ok(tok));
    assert_false(pl_rtoken_ok("abc"));
    assert_int_equal(pl_store_begin(s, &t, 0), PL_OK);
    assert_int_equal(pl_rdecide_put(t, tok, "4XyZ1", d, 2, 200), PL_OK);
    char *rec;
    size_t pos = 0;
    const char *qid = NULL;
    struct pl_rdecision g;
    assert_int_equal(pl_rdecide_get(t, tok, &rec), PL_OK);
    assert_int_equal(pl_rdecide_next(rec, &pos, &qid, &g), 1);
    assert_string_equal(qid, "4XyZ1");
    assert_string_equal(g.addr, "bob@efg.com");
    assert_string_equal(g.detail, "abc@efg.com");
    assert_int_equal(pl_rdecide_next(rec, &pos, &qid, &g), 1);
    assert_string_equal(g.rule, "keyword:body");
    assert_int_equal(pl_rdecide_next(rec, &pos, &qid, &g), 0);
    free(rec);
    assert_int_equal(pl_rresult_put(t, tok, "bob@efg.com", "fallback", "queued as 4ABC", 300), PL_OK);
    assert_int_equal(pl_rresult_get(t, tok, "bob@efg.com", outc, sizeof(outc), det, sizeof(det)), PL_OK);
    assert_string_equal(outc, "fallback");
    assert_string_equal(det, "queued as 4ABC");
    assert_int_equal(pl_rresult_get(t, tok, "amy@x.org", outc, sizeof(outc), det, sizeof(det)), PL_NOTFOUND);
    unsigned purged = 0;
    assert_int_equal(pl_route_purge_decisions(t, 250, &purged), PL_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(pl_rdecide_get(t, tok, &rec), PL_NOTFOUND);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    pl_store_close(s);
    testdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_in_address),
        cmocka_unit_test(test_in_text),
        cmocka_unit_test(test_kwscan),
        cmocka_unit_test(test_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
