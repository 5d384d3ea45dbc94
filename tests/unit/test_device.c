/* test_device.c -- unit tests of address checking and the device registry. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "address.h"
#include "device.h"
#include "log.h"
#include "testdir.h"

static void test_address_check(void **state)
{
    char longlocal[80], canon[64];
    (void)state;
    assert_null(pl_addr_check("alice@example.com"));
    assert_null(pl_addr_check("a.b+tag@sub.example.co.jp"));
    assert_null(pl_addr_check("050-1234@pager.example.net"));
    assert_non_null(pl_addr_check(""));
    assert_non_null(pl_addr_check("alice"));
    assert_non_null(pl_addr_check("@example.com"));
    assert_non_null(pl_addr_check("alice@"));
    assert_non_null(pl_addr_check("al ice@example.com"));
    assert_non_null(pl_addr_check("alice@exa mple.com"));
    assert_non_null(pl_addr_check(".alice@example.com"));
    assert_non_null(pl_addr_check("al..ice@example.com"));
    assert_non_null(pl_addr_check("alice@example..com"));
    assert_non_null(pl_addr_check("alice@example.com\n"));
    assert_non_null(pl_addr_check("caf\xc3\xa9@example.com"));
    memset(longlocal, 'a', 70);
    strcpy(longlocal + 70, "@x.org");
    assert_non_null(pl_addr_check(longlocal));
    pl_addr_canon("Alice@Example.COM", canon, sizeof(canon));
    assert_string_equal(canon, "alice@example.com");
    assert_string_equal(pl_addr_domain("a@b.example"), "b.example");
}

struct seen { int n; char lines[8][200]; };

static int collect(void *ctx, const struct pl_device *d)
{
    struct seen *s = ctx;
    snprintf(s->lines[s->n++], 200, "%s %s %s", d->user, d->address, d->name);
    return 0;
}

static void test_address_from_smtp(void **state)
{
    char out[PL_ADDR_SIZE], big[2 * PL_ADDR_SIZE], arg[2 * PL_ADDR_SIZE + 64];
    (void)state;
    assert_int_equal(pl_addr_from_smtp("<Alice@Example.COM>", out, sizeof(out)), 0);
    assert_string_equal(out, "alice@example.com");
    assert_int_equal(pl_addr_from_smtp("  <bob@example.com.>", out, sizeof(out)), 0);  /* Postfix drops the dot */
    assert_string_equal(out, "bob@example.com");
    assert_int_equal(pl_addr_from_smtp("carol@example.com..", out, sizeof(out)), 0);
    assert_string_equal(out, "carol@example.com");
    assert_int_equal(pl_addr_from_smtp("<>", out, sizeof(out)), 0);   /* the null sender */
    assert_string_equal(out, "");
    /* too long for the caller's buffer: refused, never cut */
    assert_int_equal(pl_addr_from_smtp("<averyveryveryverylongaddress@example.com>", out, 10), -1);
    assert_string_equal(out, "");
    /* finding 5: a 320-byte local part in the reserved domain used to come
     * back cut to its first bytes, with an empty domain */
    memset(big, 'a', 320);
    big[320] = '\0';
    snprintf(arg, sizeof(arg), "<%s@sync.postlink.invalid>", big);
    assert_int_equal(pl_addr_from_smtp(arg, out, sizeof(out)), -1);
    assert_string_equal(out, "");
    /* RFC 5321's limit exactly: 254 characters fit, 255 do not */
    memset(big, 'b', 64);
    big[64] = '@';
    memset(big + 65, 'd', PL_ADDR_MAX - 65);
    big[PL_ADDR_MAX] = '\0';
    snprintf(arg, sizeof(arg), "<%s>", big);
    assert_int_equal(pl_addr_from_smtp(arg, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), PL_ADDR_MAX);
    assert_string_equal(pl_addr_domain(out), big + 65);
    snprintf(arg, sizeof(arg), "<%sd>", big);
    assert_int_equal(pl_addr_from_smtp(arg, out, sizeof(out)), -1);
    /* even into a bigger buffer (the tag milter's) */
    assert_int_equal(pl_addr_from_smtp(arg, big, sizeof(big)), -1);
    /* pl_addr_canon does not cut either */
    assert_int_equal(pl_addr_canon("Alice@Example.COM", out, 8), -1);
    assert_string_equal(out, "");
}

static void test_registry(void **state)
{
    struct pl_store_opts o = {0};
    struct seen seen = {0};
    char dir[64], err[256];
    pl_store *s;
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    o.home = dir;
    assert_int_equal(pl_store_open(&s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_device_add(s, "alice@example.com", "alice-phone@example.com", "phone"), PL_OK);
    assert_int_equal(pl_device_add(s, "Alice@Example.com", "pager-77@gw.example.net", ""), PL_OK);
    assert_int_equal(pl_device_add(s, "alice@example.com", "ALICE-PHONE@example.com", "x"), PL_DEVICE_EXISTS);
    assert_int_equal(pl_device_add(s, "bob@example.com", "bob-desk@example.com", "desk"), PL_OK);
    /* alice.x must not show up under alice (prefix is "<user>\n") */
    assert_int_equal(pl_device_add(s, "alice@example.com.x", "other@example.com", ""), PL_OK);

    assert_int_equal(pl_device_list(s, "alice@example.com", collect, &seen), PL_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.lines[0], "alice@example.com alice-phone@example.com phone");
    assert_string_equal(seen.lines[1], "alice@example.com pager-77@gw.example.net ");

    assert_int_equal(pl_device_del(s, "alice@example.com", "alice-phone@example.com"), PL_OK);
    assert_int_equal(pl_device_del(s, "alice@example.com", "alice-phone@example.com"), PL_NOTFOUND);
    seen.n = 0;
    assert_int_equal(pl_device_list(s, NULL, collect, &seen), PL_OK);
    assert_int_equal(seen.n, 3);
    pl_store_close(s);
    testdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_check),
        cmocka_unit_test(test_address_from_smtp),
        cmocka_unit_test(test_registry),
    };
    pl_log_open("test_device", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests_name("device", tests, NULL, NULL);
}
