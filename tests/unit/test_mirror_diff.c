/* test_mirror_diff.c -- unit tests of the POP3 mirror's id list comparison
 * and UIDL line parser (state/mirror_diff.c), the seed's worked example
 * first. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mirror_diff.h"

struct seen { char text[4096]; };

static int record(void *ctx, const char *id, enum pl_mact a)
{
    struct seen *s = ctx;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "%s%s=%s", n ? " " : "", id, pl_mact_name(a));
    return 0;
}

static void test_worked_example(void **state)
{
    struct pl_mid saved[] = {{"id2", PL_MID_SEEN, 0}, {"id3", PL_MID_HELD, 0},
                             {"id4", PL_MID_HELD, 0}, {"id5", PL_MID_HELD, 0}};
    const char *listed[] = {"id3", "id5", "id6", "id7"};
    struct pl_mdiff_opts o = {.complete = 1};
    struct pl_mdiff_sum sum;
    struct seen s = {""};
    (void)state;
    assert_int_equal(pl_mirror_diff(saved, 4, listed, 4, &o, record, &s, &sum), 0);
    assert_string_equal(s.text, "id2=forget id3=keep id4=withdraw id5=keep id6=fetch id7=fetch");
    assert_int_equal(sum.fetch, 2);
    assert_int_equal(sum.withdraw, 1);
    assert_int_equal(sum.forget, 1);
    assert_int_equal(sum.keep, 2);
    assert_false(sum.held);
}

static void test_incomplete_and_missing(void **state)
{
    struct pl_mid saved[] = {{"a", PL_MID_HELD, 0}, {"b", PL_MID_HELD, 1}};
    const char *listed[] = {"c"};
    struct pl_mdiff_opts o = {.complete = 0, .missing_syncs = 2};
    struct pl_mdiff_sum sum;
    struct seen s = {""};
    (void)state;
    /* an incomplete listing takes nothing away, but new ids still come */
    assert_int_equal(pl_mirror_diff(saved, 2, listed, 1, &o, record, &s, &sum), 0);
    assert_string_equal(s.text, "a=keep b=keep c=fetch");
    /* complete: a is missing for the first time, b for the second */
    o.complete = 1;
    s.text[0] = '\0';
    assert_int_equal(pl_mirror_diff(saved, 2, listed, 1, &o, record, &s, &sum), 0);
    assert_string_equal(s.text, "a=missing b=withdraw c=fetch");
}

static void test_mass_vanish_guard(void **state)
{
    struct pl_mid saved[20];
    char ids[20][8];
    const char *listed[5];
    struct pl_mdiff_opts o = {.complete = 1};
    struct pl_mdiff_sum sum;
    struct seen s = {""};
    (void)state;
    for (int i = 0; i < 20; i++) {
        snprintf(ids[i], sizeof(ids[i]), "m%02d", i);
        saved[i] = (struct pl_mid){ids[i], PL_MID_HELD, 0};
    }
    for (int i = 0; i < 5; i++)
        listed[i] = ids[i];
    /* 15 of 20 would go at once: held back, nothing withdrawn */
    assert_int_equal(pl_mirror_diff(saved, 20, listed, 5, &o, record, &s, &sum), 0);
    assert_true(sum.held);
    assert_int_equal(sum.held_back, 15);
    assert_int_equal(sum.withdraw, 0);
    /* with a higher share allowed they go */
    o.hold_share = 0.9;
    s.text[0] = '\0';
    assert_int_equal(pl_mirror_diff(saved, 20, listed, 5, &o, record, &s, &sum), 0);
    assert_false(sum.held);
    assert_int_equal(sum.withdraw, 15);
    /* an emptied mailbox is held too */
    o.hold_share = 0;
    assert_int_equal(pl_mirror_diff(saved, 20, NULL, 0, &o, record, &s, &sum), 0);
    assert_true(sum.held);
    assert_int_equal(sum.held_back, 20);
}

static void test_tombstones_and_order(void **state)
{
    struct pl_mid saved[] = {{"x", PL_MID_TOMBSTONE, 0}, {"y", PL_MID_HELD, 0}, {"Y", PL_MID_HELD, 0}};
    const char *listed[] = {"Y", "x", "y"};    /* reordered; ids compare exactly */
    struct pl_mdiff_opts o = {.complete = 1};
    struct pl_mdiff_sum sum;
    struct seen s = {""};
    (void)state;
    assert_int_equal(pl_mirror_diff(saved, 3, listed, 3, &o, record, &s, &sum), 0);
    assert_string_equal(s.text, "x=revived y=keep Y=keep");
    assert_int_equal(sum.fetch, 0);
}

static void test_bad_listings(void **state)
{
    struct pl_mdiff_opts o = {.complete = 1};
    struct pl_mdiff_sum sum;
    struct seen s = {""};
    const char *dup[] = {"a", "b", "a"};
    const char *bad[] = {"a b"};
    char longid[80];
    const char *lng[] = {longid};
    (void)state;
    memset(longid, 'z', 71);
    longid[71] = '\0';
    assert_int_equal(pl_mirror_diff(NULL, 0, dup, 3, &o, record, &s, &sum), -1);
    assert_int_equal(pl_mirror_diff(NULL, 0, bad, 1, &o, record, &s, &sum), -1);
    assert_int_equal(pl_mirror_diff(NULL, 0, lng, 1, &o, record, &s, &sum), -1);
    assert_string_equal(s.text, "");
}

static void test_uidl_lines(void **state)
{
    char id[PL_UIDL_MAX + 1];
    unsigned long n;
    const char *why;
    (void)state;
    assert_int_equal(pl_uidl_parse_line("1 whqtswO00WBw418f9t5JxYwZ", 26, &n, id, &why), 0);
    assert_int_equal(n, 1);
    assert_string_equal(id, "whqtswO00WBw418f9t5JxYwZ");
    assert_int_equal(pl_uidl_parse_line("17 ~!x", 6, &n, id, &why), 0);
    assert_int_equal(pl_uidl_parse_line("0 a", 3, &n, id, &why), -1);
    assert_int_equal(pl_uidl_parse_line("x a", 3, &n, id, &why), -1);
    assert_int_equal(pl_uidl_parse_line("1  a", 4, &n, id, &why), -1);
    assert_int_equal(pl_uidl_parse_line("1 a b", 5, &n, id, &why), -1);
    assert_int_equal(pl_uidl_parse_line("1 ", 2, &n, id, &why), -1);
    assert_int_equal(pl_uidl_parse_line("1 \x80", 3, &n, id, &why), -1);
    char line[100];
    memset(line, 'a', sizeof(line));
    line[0] = '1';
    line[1] = ' ';
    assert_int_equal(pl_uidl_parse_line(line, 72, &n, id, &why), 0);    /* 70 characters */
    assert_int_equal(pl_uidl_parse_line(line, 73, &n, id, &why), -1);   /* 71 */
    assert_non_null(why);
}

static int count(void *ctx, const char *id, enum pl_mact a)
{
    (void)id;
    if (a == PL_MACT_FETCH)
        (*(size_t *)ctx)++;
    return 0;
}

static void test_ten_thousand(void **state)
{
    enum { N = 10000 };
    struct pl_mid *saved = calloc(N, sizeof(*saved));
    const char **listed = calloc(N + 1, sizeof(*listed));
    char (*ids)[16] = calloc(N + 1, sizeof(*ids));
    struct pl_mdiff_opts o = {.complete = 1};
    struct pl_mdiff_sum sum;
    size_t fetched = 0;
    (void)state;
    for (int i = 0; i <= N; i++)
        snprintf(ids[i], sizeof(ids[i]), "uid%06d", i);
    for (int i = 0; i < N; i++)
        saved[i] = (struct pl_mid){ids[i], PL_MID_HELD, 0};
    for (int i = 0; i <= N; i++)
        listed[i] = ids[N - i];                  /* reversed, one new */
    assert_int_equal(pl_mirror_diff(saved, N, listed, N + 1, &o, count, &fetched, &sum), 0);
    assert_int_equal(fetched, 1);
    assert_int_equal(sum.keep, N);
    free(saved);
    free(listed);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_incomplete_and_missing),
        cmocka_unit_test(test_mass_vanish_guard),
        cmocka_unit_test(test_tombstones_and_order),
        cmocka_unit_test(test_bad_listings),
        cmocka_unit_test(test_uidl_lines),
        cmocka_unit_test(test_ten_thousand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
