/* test_push_sub.c -- unit tests of state/push_sub.h: the psub table of
 * schema v11 (a v10 store is upgraded), set/get/replace/del of a device's
 * Web Push subscription, the checks of what is stored (endpoint, p256dh,
 * auth, selector, an existing device), the failure count, the row going
 * with its device (pl_pdev_del), and the registration JSON parser's edge
 * cases (types, sizes, duplicates, NULs, bad UTF-8, trailing bytes). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "push.h"
#include "push_sub.h"
#include "testdir.h"

#define ALICE "alice@example.com"
#define EP "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABl"
#define EP2 "http://127.0.0.1:8090/notify/00ff"
/* RFC 8291's example device keys */
#define P256DH "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define AUTH "BTBZMqHH6r4Tts7J_aSIgg"
/* P256DH with its last byte changed: off the curve */
#define P256DH_OFF "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw8"

struct fx { char dir[64]; pl_store *s; struct pl_pdev d; };

static pl_txn *tb(struct fx *f)
{
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    return t;
}

static void tc(pl_txn *t) { assert_int_equal(pl_txn_commit(t), PL_OK); }

static void fx_open(struct fx *f, int target)
{
    struct pl_store_opts o = {0};
    char err[256];
    o.home = f->dir;
    o.schema_target = target;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char tok[PL_PTOKEN_LEN + 1];
    const char *why;
    pl_txn *t;
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    fx_open(f, 0);
    t = tb(f);
    assert_int_equal(pl_pdev_add(t, ALICE, "phone", 50, tok, sizeof(tok), &why), PL_OK);
    assert_int_equal(pl_pdev_auth(t, tok, &f->d), PL_OK);
    tc(t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->s)
        pl_store_close(f->s);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

static int set(struct fx *f, const char *sel, const char *ep, const char *p, const char *a,
               int64_t now, const char **why)
{
    pl_txn *t = tb(f);
    int rc = pl_psub_set(t, sel, ep, p, a, now, why);
    if (rc == PL_OK)
        tc(t);
    else
        pl_txn_abort(t);
    return rc;
}

static int get(struct fx *f, const char *sel, struct pl_psub *s)
{
    pl_txn *t = tb(f);
    int rc = pl_psub_get(t, sel, s, 0);
    pl_txn_abort(t);
    return rc;
}

/* ---- the schema ---------------------------------------------------------- */

static void test_schema(void **state)
{
    struct fx f = {0};
    pl_txn *t;
    (void)state;
    assert_true(pl_store_schema_current() >= 11);
    assert_non_null(testdir_new(f.dir, sizeof(f.dir)));
    fx_open(&f, 10);                /* the release before subscriptions */
    t = tb(&f);
    assert_int_equal(pl_store_put(t, PL_T_PSUB, "k", 1, "v", 1), PL_ERR);
    assert_int_equal(pl_store_put(t, PL_T_PDEV, "k", 1, "v", 1), PL_OK);
    tc(t);
    pl_store_close(f.s);
    fx_open(&f, 0);
    assert_int_equal(pl_store_schema_version(f.s), pl_store_schema_current());
    t = tb(&f);
    assert_int_equal(pl_store_put(t, PL_T_PSUB, "k", 1, "v", 1), PL_OK);
    pl_txn_abort(t);
    pl_store_close(f.s);
    testdir_remove(f.dir);
}

/* ---- the store ----------------------------------------------------------- */

static void test_set_get_del(void **state)
{
    struct fx *f = *state;
    struct pl_psub s;
    const char *why = "x";
    pl_txn *t;
    assert_int_equal(get(f, f->d.sel, &s), PL_NOTFOUND);
    assert_int_equal(set(f, f->d.sel, EP, P256DH, AUTH, 1000, &why), PL_OK);
    assert_null(why);
    assert_int_equal(get(f, f->d.sel, &s), PL_OK);
    assert_string_equal(s.sub.endpoint, EP);
    assert_string_equal(s.sub.p256dh, P256DH);
    assert_string_equal(s.sub.auth, AUTH);
    assert_int_equal(s.created, 1000);
    assert_int_equal(s.fails, 0);
    assert_int_equal(s.last, 0);
    /* a failure count, then a replacement starts it again */
    t = tb(f);
    assert_int_equal(pl_psub_note(t, f->d.sel, 1100, 0, NULL), PL_OK);
    tc(t);
    assert_int_equal(set(f, f->d.sel, EP2, P256DH, AUTH, 2000, NULL), PL_OK);
    assert_int_equal(get(f, f->d.sel, &s), PL_OK);
    assert_string_equal(s.sub.endpoint, EP2);
    assert_int_equal(s.created, 2000);
    assert_int_equal(s.fails, 0);
    assert_int_equal(s.last, 0);
    /* del */
    t = tb(f);
    assert_int_equal(pl_psub_del(t, f->d.sel), PL_OK);
    assert_int_equal(pl_psub_del(t, f->d.sel), PL_NOTFOUND);
    assert_int_equal(pl_psub_del(t, "nothex"), PL_NOTFOUND);
    tc(t);
    assert_int_equal(get(f, f->d.sel, &s), PL_NOTFOUND);
}

static void test_note(void **state)
{
    struct fx *f = *state;
    struct pl_psub s;
    unsigned n = 99;
    pl_txn *t;
    assert_int_equal(set(f, f->d.sel, EP, P256DH, AUTH, 1000, NULL), PL_OK);
    t = tb(f);
    assert_int_equal(pl_psub_note(t, f->d.sel, 1010, 0, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_psub_note(t, f->d.sel, 1020, 0, &n), PL_OK);
    assert_int_equal(n, 2);
    tc(t);
    assert_int_equal(get(f, f->d.sel, &s), PL_OK);
    assert_int_equal(s.fails, 2);
    assert_int_equal(s.last, 1020);
    assert_string_equal(s.sub.endpoint, EP);      /* the rest is kept */
    t = tb(f);
    assert_int_equal(pl_psub_note(t, f->d.sel, 1030, 1, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pl_psub_note(t, "0123456789abcdef", 1030, 1, &n), PL_NOTFOUND);
    tc(t);
    assert_int_equal(get(f, f->d.sel, &s), PL_OK);
    assert_int_equal(s.fails, 0);
    assert_int_equal(s.last, 1030);
    assert_int_equal(s.created, 1000);
}

static void test_validation(void **state)
{
    struct fx *f = *state;
    struct pl_psub s;
    char big[PL_WP_ENDPOINT_MAX + 2];
    const char *why;
    /* the device must exist; the selector must be one */
    assert_int_equal(set(f, "0123456789abcdef", EP, P256DH, AUTH, 1, &why), PL_NOTFOUND);
    assert_int_equal(set(f, "0123456789ABCDEF", EP, P256DH, AUTH, 1, &why), PL_ERR);
    assert_non_null(strstr(why, "selector"));
    assert_int_equal(set(f, "0123", EP, P256DH, AUTH, 1, &why), PL_ERR);
    /* the endpoint */
    assert_int_equal(set(f, f->d.sel, "ftp://example.com/x", P256DH, AUTH, 1, &why), PL_ERR);
    assert_non_null(strstr(why, "endpoint"));
    assert_int_equal(set(f, f->d.sel, "https://example.com/a b", P256DH, AUTH, 1, &why), PL_ERR);
    assert_int_equal(set(f, f->d.sel, "https://u:p@example.com/x", P256DH, AUTH, 1, &why), PL_ERR);
    assert_int_equal(set(f, f->d.sel, NULL, P256DH, AUTH, 1, &why), PL_ERR);
    memset(big, 'a', sizeof(big));
    memcpy(big, "https://example.com/", 20);
    big[PL_WP_ENDPOINT_MAX + 1] = '\0';
    assert_int_equal(set(f, f->d.sel, big, P256DH, AUTH, 1, &why), PL_ERR);
    assert_non_null(strstr(why, "1024"));
    big[PL_WP_ENDPOINT_MAX] = '\0';         /* exactly 1024: taken, and read back whole */
    assert_int_equal(set(f, f->d.sel, big, P256DH, AUTH, 1, &why), PL_OK);
    assert_int_equal(get(f, f->d.sel, &s), PL_OK);
    assert_string_equal(s.sub.endpoint, big);
    /* the keys */
    assert_int_equal(set(f, f->d.sel, EP, P256DH_OFF, AUTH, 1, &why), PL_ERR);
    assert_non_null(strstr(why, "p256dh"));
    assert_int_equal(set(f, f->d.sel, EP, "BCVxsr7N", AUTH, 1, &why), PL_ERR);
    assert_int_equal(set(f, f->d.sel, EP, NULL, AUTH, 1, &why), PL_ERR);
    assert_int_equal(set(f, f->d.sel, EP, P256DH, "BTBZMqHH6r4Tts7J_aSI", 1, &why), PL_ERR);
    assert_non_null(strstr(why, "auth"));
    assert_int_equal(set(f, f->d.sel, EP, P256DH, "BTBZMqHH6r4Tts7J_aSIgg==", 1, &why), PL_OK);
    assert_int_equal(set(f, f->d.sel, EP, P256DH, AUTH "A", 1, &why), PL_ERR);
    /* nothing of the refused ones was stored */
    assert_int_equal(get(f, f->d.sel, &s), PL_OK);
    assert_string_equal(s.sub.endpoint, EP);
    assert_string_equal(s.sub.auth, AUTH);          /* kept without its padding */
}

static void test_device_removal(void **state)
{
    struct fx *f = *state;
    struct pl_psub s;
    pl_txn *t;
    assert_int_equal(set(f, f->d.sel, EP, P256DH, AUTH, 1000, NULL), PL_OK);
    t = tb(f);
    assert_int_equal(pl_pdev_del(t, ALICE, "phone"), PL_OK);
    tc(t);
    assert_int_equal(get(f, f->d.sel, &s), PL_NOTFOUND);
    /* and a device without a subscription goes too */
    {
        char tok[PL_PTOKEN_LEN + 1];
        const char *why;
        t = tb(f);
        assert_int_equal(pl_pdev_add(t, ALICE, "tablet", 60, tok, sizeof(tok), &why), PL_OK);
        tc(t);
        t = tb(f);
        assert_int_equal(pl_pdev_del(t, ALICE, "tablet"), PL_OK);
        tc(t);
    }
    assert_int_equal(set(f, f->d.sel, EP, P256DH, AUTH, 1000, NULL), PL_NOTFOUND);
}

/* ---- the registration JSON ------------------------------------------------ */

static int parse(const char *json, struct pl_webpush_sub *o, char *err, size_t errlen)
{
    return pl_psub_parse_json(json, strlen(json), o, err, errlen);
}

static void refused(const char *json, const char *what)
{
    struct pl_webpush_sub o;
    char err[256] = "";
    if (parse(json, &o, err, sizeof(err)) != -1)
        fail_msg("taken: %s", json);
    if (strstr(err, what) == NULL)
        fail_msg("%s: error \"%s\" lacks \"%s\"", json, err, what);
    assert_string_equal(o.endpoint, "");
}

static void test_json(void **state)
{
    struct pl_webpush_sub o;
    char err[256], *big;
    size_t n;
    (void)state;
    /* Chrome's and Firefox's forms */
    assert_int_equal(parse("{\"endpoint\":\"" EP "\",\"expirationTime\":null,\"keys\":{\"p256dh\":\""
                           P256DH "\",\"auth\":\"" AUTH "\"}}", &o, err, sizeof(err)), 0);
    assert_string_equal(o.endpoint, EP);
    assert_string_equal(o.p256dh, P256DH);
    assert_string_equal(o.auth, AUTH);
    assert_int_equal(parse(" {\n \"keys\" : {\"auth\":\"" AUTH "\", \"p256dh\":\"" P256DH "\"},\n"
                           " \"endpoint\":\"" EP2 "\", \"expirationTime\": 1735689600000,"
                           " \"extra\": [1, {\"x\": null}]}\n", &o, err, sizeof(err)), 0);
    assert_string_equal(o.endpoint, EP2);
    /* escaped slashes are JSON too */
    assert_int_equal(parse("{\"endpoint\":\"https:\\/\\/push.example\\/x\",\"keys\":{\"p256dh\":\""
                           P256DH "\",\"auth\":\"" AUTH "\"}}", &o, err, sizeof(err)), 0);
    assert_string_equal(o.endpoint, "https://push.example/x");

    refused("", "not JSON");
    refused("{", "not JSON");
    refused("[]", "not a JSON object");
    refused("\"" EP "\"", "not JSON");       /* jansson: only an array or object at the top */
    refused("null", "not JSON");
    refused("{\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"" AUTH "\"}}", "endpoint: missing");
    refused("{\"endpoint\":42,\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"" AUTH "\"}}",
            "endpoint: not a string");
    refused("{\"endpoint\":\"\",\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"" AUTH "\"}}",
            "endpoint: empty");
    refused("{\"endpoint\":\"" EP "\"}", "keys: missing");
    refused("{\"endpoint\":\"" EP "\",\"keys\":[\"" P256DH "\"]}", "keys: not an object");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"auth\":\"" AUTH "\"}}", "keys.p256dh: missing");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":null,\"auth\":\"" AUTH "\"}}",
            "keys.p256dh: not a string");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "\"}}", "keys.auth: missing");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":true}}",
            "keys.auth: not a string");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "AAAAA\",\"auth\":\"" AUTH "\"}}",
            "too long");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "A\",\"auth\":\"" AUTH "\"}}",
            "p256dh is not");
    /* padded keys are taken, kept unpadded */
    assert_int_equal(parse("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "=\",\"auth\":\""
                           AUTH "==\"}}", &o, err, sizeof(err)), 0);
    assert_string_equal(o.p256dh, P256DH);
    assert_string_equal(o.auth, AUTH);
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH_OFF "\",\"auth\":\"" AUTH "\"}}",
            "p256dh");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"AAAA\"}}",
            "auth is not");
    refused("{\"endpoint\":\"ftp://x.example/\",\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"" AUTH
            "\"}}", "http or https");
    refused("{\"endpoint\":\"https://x.example/\\u00e4\",\"keys\":{\"p256dh\":\"" P256DH
            "\",\"auth\":\"" AUTH "\"}}", "printable ASCII");
    refused("{\"endpoint\":\"https://x.example/\\u0000\",\"keys\":{\"p256dh\":\"" P256DH
            "\",\"auth\":\"" AUTH "\"}}", "not JSON");
    refused("{\"endpoint\":\"" EP "\",\"expirationTime\":\"soon\",\"keys\":{\"p256dh\":\"" P256DH
            "\",\"auth\":\"" AUTH "\"}}", "expirationTime");
    refused("{\"endpoint\":\"" EP "\",\"expirationTime\":-1,\"keys\":{\"p256dh\":\"" P256DH
            "\",\"auth\":\"" AUTH "\"}}", "expirationTime");
    /* a second endpoint must not override the first one unseen */
    refused("{\"endpoint\":\"" EP "\",\"endpoint\":\"https://evil.example/\",\"keys\":{\"p256dh\":\""
            P256DH "\",\"auth\":\"" AUTH "\"}}", "duplicate");
    refused("{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"" AUTH
            "\"}} trailing", "not JSON");
    refused("{\"endpoint\":\"https://x.example/\xff\",\"keys\":{\"p256dh\":\"" P256DH
            "\",\"auth\":\"" AUTH "\"}}", "not JSON");      /* not UTF-8 */
    /* a raw NUL in the buffer (the length says where it ends) */
    {
        static const char nul[] = "{\"endpoint\":\"https://x.example/\0\",\"keys\":{}}";
        assert_int_equal(pl_psub_parse_json(nul, sizeof(nul) - 1, &o, err, sizeof(err)), -1);
    }
    /* an endpoint longer than 1024 bytes, and an input over 4096 bytes */
    big = malloc(PL_PSUB_JSON_MAX + 100);
    n = (size_t)snprintf(big, PL_PSUB_JSON_MAX, "{\"endpoint\":\"https://x.example/%01100d\","
                         "\"keys\":{\"p256dh\":\"" P256DH "\",\"auth\":\"" AUTH "\"}}", 0);
    assert_int_equal(pl_psub_parse_json(big, n, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "endpoint: empty or too long"));
    n = (size_t)snprintf(big, PL_PSUB_JSON_MAX, "{\"endpoint\":\"" EP "\",\"keys\":{\"p256dh\":\""
                         P256DH "\",\"auth\":\"" AUTH "\"}}");
    memset(big + n, ' ', PL_PSUB_JSON_MAX + 1 - n);     /* white space up to 4097 bytes */
    assert_int_equal(pl_psub_parse_json(big, PL_PSUB_JSON_MAX + 1, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most 4096"));
    /* the same within 4096 bytes is taken */
    assert_int_equal(pl_psub_parse_json(big, PL_PSUB_JSON_MAX, &o, err, sizeof(err)), 0);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test_setup_teardown(test_set_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_note, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_removal, setup, teardown),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
