/* test_sync.c -- unit tests of the state rules (state/sync.c) and the
 * outbox: apply, hold and release, stale and duplicate controls, versions,
 * resync, expiry, and the copies queued for the user's other devices. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "device.h"
#include "log.h"
#include "outbox.h"
#include "route.h"
#include "sync.h"
#include "testdir.h"

#define U "alice@example.com"
#define PHONE "alice-phone@dev.example"
#define DESK "alice-desk@dev.example"
#define PAGER "alice-pager@gw.example"
#define T0 1795424400LL

struct fx { char dir[64]; pl_store *s; };

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct pl_store_opts o = {0};
    char err[256];
    pl_log_open("test_sync", PL_LOG_STDERR, 0);
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    o.home = f->dir;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_device_add(f->s, U, PHONE, "phone"), PL_OK);
    assert_int_equal(pl_device_add(f->s, U, DESK, "desk"), PL_OK);
    assert_int_equal(pl_device_add(f->s, U, PAGER, "pager"), PL_OK);
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

static struct pl_sync_opts opts(int64_t now)
{
    struct pl_sync_opts o = {now, 3600, "relay.example", 0};
    return o;
}

static struct pl_control ctl(enum pl_ctl_word w, const char *target, const char *id, int64_t date)
{
    static char *targets[1];
    struct pl_control c;
    memset(&c, 0, sizeof(c));
    c.word = w;
    targets[0] = (char *)target;
    c.targets = targets;
    c.ntargets = target ? 1 : 0;
    c.version = -1;
    c.since = -1;
    snprintf(c.msgid, sizeof(c.msgid), "%s", id);
    c.date = date;
    return c;
}

static struct pl_sync_result apply(struct fx *f, const char *sender, struct pl_control c, int64_t now)
{
    struct pl_sync_opts o = opts(now);
    struct pl_sync_result r;
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_sync_control(t, &o, U, sender, &c, NULL, 0, &r), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    return r;
}

static unsigned seen(struct fx *f, const char *msgid, int64_t now, unsigned *released)
{
    struct pl_sync_opts o = opts(now);
    unsigned flags, rel;
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_sync_seen(t, &o, U, msgid, &flags, &rel), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    if (released)
        *released = rel;
    return flags;
}

static int get_flags_cb(void *ctx, const struct pl_msg_state *m)
{
    *(unsigned *)ctx = m->flags;
    return 0;
}

static unsigned flags_of(struct fx *f, const char *msgid)
{
    unsigned flags = 999;
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_NOSYNC), PL_OK);
    assert_int_equal(pl_sync_state_list(t, U, msgid, get_flags_cb, &flags), PL_OK);
    pl_txn_abort(t);
    return flags;
}

/* The outbox as one string per entry: "rcpts|message". */
struct ob { int n; char rcpts[8][256]; char msg[8][2048]; uint64_t id[8]; int imap; };

static int ob_cb(void *ctx, const struct pl_outbox_entry *e)
{
    struct ob *ob = ctx;
    if (e->kind == PL_OB_IMAP) {
        ob->imap++;
        return 0;
    }
    if (ob->n == 8)
        return 0;
    ob->rcpts[ob->n][0] = '\0';
    for (size_t i = 0; i < e->nrcpts; i++) {
        strcat(ob->rcpts[ob->n], e->rcpts[i]);
        strcat(ob->rcpts[ob->n], " ");
    }
    snprintf(ob->msg[ob->n], 2048, "%.*s", (int)e->msglen, e->msg);
    ob->id[ob->n] = e->id;
    ob->n++;
    return 0;
}

/* Read and empty the outbox. */
static struct ob drain(struct fx *f)
{
    struct ob ob;
    pl_txn *t;
    memset(&ob, 0, sizeof(ob));
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_outbox_scan(t, 0, 0, ob_cb, &ob), PL_OK);
    for (int i = 0; i < ob.n; i++)
        assert_int_equal(pl_outbox_del(t, ob.id[i]), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    return ob;
}

static void test_apply_and_fan_out(void **state)
{
    struct fx *f = *state;
    struct pl_sync_result r;
    struct ob ob;

    assert_int_equal(seen(f, "<m1@x>", T0, NULL), 0);
    r = apply(f, PHONE, ctl(PL_CW_READ, "<m1@x>", "<c1@phone>", T0 + 10), T0 + 10);
    assert_int_equal(r.applied, 1);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.copies, 2);
    assert_int_equal(flags_of(f, "<m1@x>"), PL_ST_READ);
    ob = drain(f);
    assert_int_equal(ob.n, 2);                  /* one entry per device (finding 8) */
    assert_string_equal(ob.rcpts[0], DESK " ");                /* not back to the phone */
    assert_string_equal(ob.rcpts[1], PAGER " ");
    assert_string_equal(ob.msg[0], ob.msg[1]);
    assert_non_null(strstr(ob.msg[0], "X-Control: read\r\n"));
    assert_non_null(strstr(ob.msg[0], "X-Control-Target: <m1@x>\r\n"));
    assert_non_null(strstr(ob.msg[0], "Message-ID: <c1@phone>\r\n"));
    assert_non_null(strstr(ob.msg[0], "X-Postlink-Forwarded: by relay.example; user=" U));
    assert_int_equal(ob.imap, 0);
}

static void test_pending_then_arrival(void **state)
{
    struct fx *f = *state;
    struct pl_sync_result r;
    unsigned released, flags;
    struct ob ob;

    r = apply(f, DESK, ctl(PL_CW_SAVED, "<late@x>", "<c2@desk>", T0), T0);
    assert_int_equal(r.pending, 1);
    assert_int_equal(r.copies, 0);
    assert_int_equal(drain(f).n, 0);
    r = apply(f, PHONE, ctl(PL_CW_READ, "<late@x>", "<c3@phone>", T0 + 5), T0 + 5);
    assert_int_equal(r.pending, 1);
    flags = seen(f, "<late@x>", T0 + 10, &released);
    assert_int_equal(released, 2);
    assert_int_equal(flags, PL_ST_SAVED | PL_ST_READ);
    ob = drain(f);
    assert_int_equal(ob.n, 4);                  /* per control, one copy per device */
    assert_string_equal(ob.rcpts[0], PAGER " ");
    assert_string_equal(ob.rcpts[1], PHONE " ");
    assert_string_equal(ob.rcpts[2], DESK " ");
    assert_string_equal(ob.rcpts[3], PAGER " ");
    /* arriving again (a retried delivery) releases nothing more */
    flags = seen(f, "<late@x>", T0 + 20, &released);
    assert_int_equal(released, 0);
    assert_int_equal(flags, PL_ST_SAVED | PL_ST_READ);
}

static void test_ordering_rules(void **state)
{
    struct fx *f = *state;
    struct pl_sync_result r;

    seen(f, "<m@x>", T0, NULL);
    r = apply(f, PHONE, ctl(PL_CW_READ, "<m@x>", "<a@p>", T0 + 100), T0 + 100);
    assert_int_equal(r.applied, 1);
    /* an older change that arrives later is stale: nothing changes, no copy */
    r = apply(f, DESK, ctl(PL_CW_UNREAD, "<m@x>", "<b@d>", T0 + 50), T0 + 110);
    assert_int_equal(r.stale, 1);
    assert_int_equal(r.copies, 0);
    assert_int_equal(flags_of(f, "<m@x>"), PL_ST_READ);
    /* replied does not clear read */
    r = apply(f, DESK, ctl(PL_CW_REPLIED, "<m@x>", "<c@d>", T0 + 120), T0 + 120);
    assert_int_equal(flags_of(f, "<m@x>"), PL_ST_READ | PL_ST_REPLIED);
    /* deleted then undeleted restores */
    apply(f, PHONE, ctl(PL_CW_DELETED, "<m@x>", "<d@p>", T0 + 130), T0 + 130);
    assert_int_equal(flags_of(f, "<m@x>"), PL_ST_READ | PL_ST_REPLIED | PL_ST_DELETED);
    r = apply(f, PHONE, ctl(PL_CW_UNDELETED, "<m@x>", "<e@p>", T0 + 140), T0 + 140);
    assert_int_equal(flags_of(f, "<m@x>"), PL_ST_READ | PL_ST_REPLIED);
    assert_int_equal(r.version, 4);
    /* a newer unread wins */
    r = apply(f, DESK, ctl(PL_CW_UNREAD, "<m@x>", "<f@d>", T0 + 150), T0 + 150);
    assert_int_equal(r.applied, 1);
    assert_int_equal(flags_of(f, "<m@x>"), PL_ST_REPLIED);
    /* a Date far in the future counts as arrival time, so it cannot pin state */
    r = apply(f, DESK, ctl(PL_CW_READ, "<m@x>", "<g@d>", T0 + 999999), T0 + 160);
    r = apply(f, PHONE, ctl(PL_CW_UNREAD, "<m@x>", "<h@p>", T0 + 170), T0 + 170);
    assert_int_equal(r.applied, 1);
    drain(f);
}

static void test_duplicate_and_unchanged(void **state)
{
    struct fx *f = *state;
    struct pl_sync_result r;

    seen(f, "<m@x>", T0, NULL);
    r = apply(f, PHONE, ctl(PL_CW_READ, "<m@x>", "<same@p>", T0 + 1), T0 + 1);
    assert_int_equal(r.applied, 1);
    drain(f);
    r = apply(f, PHONE, ctl(PL_CW_READ, "<m@x>", "<same@p>", T0 + 1), T0 + 2);
    assert_int_equal(r.duplicate, 1);
    assert_int_equal(r.copies, 0);
    r = apply(f, DESK, ctl(PL_CW_READ, "<m@x>", "<other@d>", T0 + 3), T0 + 3);
    assert_int_equal(r.unchanged, 1);           /* changes nothing: no fan-out */
    assert_int_equal(r.copies, 0);
    assert_int_equal(r.version, 1);
    assert_int_equal(drain(f).n, 0);
}

static void test_route_tokens_and_purges(void **state)
{
    struct fx *f = *state;
    char tok[PL_ROUTE_TOKEN_LEN + 1], tok2[PL_ROUTE_TOKEN_LEN + 1], u[320], snd[320];
    unsigned n;
    pl_txn *t;

    seen(f, "<m@x>", T0, NULL);
    apply(f, PHONE, ctl(PL_CW_READ, "<m@x>", "<d1@p>", T0 + 1), T0 + 1);
    assert_int_equal(pl_route_token(tok, sizeof(tok)), PL_OK);
    assert_int_equal(pl_route_token(tok2, sizeof(tok2)), PL_OK);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_route_add(t, tok, U, PHONE, T0), PL_OK);
    assert_int_equal(pl_route_get(t, tok, u, sizeof(u), snd, sizeof(snd)), PL_OK);
    assert_string_equal(u, U);
    assert_string_equal(snd, PHONE);
    assert_int_equal(pl_route_get(t, tok2, u, sizeof(u), snd, sizeof(snd)), PL_NOTFOUND);
    assert_int_equal(pl_route_get(t, "not-a-token", u, sizeof(u), snd, sizeof(snd)), PL_NOTFOUND);
    assert_int_equal(pl_route_purge(t, T0, &n), PL_OK);
    assert_int_equal(n, 0);                               /* made at T0: kept */
    assert_int_equal(pl_route_purge(t, T0 + 1, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_sync_purge_dedupe(t, T0 + 10, 100, &n), PL_OK);
    assert_int_equal(n, 0);                               /* marked at T0 + 1 */
    assert_int_equal(pl_sync_purge_dedupe(t, T0 + 1000, 100, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    drain(f);
}

static void test_resync(void **state)
{
    struct fx *f = *state;
    struct pl_sync_result r;
    struct pl_control c;
    struct ob ob;

    seen(f, "<a@x>", T0, NULL);
    seen(f, "<b@x>", T0, NULL);
    apply(f, PHONE, ctl(PL_CW_READ, "<a@x>", "<1@p>", T0 + 1), T0 + 1);    /* v1 */
    apply(f, PHONE, ctl(PL_CW_SAVED, "<b@x>", "<2@p>", T0 + 2), T0 + 2);   /* v2 */
    apply(f, PHONE, ctl(PL_CW_READ, "<b@x>", "<3@p>", T0 + 3), T0 + 3);    /* v3 */
    drain(f);
    c = ctl(PL_CW_RESYNC, NULL, "<rs@pager>", T0 + 4);
    c.since = 1;
    r = apply(f, PAGER, c, T0 + 4);
    assert_int_equal(r.applied, 1);                 /* one line: b at v3 */
    ob = drain(f);
    assert_int_equal(ob.n, 1);
    assert_string_equal(ob.rcpts[0], PAGER " ");
    assert_non_null(strstr(ob.msg[0], "\r\n\r\n<b@x> read,saved 3\r\n"));
    assert_null(strstr(ob.msg[0], "<a@x>"));
    c.since = 0;
    snprintf(c.msgid, sizeof(c.msgid), "<rs2@pager>");
    apply(f, PAGER, c, T0 + 5);
    ob = drain(f);
    assert_non_null(strstr(ob.msg[0], "<a@x> read 1\r\n"));
    assert_non_null(strstr(ob.msg[0], "X-Control-Version: 3\r\n"));
}

static int count_pending(void *ctx, const struct pl_pending_info *p)
{
    int *n = ctx;
    n[p->expired ? 1 : 0]++;
    return 0;
}

static void test_expiry_and_imap(void **state)
{
    struct fx *f = *state;
    struct pl_sync_opts o = opts(T0);
    struct pl_sync_result r;
    unsigned n, released, flags;
    int counts[2] = {0, 0};
    pl_txn *t;
    struct ob ob;

    apply(f, PHONE, ctl(PL_CW_READ, "<never@x>", "<x1@p>", T0), T0);
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    assert_int_equal(pl_sync_expire(t, T0 + 100, 0, &n), PL_OK);
    assert_int_equal(n, 0);                             /* ttl is 3600 */
    assert_int_equal(pl_sync_expire(t, T0 + 3601, 0, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_sync_pending_list(t, U, count_pending, counts), PL_OK);
    assert_int_equal(counts[1], 1);
    /* an expired control is not applied when its target finally arrives */
    assert_int_equal(pl_sync_seen(t, &o, U, "<never@x>", &flags, &released), PL_OK);
    assert_int_equal(released, 0);
    assert_int_equal(flags, 0);
    assert_int_equal(pl_sync_purge(t, NULL, &n), PL_OK);
    assert_int_equal(n, 1);
    counts[0] = counts[1] = 0;
    assert_int_equal(pl_sync_pending_list(t, NULL, count_pending, counts), PL_OK);
    assert_int_equal(counts[0] + counts[1], 0);
    /* unchanged messages are forgotten after seen_ttl, changed ones kept */
    assert_int_equal(pl_sync_seen(t, &o, U, "<idle@x>", &flags, &released), PL_OK);
    assert_int_equal(pl_sync_purge_idle(t, T0 + 100, 1000, &n), PL_OK);
    assert_int_equal(n, 0);                             /* arrived at T0: too young */
    assert_int_equal(pl_sync_purge_idle(t, T0 + 100000, 50, &n), PL_OK);
    assert_int_equal(n, 2);                             /* <idle@x> and <never@x> */
    assert_int_equal(pl_sync_seen(t, &o, U, "<never@x>", &flags, &released), PL_OK);
    /* with IMAP on, a change also queues a flag update */
    o.imap = 1;
    struct pl_control c = ctl(PL_CW_SAVED, "<never@x>", "<x2@p>", T0 + 4000);
    assert_int_equal(pl_sync_control(t, &o, U, PHONE, &c, NULL, 0, &r), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    ob = drain(f);
    assert_int_equal(ob.imap, 1);
    assert_int_equal(ob.n, 2);                  /* desk and pager, one entry each */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_and_fan_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_then_arrival, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ordering_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_tokens_and_purges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_and_imap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
