/* test_mirror_store.c -- unit tests of capability 2's tables
 * (state/mirror.c): accounts, the saved ids (listed back with their
 * Message-IDs intact, whatever the store's buffers held before), status
 * fields, sync requests, the hand-over guard and URL checks. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "mirror.h"
#include "testdir.h"

struct fx { char dir[64]; pl_store *s; };

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct pl_store_opts o = {0};
    char err[256];
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    o.home = f->dir;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pl_store_close(f->s);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

static void account(struct pl_maccount *a, const char *user)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->user, sizeof(a->user), "%s", user);
    snprintf(a->primary, sizeof(a->primary), "pop3s://pop.example.net:1995");
    snprintf(a->login, sizeof(a->login), "J\xc3\xbcrgen");
    snprintf(a->secret_file, sizeof(a->secret_file), "/etc/postlink/x.pop3");
    snprintf(a->deliver_to, sizeof(a->deliver_to), "%s", user);
    a->mode = PL_MIRROR_MARK;
    a->interval = 900;
    snprintf(a->times, sizeof(a->times), "06:30,18:00");
}

static void test_urls_and_checks(void **state)
{
    char scheme[8], host[256];
    unsigned port;
    struct pl_maccount a;
    (void)state;
    assert_int_equal(pl_mirror_url("pop3://127.0.0.1", scheme, sizeof(scheme), host, sizeof(host), &port), 0);
    assert_string_equal(scheme, "pop3");
    assert_int_equal(port, 110);
    assert_int_equal(pl_mirror_url("pop3s://pop.example.net/", scheme, sizeof(scheme), host, sizeof(host), &port), 0);
    assert_int_equal(port, 995);
    assert_int_equal(pl_mirror_url("pop3://[::1]:1110", scheme, sizeof(scheme), host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 1110);
    assert_int_equal(pl_mirror_url("imaps://mail.example.org", scheme, sizeof(scheme), host, sizeof(host), &port), 0);
    assert_int_equal(port, 993);
    assert_int_equal(pl_mirror_url("http://x", scheme, sizeof(scheme), host, sizeof(host), &port), -1);
    assert_int_equal(pl_mirror_url("pop3://user@host", scheme, sizeof(scheme), host, sizeof(host), &port), -1);
    assert_int_equal(pl_mirror_url("pop3://host/INBOX", scheme, sizeof(scheme), host, sizeof(host), &port), -1);
    assert_int_equal(pl_mirror_url("pop3://host:0", scheme, sizeof(scheme), host, sizeof(host), &port), -1);
    assert_int_equal(pl_mirror_url("pop3://ho st", scheme, sizeof(scheme), host, sizeof(host), &port), -1);
    account(&a, "alice@example.com");
    assert_null(pl_maccount_check(&a));
    snprintf(a.times, sizeof(a.times), "25:00");
    assert_non_null(pl_maccount_check(&a));
    account(&a, "alice@example.com");
    snprintf(a.secret_file, sizeof(a.secret_file), "relative");
    assert_non_null(pl_maccount_check(&a));
    account(&a, "alice@example.com");
    snprintf(a.login, sizeof(a.login), "a\nb");
    assert_non_null(pl_maccount_check(&a));
    account(&a, "alice@example.com");
    a.interval = 5;
    assert_non_null(pl_maccount_check(&a));
}

struct accts { int n; struct pl_maccount a[4]; };

static int collect_acct(void *ctx, const struct pl_maccount *a)
{
    struct accts *c = ctx;
    if (c->n < 4)
        c->a[c->n] = *a;
    c->n++;
    return 0;
}

static int acct_fn(pl_txn *t, void *ctx)
{
    struct accts *c = ctx;
    struct pl_maccount a;
    int exists = 0;
    account(&a, "bob@example.com");
    assert_int_equal(pl_maccount_put(t, &a, 0, &exists), PL_OK);
    account(&a, "alice@example.com");
    assert_int_equal(pl_maccount_put(t, &a, 0, &exists), PL_OK);
    assert_int_equal(pl_maccount_put(t, &a, 0, &exists), PL_ERR);
    assert_int_equal(exists, 1);
    a.adopt = 1;
    assert_int_equal(pl_maccount_put(t, &a, 1, &exists), PL_OK);
    c->n = 0;
    return pl_maccount_list(t, collect_acct, c);
}

static void test_accounts(void **state)
{
    struct fx *f = *state;
    struct accts c;
    pl_txn *t;
    struct pl_maccount a;
    assert_int_equal(pl_store_run(f->s, PL_TXN_SYNC, acct_fn, &c), PL_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.a[0].user, "alice@example.com");
    assert_string_equal(c.a[0].login, "J\xc3\xbcrgen");
    assert_string_equal(c.a[0].times, "06:30,18:00");
    assert_int_equal(c.a[0].adopt, 1);
    assert_int_equal(c.a[0].mode, PL_MIRROR_MARK);
    assert_int_equal(c.a[0].interval, 900);
    assert_string_equal(c.a[1].user, "bob@example.com");
    assert_int_equal(c.a[1].adopt, 0);
    assert_int_equal(pl_store_begin(f->s, &t, 0), PL_OK);
    assert_int_equal(pl_maccount_get(t, "Alice@Example.COM", &a), PL_OK);
    assert_string_equal(a.primary, "pop3s://pop.example.net:1995");
    assert_int_equal(pl_mreq_put(t, "alice@example.com", "sync", 5), PL_OK);
    assert_int_equal(pl_maccount_del(t, "alice@example.com"), PL_OK);
    assert_int_equal(pl_maccount_get(t, "alice@example.com", &a), PL_NOTFOUND);
    assert_int_equal(pl_maccount_del(t, "alice@example.com"), PL_NOTFOUND);
    assert_int_equal(pl_txn_commit(t), PL_OK);
}

struct recs { int n; struct pl_mrec r[8]; };

static int collect_rec(void *ctx, const struct pl_mrec *r)
{
    struct recs *c = ctx;
    if (c->n < 8)
        c->r[c->n] = *r;
    c->n++;
    return 0;
}

static void test_ids(void **state)
{
    struct fx *f = *state;
    struct pl_mrec r = {0}, g;
    struct recs c = {0};
    pl_txn *t;
    unsigned n = 0;
    assert_int_equal(pl_store_begin(f->s, &t, 0), PL_OK);
    /* a long Message-ID first, then shorter ones: a value that is read
     * back must not carry the bytes of a longer one before it */
    snprintf(r.id, sizeof(r.id), "id1");
    r.state = PL_MREC_HELD;
    r.size = 1234;
    r.changed = 100;
    assert_int_equal(pl_mtoken_new(r.token, sizeof(r.token)), PL_OK);
    assert_true(pl_mtoken_ok(r.token));
    snprintf(r.msgid, sizeof(r.msgid), "<a-very-long-message-id-with-many-characters.12345678@example.com>");
    assert_int_equal(pl_mrec_put(t, "alice@example.com", &r), PL_OK);
    snprintf(r.id, sizeof(r.id), "id2");
    r.state = PL_MREC_SEEN;
    r.token[0] = '\0';
    snprintf(r.msgid, sizeof(r.msgid), "<b@x>");
    assert_int_equal(pl_mrec_put(t, "alice@example.com", &r), PL_OK);
    snprintf(r.id, sizeof(r.id), "id3");
    r.state = PL_MREC_TOMB;
    r.msgid[0] = '\0';
    r.changed = 10;
    assert_int_equal(pl_mrec_put(t, "alice@example.com", &r), PL_OK);
    /* another user whose name starts alike: not listed under alice */
    assert_int_equal(pl_mrec_put(t, "alice@example.com.x", &r), PL_OK);
    snprintf(r.msgid, sizeof(r.msgid), "<with space@x>");
    assert_int_equal(pl_mrec_put(t, "alice@example.com", &r), PL_ERR);
    assert_int_equal(pl_mrec_list(t, "alice@example.com", collect_rec, &c), PL_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.r[0].id, "id1");
    assert_int_equal(c.r[0].state, PL_MREC_HELD);
    assert_int_equal(c.r[0].size, 1234);
    assert_string_equal(c.r[1].msgid, "<b@x>");
    assert_string_equal(c.r[1].token, "");
    assert_string_equal(c.r[2].msgid, "");
    assert_int_equal(pl_mrec_get(t, "alice@example.com", "id1", &g, 0), PL_OK);
    assert_string_equal(g.msgid, "<a-very-long-message-id-with-many-characters.12345678@example.com>");
    assert_int_equal(pl_mrec_purge(t, "alice@example.com", 50, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_mrec_get(t, "alice@example.com", "id3", &g, 0), PL_NOTFOUND);
    assert_int_equal(pl_mrec_del(t, "alice@example.com", "id2"), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
}

struct reqs { int n; char what[4][100]; };

static int collect_req(void *ctx, const char *user, const char *what, int64_t when)
{
    struct reqs *c = ctx;
    if (c->n < 4)
        snprintf(c->what[c->n], 100, "%s %s %lld", user, what, (long long)when);
    c->n++;
    return 0;
}

static void test_status_requests_guard(void **state)
{
    struct fx *f = *state;
    struct reqs c = {0};
    char *text = NULL, v[64], tok[PL_MTOKEN_LEN + 1];
    pl_txn *t;
    unsigned n = 0;
    assert_int_equal(pl_store_begin(f->s, &t, 0), PL_OK);
    assert_int_equal(pl_mstatus_get(t, "alice@example.com", &text), PL_NOTFOUND);
    assert_int_equal(pl_mstatus_put(t, "alice@example.com", "last=5\nok=1\nerror=\nfetched=20\n"), PL_OK);
    assert_int_equal(pl_mstatus_get(t, "alice@example.com", &text), PL_OK);
    pl_mstatus_field(text, "fetched", v, sizeof(v));
    assert_string_equal(v, "20");
    pl_mstatus_field(text, "error", v, sizeof(v));
    assert_string_equal(v, "");
    pl_mstatus_field(text, "fetch", v, sizeof(v));   /* a prefix of a name is not it */
    assert_string_equal(v, "");
    free(text);
    assert_int_equal(pl_mreq_put(t, "alice@example.com", "sync", 7), PL_OK);
    assert_int_equal(pl_mreq_put(t, "alice@example.com", "fetch id9", 8), PL_OK);
    assert_int_equal(pl_mreq_put(t, "alice@example.com", "bad\nword", 8), PL_ERR);
    assert_int_equal(pl_mreq_list(t, collect_req, &c), PL_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.what[0], "alice@example.com fetch id9 8");
    assert_string_equal(c.what[1], "alice@example.com sync 7");
    assert_int_equal(pl_mreq_del(t, "alice@example.com", "sync"), PL_OK);
    assert_int_equal(pl_mtoken_new(tok, sizeof(tok)), PL_OK);
    assert_int_equal(pl_mguard_take(t, tok, 100), 0);
    assert_int_equal(pl_mguard_take(t, tok, 101), 1);
    assert_int_equal(pl_mguard_take(t, "not-a-token", 101), PL_ERR);
    assert_int_equal(pl_mguard_purge(t, 100, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pl_mguard_purge(t, 101, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_mguard_take(t, tok, 102), 0);
    assert_int_equal(pl_txn_commit(t), PL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls_and_checks),
        cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_requests_guard, setup, teardown),
    };
    pl_log_open("test_mirror_store", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
