/* test_push_req.c -- unit tests of the device API's request parser
 * (lib/push_req.c): each request a device may make, and the refusals a
 * device's author needs to tell apart. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "push_req.h"

#define TOK "0123456789abcdef.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"

static int parse(const char *m, const char *path, const char *authz, struct pl_preq *r,
                 const char **why, size_t n, ...)
{
    struct pl_preq_arg a[PL_PREQ_MAX_ARGS + 4];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        a[i].name = va_arg(ap, const char *);
        a[i].value = va_arg(ap, const char *);
    }
    va_end(ap);
    return pl_preq_parse(m, path, a, n, authz, r, why);
}

static void fetch_forms(void **state)
{
    struct pl_preq r;
    const char *why;
    (void)state;
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 1, "get", "first"), 0);
    assert_int_equal(r.kind, PL_PREQ_FETCH);
    assert_true(r.has_get && r.get[0] == '\0' && !r.has_ack);
    assert_string_equal(r.token, TOK);
    assert_true(r.room == -1 && r.slots == -1);
    assert_int_equal(parse("GET", "/v1/fetch", "bearer  " TOK " ", &r, &why, 3, "get", ID2, "ack",
                           ID1, "disp", "move"), 0);
    assert_string_equal(r.get, ID2);
    assert_string_equal(r.ack, ID1);
    assert_true(r.move);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 3, "ack", ID1, "room",
                           "1048576", "slots", "0"), 0);
    assert_true(!r.has_get && r.has_ack && !r.move && r.room == 1048576 && r.slots == 0);
}

static void fetch_refusals(void **state)
{
    struct pl_preq r;
    const char *why;
    (void)state;
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 0), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 1, "get", "FIRST"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 1, "get",
                           "0123456789ABCDEF0123456789abcdef"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 1, "ack", "first"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 2, "get", "first",
                           "get", "first"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 2, "get", "first",
                           "disp", "move"), 400);     /* disp without ack */
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 2, "ack", ID1,
                           "disp", "keep"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 2, "get", "first",
                           "room", "-1"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 2, "get", "first",
                           "room", "99999999999999999"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 2, "get", "first",
                           "gte", "1"), 400);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK, &r, &why, 1, "get", NULL), 400);
    assert_non_null(strstr(why, "first"));
}

static void tokens_first(void **state)
{
    struct pl_preq r;
    const char *why;
    (void)state;
    /* no token: 401 even when the arguments are bad (nothing told) */
    assert_int_equal(parse("GET", "/v1/fetch", NULL, &r, &why, 1, "get", "x"), 401);
    assert_int_equal(parse("GET", "/v1/fetch", "Basic " TOK, &r, &why, 1, "get", "first"), 401);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer " TOK "0", &r, &why, 1, "get", "first"),
                     401);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer 0123456789ABCDEF.0123456789abcdef0123456789"
                           "abcdef0123456789abcdef0123456789abcdef", &r, &why, 1, "get", "first"),
                     401);
    assert_int_equal(parse("GET", "/v1/fetch", "Bearer", &r, &why, 1, "get", "first"), 401);
}

static void other_requests(void **state)
{
    struct pl_preq r;
    const char *why;
    (void)state;
    assert_int_equal(parse("GET", "/v1/wait", "Bearer " TOK, &r, &why, 1, "timeout", "30"), 0);
    assert_true(r.kind == PL_PREQ_WAIT && r.timeout == 30);
    assert_int_equal(parse("GET", "/v1/wait", "Bearer " TOK, &r, &why, 0), 0);
    assert_int_equal(r.timeout, -1);
    assert_int_equal(parse("GET", "/v1/wait", "Bearer " TOK, &r, &why, 1, "timeout", "86401"), 400);
    assert_int_equal(parse("POST", "/v1/subscription", "Bearer " TOK, &r, &why, 0), 0);
    assert_int_equal(r.kind, PL_PREQ_SUBSCRIBE);
    assert_int_equal(parse("DELETE", "/v1/subscription", "Bearer " TOK, &r, &why, 0), 0);
    assert_int_equal(r.kind, PL_PREQ_UNSUBSCRIBE);
    assert_int_equal(parse("POST", "/v1/sync", "Bearer " TOK, &r, &why, 0), 0);
    assert_int_equal(r.kind, PL_PREQ_SYNC);
    assert_int_equal(parse("POST", "/v1/sync", "Bearer " TOK, &r, &why, 1, "now", "1"), 400);
    assert_int_equal(parse("POST", "/v1/fetch", "Bearer " TOK, &r, &why, 1, "get", "first"), 405);
    assert_int_equal(parse("GET", "/v1/sync", "Bearer " TOK, &r, &why, 0), 405);
    assert_int_equal(parse("GET", "/v1/fetch/", "Bearer " TOK, &r, &why, 0), 404);
    assert_int_equal(parse("GET", "/", NULL, &r, &why, 0), 404);
    assert_int_equal(pl_preq_parse(NULL, "/v1/fetch", NULL, 0, NULL, &r, &why), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fetch_forms),
        cmocka_unit_test(fetch_refusals),
        cmocka_unit_test(tokens_first),
        cmocka_unit_test(other_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
