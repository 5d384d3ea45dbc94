/* test_mirror_probe.c -- unit tests of state/mirror_probe.c: the listing
 * inferred from "UIDL n" probes is exactly the real one for a primary
 * whose ids grow (random deletions anywhere, arrivals at the end, over
 * many rounds), costs few probes, and any primary that breaks the model
 * (an id inserted in the middle, a reused small id, a refused probe) is
 * reported as such so that the caller lists in full: never a wrong list. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mirror_probe.h"

struct prim {
    char (*ids)[PL_UIDL_MAX + 1];
    size_t n;
    unsigned long calls;
    unsigned long refuse_at;        /* 0: never */
};

static int probe(void *ctx, unsigned long msgno, char *id)
{
    struct prim *p = ctx;
    p->calls++;
    if (msgno == 0 || msgno > p->n || msgno == p->refuse_at)
        return 1;
    snprintf(id, PL_UIDL_MAX + 1, "%s", p->ids[msgno - 1]);
    return 0;
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

/* The known list (sorted), from the primary as it is now. */
static const char **known_of(const struct prim *p)
{
    const char **k = malloc((p->n ? p->n : 1) * sizeof(*k));
    for (size_t i = 0; i < p->n; i++)
    {
        char *c = malloc(strlen(p->ids[i]) + 1);
        memcpy(c, p->ids[i], strlen(p->ids[i]) + 1);
        k[i] = c;
    }
    return k;
}

static void free_known(const char **k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)k[i]);
    free(k);
}

static void del_at(struct prim *p, size_t i)
{
    memmove(&p->ids[i], &p->ids[i + 1], (p->n - i - 1) * sizeof(*p->ids));
    p->n--;
}

static void check_same(const struct prim *p, const struct pl_probe_out *o)
{
    for (size_t i = 0; i < p->n; i++)
        assert_string_equal(o->ids[i], p->ids[i]);
}

/* Dovecot's "%08Xu%08Xv": UID then UIDVALIDITY, fixed width: they grow. */
static void test_random_rounds(void **state)
{
    struct prim p = {0};
    unsigned long uid = 0, total_probes = 0, total_listing = 0;
    (void)state;
    p.ids = malloc(6000 * sizeof(*p.ids));
    for (int i = 0; i < 3000; i++)
        snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "%08lX%08X", ++uid, 0x5f00aa01u);
    for (int round = 0; round < 200; round++) {
        const char **k = known_of(&p);
        size_t m = p.n;
        struct pl_probe_out o;
        unsigned dels = rnd() % 12, news = rnd() % 6;
        if (round % 50 == 7)
            dels = (unsigned)(p.n / 3);     /* a big batch read at once */
        for (unsigned d = 0; d < dels && p.n; d++)
            del_at(&p, rnd() % p.n);
        for (unsigned a = 0; a < news && p.n < 6000; a++)
            snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "%08lX%08X", ++uid, 0x5f00aa01u);
        p.calls = 0;
        int rc = pl_mirror_probe(k, m, (unsigned long)p.n, probe, &p, &o);
        if (rc == 0) {
            check_same(&p, &o);
            assert_int_equal(o.probes, p.calls);
            total_probes += o.probes;
            free(o.ids);
            free(o.news);
        } else {
            assert_int_equal(rc, 1);        /* only the budget may say no here */
            assert_true(dels > m / 8);
        }
        total_listing += p.n;
        free_known(k, m);
    }
    print_message("probes over 200 rounds: %lu (a full listing each time: %lu lines)\n",
                  total_probes, total_listing);
    assert_true(total_probes * 10 < total_listing);
    free(p.ids);
}

static void test_unchanged_and_one_new(void **state)
{
    struct prim p = {0};
    struct pl_probe_out o;
    const char **k;
    (void)state;
    p.ids = malloc(10001 * sizeof(*p.ids));
    for (int i = 0; i < 10000; i++)
        snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "%08X%08X", i + 1, 7u);
    k = known_of(&p);
    assert_int_equal(pl_mirror_probe(k, 10000, 10000, probe, &p, &o), 0);
    assert_int_equal(o.probes, 1);          /* the last one is the last known: done */
    assert_int_equal(o.nnew, 0);
    free(o.ids);
    free(o.news);
    snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "%08X%08X", 10001, 7u);
    p.calls = 0;
    assert_int_equal(pl_mirror_probe(k, 10000, 10001, probe, &p, &o), 0);
    check_same(&p, &o);
    assert_int_equal(o.nnew, 1);
    assert_string_equal(o.news[0], p.ids[10000]);
    assert_true(o.probes <= 20);
    free(o.ids);
    free(o.news);
    free_known(k, 10000);
    free(p.ids);
}

static void test_breaks_the_model(void **state)
{
    struct prim p = {0};
    struct pl_probe_out o;
    const char **k;
    (void)state;
    p.ids = malloc(200 * sizeof(*p.ids));
    for (int i = 0; i < 100; i++)
        snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "u%04d", 2 * i + 10);
    k = known_of(&p);
    /* a new one with an id between old ones (more ids below the largest
     * known one than were known).  (One read and one inserted in the
     * middle at once keeps every count: no bisection can see that, which
     * is why postlink-mirrord probes only a primary whose ids are UIDs --
     * IMAP's UIDs only grow -- and lists in full once a day anyway.) */
    memmove(&p.ids[61], &p.ids[60], (p.n - 60) * sizeof(*p.ids));
    snprintf(p.ids[60], PL_UIDL_MAX + 1, "u%04d", 2 * 61 + 11);
    p.n++;
    assert_int_equal(pl_mirror_probe(k, 100, (unsigned long)p.n, probe, &p, &o), 1);
    /* a new id smaller than the known ones, at the end */
    free(p.ids);
    p.ids = malloc(200 * sizeof(*p.ids));
    p.n = 0;
    for (int i = 0; i < 100; i++)
        snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "u%04d", 2 * i + 10);
    snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "a0001");
    assert_int_equal(pl_mirror_probe(k, 100, (unsigned long)p.n, probe, &p, &o), 1);
    /* a refused probe */
    p.n--;
    del_at(&p, 50);
    p.refuse_at = 50;
    assert_int_equal(pl_mirror_probe(k, 100, (unsigned long)p.n, probe, &p, &o), 1);
    /* the whole scheme changed */
    p.refuse_at = 0;
    for (size_t i = 0; i < p.n; i++)
        snprintf(p.ids[i], PL_UIDL_MAX + 1, "z%04zu", i);
    assert_int_equal(pl_mirror_probe(k, 100, (unsigned long)p.n, probe, &p, &o), 1);
    /* ids that do not grow are never bisected */
    {
        const char *unsorted[] = {"b", "a", "c"};
        assert_int_equal(pl_mirror_probe(unsorted, 3, 3, probe, &p, &o), 1);
        assert_int_equal(pl_ids_grow(unsorted, 3), 0);
        assert_int_equal(pl_ids_grow(unsorted + 1, 2), 1);
    }
    free_known(k, 100);
    free(p.ids);
}

static void test_emptied_and_nothing_known(void **state)
{
    struct prim p = {0};
    struct pl_probe_out o;
    const char *k[] = {"001", "002", "003"};
    (void)state;
    p.ids = malloc(4 * sizeof(*p.ids));
    assert_int_equal(pl_mirror_probe(k, 3, 0, probe, &p, &o), 0);   /* all read */
    assert_int_equal(o.probes, 0);
    free(o.ids);
    free(o.news);
    assert_int_equal(pl_mirror_probe(k, 0, 0, probe, &p, &o), 1);   /* first sync: list */
    snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "004");
    snprintf(p.ids[p.n++], PL_UIDL_MAX + 1, "005");
    assert_int_equal(pl_mirror_probe(k, 3, 2, probe, &p, &o), 0);   /* all read, 2 new */
    check_same(&p, &o);
    assert_int_equal(o.nnew, 2);
    free(o.ids);
    free(o.news);
    free(p.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_rounds),
        cmocka_unit_test(test_unchanged_and_one_new),
        cmocka_unit_test(test_breaks_the_model),
        cmocka_unit_test(test_emptied_and_nothing_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
