/* test_push_store.c -- unit tests of capability 5's store (state/push.c):
 * device tokens (hashed, checked), the seed's Fig. 5 sequence at the store
 * level, independent cursors of two devices, refused acks (unknown,
 * foreign, never sent, repeated), withdrawal, retention, device removal, a
 * large message, the schema upgrade to v10, chains over gaps (4,100
 * messages, most withdrawn), random operations checked against a model of
 * the queues, and a writer SIGKILLed while it stores mail: after recovery
 * every reported message is there, whole, in order, and the queue matches
 * the records. */
#include "config.h"

#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "push.h"
#include "push_intake.h"
#include "testdir.h"

#define ALICE "alice@example.com"
#define BOB "bob@example.com"

struct fx { char dir[64]; pl_store *s; };

static void fx_open(struct fx *f)
{
    struct pl_store_opts o = {0};
    char err[256];
    o.home = f->dir;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    fx_open(f);
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

static pl_txn *tb(struct fx *f)
{
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    return t;
}

static void tc(pl_txn *t) { assert_int_equal(pl_txn_commit(t), PL_OK); }

static void add_dev(struct fx *f, const char *user, const char *name, struct pl_pdev *d)
{
    char tok[PL_PTOKEN_LEN + 1];
    const char *why;
    pl_txn *t = tb(f);
    assert_int_equal(pl_pdev_add(t, user, name, 50, tok, sizeof(tok), &why), PL_OK);
    assert_int_equal(pl_pdev_auth(t, tok, d), PL_OK);
    tc(t);
}

static void put_msg(struct fx *f, const char *user, const char *body, const char *ref,
                    int64_t now, struct pl_pmsg *m)
{
    struct pl_pmsg_in in = {user, body, strlen(body), NULL, now - 5, "sender@example.net", ref};
    pl_txn *t = tb(f);
    assert_int_equal(pl_pmsg_put(t, &in, now, m), PL_OK);
    tc(t);
}

/* get (NULL = first): the id returned, its next in next, and the bytes */
static int get(struct fx *f, const struct pl_pdev *d, const char *id, char *got, char *next,
               const char *body)
{
    struct pl_pmsg m;
    void *b;
    size_t len;
    pl_txn *t = tb(f);
    int rc = pl_pq_get(t, d, id, &m, NULL, next);
    if (rc == PL_OK) {
        memcpy(got, m.id, PL_PID_LEN + 1);
        assert_int_equal(pl_pmsg_get(t, m.id, &b, &len), PL_OK);
        assert_int_equal(len, m.size);
        if (body)
            assert_memory_equal(b, body, strlen(body));
        free(b);
    }
    pl_txn_abort(t);
    return rc;
}

static void sent(struct fx *f, const struct pl_pdev *d, const char *id)
{
    pl_txn *t = tb(f);
    assert_int_equal(pl_pq_sent(t, d, id, 77), PL_OK);
    tc(t);
}

static int ack(struct fx *f, const struct pl_pdev *d, const char *id, enum pl_pdisp disp,
               int64_t now)
{
    pl_txn *t = tb(f);
    int rc = pl_pq_ack(t, d, id, disp, now);
    tc(t);
    return rc;
}

static int msg_exists(struct fx *f, const char *id)
{
    struct pl_pmsg m;
    void *b = NULL;
    size_t len;
    pl_txn *t = tb(f);
    int rc = pl_pmsg_meta(t, id, &m, 0), rb = pl_pmsg_get(t, id, &b, &len);
    free(b);
    pl_txn_abort(t);
    assert_int_equal(rc, rb);       /* the record and the bytes go together */
    return rc == PL_OK;
}

/* ---- schema ------------------------------------------------------------ */

static void test_schema(void **state)
{
    struct fx f = {0};
    struct pl_store_opts o = {0};
    char err[256];
    pl_txn *t;
    (void)state;
    assert_true(pl_store_schema_current() >= 10);
    assert_non_null(testdir_new(f.dir, sizeof(f.dir)));
    o.home = f.dir;
    o.schema_target = 9;            /* a store of the release before push */
    assert_int_equal(pl_store_open(&f.s, &o, err, sizeof(err)), PL_OK);
    t = tb(&f);
    assert_int_equal(pl_store_put(t, PL_T_PMSG, "k", 1, "v", 1), PL_ERR);
    assert_int_equal(pl_store_put(t, "maccount", "k", 1, "v", 1), PL_OK);
    tc(t);
    pl_store_close(f.s);
    fx_open(&f);
    assert_int_equal(pl_store_schema_version(f.s), pl_store_schema_current());
    t = tb(&f);
    for (const char *const *n = (const char *const[]){PL_T_PDEV, PL_T_PDEVID, PL_T_PSEQ,
             PL_T_PMSG, PL_T_PBODY, PL_T_PUSER, PL_T_PREF, PL_T_PQ, PL_T_PDONE, PL_T_PACK, NULL};
         *n; n++)
        assert_int_equal(pl_store_put(t, *n, "k", 1, "v", 1), PL_OK);
    pl_txn_abort(t);
    pl_store_close(f.s);
    testdir_remove(f.dir);
}

/* ---- devices ------------------------------------------------------------ */

struct names { int n; char name[4][PL_PNAME_MAX + 1]; };

static int collect_dev(void *ctx, const struct pl_pdev *d)
{
    struct names *c = ctx;
    if (c->n < 4)
        snprintf(c->name[c->n], sizeof(c->name[0]), "%s", d->name);
    c->n++;
    return 0;
}

struct seen { const char *needle; int found; };

static int raw_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct seen *s = ctx;
    size_t n = strlen(s->needle);
    (void)k, (void)kl;
    for (size_t i = 0; i + n <= vl; i++)
        if (memcmp((const char *)v + i, s->needle, n) == 0)
            s->found = 1;
    return 0;
}

static void test_devices(void **state)
{
    struct fx *f = *state;
    char tok[PL_PTOKEN_LEN + 1], tok2[PL_PTOKEN_LEN + 1], bad[PL_PTOKEN_LEN + 1];
    struct pl_pdev d;
    struct names c = {0};
    struct seen s;
    const char *why;
    pl_txn *t = tb(f);

    assert_int_equal(pl_pdev_add(t, "Alice@Example.COM", "phone", 10, tok, sizeof(tok), &why), PL_OK);
    assert_int_equal(strlen(tok), PL_PTOKEN_LEN);
    assert_int_equal(tok[PL_PSEL_LEN], '.');
    assert_int_equal(pl_pdev_add(t, ALICE, "laptop", 11, tok2, sizeof(tok2), &why), PL_OK);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(pl_pdev_add(t, ALICE, "phone", 12, bad, sizeof(bad), &why), PL_ERR);
    assert_string_equal(why, "exists");
    assert_int_equal(pl_pdev_add(t, ALICE, "my phone", 12, bad, sizeof(bad), &why), PL_ERR);
    assert_non_null(why);
    assert_int_equal(pl_pdev_add(t, "nobody", "x", 12, bad, sizeof(bad), &why), PL_ERR);
    assert_int_equal(pl_pdev_add(t, BOB, "phone", 13, bad, sizeof(bad), &why), PL_OK);

    assert_int_equal(pl_pdev_auth(t, tok, &d), PL_OK);
    assert_string_equal(d.user, ALICE);
    assert_string_equal(d.name, "phone");
    assert_int_equal(d.created, 10);
    assert_int_equal(pl_pdev_auth(t, tok2, &d), PL_OK);
    assert_string_equal(d.name, "laptop");
    /* a changed secret, another device's secret, junk: refused alike */
    memcpy(bad, tok, sizeof(bad));
    bad[PL_PTOKEN_LEN - 1] = bad[PL_PTOKEN_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(pl_pdev_auth(t, bad, &d), PL_NOTFOUND);
    memcpy(bad, tok, PL_PSEL_LEN + 1);
    memcpy(bad + PL_PSEL_LEN + 1, tok2 + PL_PSEL_LEN + 1, PL_PSECRET_LEN + 1);
    assert_int_equal(pl_pdev_auth(t, bad, &d), PL_NOTFOUND);
    assert_int_equal(pl_pdev_auth(t, "", &d), PL_NOTFOUND);
    assert_int_equal(pl_pdev_auth(t, tok + 1, &d), PL_NOTFOUND);

    /* the secret half is stored nowhere */
    s.needle = tok + PL_PSEL_LEN + 1;
    s.found = 0;
    assert_int_equal(pl_store_scan(t, PL_T_PDEVID, "", 0, raw_visit, &s), PL_OK);
    assert_int_equal(pl_store_scan(t, PL_T_PDEV, "", 0, raw_visit, &s), PL_OK);
    assert_int_equal(s.found, 0);

    assert_int_equal(pl_pdev_list(t, ALICE, collect_dev, &c), PL_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[0], "laptop");
    assert_string_equal(c.name[1], "phone");
    c.n = 0;
    assert_int_equal(pl_pdev_list(t, NULL, collect_dev, &c), PL_OK);
    assert_int_equal(c.n, 3);

    assert_int_equal(pl_pdev_del(t, ALICE, "phone"), PL_OK);
    assert_int_equal(pl_pdev_auth(t, tok, &d), PL_NOTFOUND);
    assert_int_equal(pl_pdev_del(t, ALICE, "phone"), PL_NOTFOUND);
    assert_int_equal(pl_pdev_auth(t, tok2, &d), PL_OK);
    tc(t);
}

/* ---- the seed's Fig. 5 --------------------------------------------------- */

static void test_fig5(void **state)
{
    struct fx *f = *state;
    struct pl_pdev d;
    struct pl_pmsg m1, m2;
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];

    add_dev(f, ALICE, "phone", &d);
    put_msg(f, ALICE, "Subject: one\r\n\r\nfirst\r\n", NULL, 100, &m1);
    put_msg(f, ALICE, "Subject: two\r\n\r\nsecond\r\n", NULL, 101, &m2);
    assert_true(m1.seq < m2.seq);
    assert_string_not_equal(m1.id, m2.id);

    /* get(first) -> msg 1, next = msg 2 */
    assert_int_equal(get(f, &d, NULL, got, next, "Subject: one"), PL_OK);
    assert_string_equal(got, m1.id);
    assert_string_equal(next, m2.id);
    sent(f, &d, m1.id);
    /* asked again before the ack: the same message */
    assert_int_equal(get(f, &d, NULL, got, next, "Subject: one"), PL_OK);
    assert_string_equal(got, m1.id);

    /* get(2)+ack(1): msg 2 is sent first, next = none, then 1 is deleted */
    assert_int_equal(get(f, &d, m2.id, got, next, "Subject: two"), PL_OK);
    assert_string_equal(got, m2.id);
    assert_string_equal(next, "");
    sent(f, &d, m2.id);
    assert_int_equal(ack(f, &d, m1.id, PL_PDISP_DELETE, 102), PL_PACK_OK);
    assert_int_equal(get(f, &d, m1.id, got, next, NULL), PL_NOTFOUND);
    assert_false(msg_exists(f, m1.id));     /* no other device needs it */
    assert_int_equal(get(f, &d, NULL, got, next, NULL), PL_OK);
    assert_string_equal(got, m2.id);

    /* ack(2) alone: both gone */
    assert_int_equal(ack(f, &d, m2.id, PL_PDISP_DELETE, 103), PL_PACK_OK);
    assert_false(msg_exists(f, m2.id));
    assert_int_equal(get(f, &d, NULL, got, next, NULL), PL_NOTFOUND);
    /* the answer to ack(2) was lost and the device says it again */
    assert_int_equal(ack(f, &d, m2.id, PL_PDISP_DELETE, 104), PL_PACK_DONE);
}

/* ---- two devices, each its own cursor; the state survives a reopen ------ */

struct row { char id[PL_PID_LEN + 1]; char st[4]; };
struct rows { int n; struct row r[8]; };

static int collect_msg(void *ctx, const struct pl_pmsg *m, const struct pl_pdstate *st, size_t n)
{
    struct rows *c = ctx;
    assert_int_equal(n, 2);
    assert_string_equal(st[0].name, "laptop");
    assert_string_equal(st[1].name, "phone");
    if (c->n < 8) {
        memcpy(c->r[c->n].id, m->id, sizeof(m->id));
        c->r[c->n].st[0] = st[0].state;
        c->r[c->n].st[1] = st[1].state;
        c->r[c->n].st[2] = '\0';
    }
    c->n++;
    return 0;
}

static void drain(struct fx *f, const struct pl_pdev *d, struct pl_pmsg *m, int n)
{
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    for (int i = 0; i < n; i++) {
        assert_int_equal(get(f, d, i ? m[i].id : NULL, got, next, NULL), PL_OK);
        assert_string_equal(got, m[i].id);
        assert_string_equal(next, i + 1 < n ? m[i + 1].id : "");
        sent(f, d, got);
        if (i)
            assert_int_equal(ack(f, d, m[i - 1].id, PL_PDISP_DELETE, 200), PL_PACK_OK);
    }
    assert_int_equal(ack(f, d, m[n - 1].id, PL_PDISP_DELETE, 200), PL_PACK_OK);
}

static void test_two_devices(void **state)
{
    struct fx *f = *state;
    struct pl_pdev phone, laptop;
    struct pl_pmsg m[3], meta;
    struct rows c = {0};
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    unsigned n;
    pl_txn *t;

    add_dev(f, ALICE, "phone", &phone);
    add_dev(f, ALICE, "laptop", &laptop);
    for (int i = 0; i < 3; i++)
        put_msg(f, ALICE, "Subject: m\r\n\r\nbody\r\n", NULL, 100 + i, &m[i]);
    drain(f, &phone, m, 3);
    assert_int_equal(get(f, &phone, NULL, got, next, NULL), PL_NOTFOUND);
    /* the laptop has not moved: everything waits for it, in order */
    assert_int_equal(get(f, &laptop, NULL, got, next, NULL), PL_OK);
    assert_string_equal(got, m[0].id);
    assert_string_equal(next, m[1].id);
    t = tb(f);
    assert_int_equal(pl_pmsg_meta(t, m[0].id, &meta, 0), PL_OK);
    assert_int_equal(meta.queued, 1);
    tc(t);
    sent(f, &laptop, m[0].id);

    /* closed and reopened: devices, queue and the sent mark are intact */
    pl_store_close(f->s);
    fx_open(f);
    assert_int_equal(ack(f, &laptop, m[0].id, PL_PDISP_MOVE, 300), PL_PACK_OK);
    assert_true(msg_exists(f, m[0].id));    /* kept: in the laptop's processed store */
    assert_int_equal(get(f, &laptop, NULL, got, next, NULL), PL_OK);
    assert_string_equal(got, m[1].id);
    t = tb(f);
    assert_int_equal(pl_pmsg_list(t, ALICE, collect_msg, &c), PL_OK);
    tc(t);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.r[0].id, m[0].id);
    assert_string_equal(c.r[0].st, "MA");   /* laptop moved, phone acked */
    assert_string_equal(c.r[1].st, "WA");
    assert_string_equal(c.r[2].st, "WA");

    t = tb(f);
    assert_int_equal(pl_pmsg_purge_processed(t, 300, &n), PL_OK);
    assert_int_equal(n, 0);                  /* moved at 300: not before 300 */
    assert_int_equal(pl_pmsg_purge_processed(t, 301, &n), PL_OK);
    assert_int_equal(n, 1);
    tc(t);
    assert_false(msg_exists(f, m[0].id));
    assert_true(msg_exists(f, m[1].id));
}

/* ---- refused acknowledgements -------------------------------------------- */

static void test_ack_refused(void **state)
{
    struct fx *f = *state;
    struct pl_pdev alice, bob, late;
    struct pl_pmsg ma, mb;
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    pl_txn *t;

    add_dev(f, ALICE, "phone", &alice);
    add_dev(f, BOB, "phone", &bob);
    put_msg(f, ALICE, "Subject: a\r\n\r\na\r\n", NULL, 100, &ma);
    put_msg(f, BOB, "Subject: b\r\n\r\nb\r\n", NULL, 100, &mb);
    assert_int_equal(ma.seq, 1);             /* each user has his own order */
    assert_int_equal(mb.seq, 1);
    add_dev(f, ALICE, "late", &late);        /* added after ma arrived */

    assert_int_equal(ack(f, &alice, "0123456789abcdef0123456789abcdef", PL_PDISP_DELETE, 1),
                     PL_PACK_UNKNOWN);
    assert_int_equal(ack(f, &alice, "first", PL_PDISP_DELETE, 1), PL_PACK_UNKNOWN);
    assert_int_equal(ack(f, &alice, mb.id, PL_PDISP_DELETE, 1), PL_PACK_FOREIGN);
    assert_int_equal(ack(f, &alice, ma.id, PL_PDISP_DELETE, 1), PL_PACK_NOTSENT);
    assert_int_equal(ack(f, &late, ma.id, PL_PDISP_DELETE, 1), PL_PACK_NOTSENT);
    /* another user's id cannot be fetched or marked either */
    assert_int_equal(get(f, &alice, mb.id, got, next, NULL), PL_NOTFOUND);
    t = tb(f);
    assert_int_equal(pl_pq_sent(t, &alice, mb.id, 5), PL_NOTFOUND);
    assert_int_equal(pl_pq_sent(t, &late, ma.id, 5), PL_NOTFOUND);
    tc(t);
    assert_int_equal(get(f, &late, NULL, got, next, NULL), PL_NOTFOUND);
    /* nothing of that changed anything */
    assert_true(msg_exists(f, ma.id));
    assert_true(msg_exists(f, mb.id));
    assert_int_equal(get(f, &bob, NULL, got, next, "Subject: b"), PL_OK);
    assert_string_equal(got, mb.id);

    sent(f, &alice, ma.id);
    assert_int_equal(ack(f, &alice, ma.id, PL_PDISP_MOVE, 2), PL_PACK_OK);
    assert_int_equal(ack(f, &alice, ma.id, PL_PDISP_MOVE, 3), PL_PACK_DONE);
    assert_int_equal(ack(f, &alice, ma.id, PL_PDISP_DELETE, 3), PL_PACK_DONE);
    assert_true(msg_exists(f, ma.id));       /* the move keeps it */
    t = tb(f);
    unsigned n;
    assert_int_equal(pl_pack_purge(t, 3, &n), PL_OK);
    assert_int_equal(n, 1);
    tc(t);
}

/* ---- withdrawal (the mirror's delete mode) ------------------------------- */

static void test_withdraw(void **state)
{
    struct fx *f = *state;
    struct pl_pdev phone, laptop;
    struct pl_pmsg m1, m2;
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    unsigned n = 9;
    pl_txn *t;

    add_dev(f, ALICE, "phone", &phone);
    add_dev(f, ALICE, "laptop", &laptop);
    add_dev(f, BOB, "phone", &(struct pl_pdev){0});
    put_msg(f, ALICE, "Subject: 1\r\n\r\n1\r\n", "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", 100, &m1);
    put_msg(f, ALICE, "Subject: 2\r\n\r\n2\r\n", NULL, 101, &m2);
    assert_int_equal(get(f, &phone, NULL, got, next, NULL), PL_OK);
    sent(f, &phone, m1.id);

    t = tb(f);
    assert_int_equal(pl_pmsg_withdraw(t, BOB, m1.id, &n), PL_NOTFOUND);     /* not bob's */
    assert_int_equal(pl_pmsg_withdraw(t, ALICE, "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", &n), PL_OK);
    assert_int_equal(n, 1);                  /* the laptop's; the phone has it */
    tc(t);
    assert_int_equal(get(f, &laptop, NULL, got, next, NULL), PL_OK);
    assert_string_equal(got, m2.id);
    assert_int_equal(ack(f, &laptop, m1.id, PL_PDISP_DELETE, 5), PL_PACK_NOTSENT);
    assert_int_equal(get(f, &phone, NULL, got, next, NULL), PL_OK);
    assert_string_equal(got, m1.id);
    assert_int_equal(ack(f, &phone, m1.id, PL_PDISP_DELETE, 5), PL_PACK_OK);
    assert_false(msg_exists(f, m1.id));

    t = tb(f);
    assert_int_equal(pl_pmsg_withdraw(t, ALICE, m2.id, &n), PL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pl_pmsg_withdraw(t, ALICE, "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", &n),
                     PL_NOTFOUND);
    tc(t);
    assert_false(msg_exists(f, m2.id));
    assert_int_equal(get(f, &phone, NULL, got, next, NULL), PL_NOTFOUND);
    assert_int_equal(get(f, &laptop, NULL, got, next, NULL), PL_NOTFOUND);
}

/* ---- retention ------------------------------------------------------------ */

struct over { int n; char id[8][PL_PID_LEN + 1]; int why[8]; char dev[8][16]; };

static int collect_over(void *ctx, const struct pl_pmsg *m, const char *device, int64_t when,
                        enum pl_push_over why)
{
    struct over *o = ctx;
    (void)when;
    if (o->n < 8) {
        memcpy(o->id[o->n], m->id, sizeof(m->id));
        o->why[o->n] = why;
        snprintf(o->dev[o->n], sizeof(o->dev[0]), "%s", device);
    }
    o->n++;
    return 0;
}

static void over(struct fx *f, const struct pl_push_limits *l, int64_t now, struct over *o)
{
    pl_txn *t = tb(f);
    memset(o, 0, sizeof(*o));
    assert_int_equal(pl_push_over(t, ALICE, l, now, collect_over, o), PL_OK);
    pl_txn_abort(t);
}

static void test_retention(void **state)
{
    struct fx *f = *state;
    struct pl_pdev d;
    struct pl_pmsg m[5];
    struct pl_push_usage u;
    struct over o;
    char body[64];
    unsigned n;
    pl_txn *t;

    add_dev(f, ALICE, "phone", &d);
    for (int i = 0; i < 5; i++) {            /* sizes 10, 20, ..., 50 */
        memset(body, 'a' + i, sizeof(body));
        body[10 * (i + 1)] = '\0';
        put_msg(f, ALICE, body, NULL, 100 * (i + 1), &m[i]);
    }
    t = tb(f);
    assert_int_equal(pl_push_usage(t, ALICE, &u), PL_OK);
    pl_txn_abort(t);
    assert_int_equal(u.q_count, 5);
    assert_int_equal(u.q_bytes, 150);
    assert_int_equal(u.q_oldest, 100);
    assert_int_equal(u.p_count, 0);

    over(f, &(struct pl_push_limits){.max_count = 3}, 600, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.id[0], m[0].id);
    assert_string_equal(o.id[1], m[1].id);
    assert_int_equal(o.why[0], PL_OVER_COUNT);
    over(f, &(struct pl_push_limits){.max_bytes = 100}, 600, &o);
    assert_int_equal(o.n, 3);                /* 150 -> 140 -> 120 -> 90 */
    assert_string_equal(o.id[2], m[2].id);
    assert_int_equal(o.why[2], PL_OVER_BYTES);
    over(f, &(struct pl_push_limits){.max_age = 250}, 600, &o);
    assert_int_equal(o.n, 3);                /* arrived 100, 200, 300 */
    assert_int_equal(o.why[0], PL_OVER_AGE);
    over(f, &(struct pl_push_limits){.max_count = 10, .max_bytes = 1000, .max_age = 1000}, 600, &o);
    assert_int_equal(o.n, 0);

    /* processed: m[1] moved at 900, m[0] at 1000 -> oldest first */
    sent(f, &d, m[0].id);
    sent(f, &d, m[1].id);
    assert_int_equal(ack(f, &d, m[1].id, PL_PDISP_MOVE, 900), PL_PACK_OK);
    assert_int_equal(ack(f, &d, m[0].id, PL_PDISP_MOVE, 1000), PL_PACK_OK);
    over(f, &(struct pl_push_limits){.processed_age = 50}, 1000, &o);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.id[0], m[1].id);
    assert_string_equal(o.dev[0], "phone");
    assert_int_equal(o.why[0], PL_OVER_PROCESSED);
    over(f, &(struct pl_push_limits){.processed_age = 50}, 2000, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.id[0], m[1].id);
    assert_string_equal(o.id[1], m[0].id);
    t = tb(f);
    assert_int_equal(pl_push_usage(t, ALICE, &u), PL_OK);
    assert_int_equal(u.q_count, 3);
    assert_int_equal(u.q_bytes, 120);
    assert_int_equal(u.q_oldest, 300);
    assert_int_equal(u.p_count, 2);
    assert_int_equal(u.p_bytes, 30);
    assert_int_equal(u.p_oldest, 900);

    /* what the daemon then does: bounce/drop m[2], purge what is too old */
    assert_int_equal(pl_pmsg_drop(t, m[2].id), PL_OK);
    assert_int_equal(pl_pmsg_purge_processed(t, 950, &n), PL_OK);
    assert_int_equal(n, 1);
    tc(t);
    assert_false(msg_exists(f, m[2].id));
    assert_false(msg_exists(f, m[1].id));
    assert_true(msg_exists(f, m[0].id));
    drain(f, &d, m + 3, 2);                  /* m[2] no longer in the chain */
}

/* ---- removing devices, refused puts, a large message ---------------------- */

static void test_device_del_and_put(void **state)
{
    struct fx *f = *state;
    struct pl_pdev phone, laptop;
    struct pl_pmsg m1, meta;
    struct pl_pmsg_in in = {"carol@example.com", "x", 1, NULL, 0, NULL, NULL};
    pl_txn *t;

    add_dev(f, ALICE, "phone", &phone);
    add_dev(f, ALICE, "laptop", &laptop);
    put_msg(f, ALICE, "Subject: 1\r\n\r\n1\r\n", NULL, 100, &m1);
    t = tb(f);
    assert_int_equal(pl_pmsg_put(t, &in, 1, NULL), PL_NOTFOUND);    /* carol has no device */
    in.user = "not an address";
    assert_int_equal(pl_pmsg_put(t, &in, 1, NULL), PL_ERR);
    in.user = ALICE;
    in.len = 0;
    assert_int_equal(pl_pmsg_put(t, &in, 1, NULL), PL_ERR);
    in.len = 1;
    in.type = "text/plain; charset=x";
    assert_int_equal(pl_pmsg_put(t, &in, 1, NULL), PL_ERR);
    assert_int_equal(pl_pdev_del(t, ALICE, "laptop"), PL_OK);
    assert_int_equal(pl_pmsg_meta(t, m1.id, &meta, 0), PL_OK);
    assert_int_equal(meta.queued, 1);
    assert_string_equal(meta.type, "message/rfc822");
    assert_string_equal(meta.sender, "sender@example.net");
    assert_int_equal(meta.date, 95);
    assert_int_equal(pl_pdev_del(t, ALICE, "phone"), PL_OK);
    tc(t);
    assert_false(msg_exists(f, m1.id));
}

static void test_large_message(void **state)
{
    struct fx *f = *state;
    struct pl_pdev d;
    size_t len = 5u << 20;                   /* 5 MB, beyond a 1 MB log file */
    char *body = malloc(len), got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    struct pl_pmsg_in in = {ALICE, body, len, NULL, 0, NULL, NULL};
    struct pl_pmsg m;
    void *b;
    size_t blen;
    pl_txn *t;

    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 23);
    add_dev(f, ALICE, "phone", &d);
    t = tb(f);
    assert_int_equal(pl_pmsg_put(t, &in, 1, &m), PL_OK);
    tc(t);
    assert_int_equal(get(f, &d, NULL, got, next, NULL), PL_OK);
    t = tb(f);
    assert_int_equal(pl_pmsg_get(t, got, &b, &blen), PL_OK);
    pl_txn_abort(t);
    assert_int_equal(blen, len);
    assert_memory_equal(b, body, len);
    free(b);
    free(body);
}

/* ---- the chain over gaps and deep unacknowledged queues -------------------- */

static void test_sparse_chain(void **state)
{
    struct fx *f = *state;
    static const int keep[] = {5, 16, 17, 255, 256, 257, 4096, 4100};
    const int n = 4100, nk = (int)(sizeof(keep) / sizeof(keep[0]));
    struct pl_pdev d;
    struct pl_pmsg *m = calloc((size_t)n + 1, sizeof(*m));
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    pl_txn *t;
    int k = 0;

    add_dev(f, ALICE, "phone", &d);
    t = tb(f);                          /* one transaction: fast */
    for (int i = 1; i <= n; i++) {
        struct pl_pmsg_in in = {ALICE, "x", 1, NULL, 0, NULL, NULL};
        assert_int_equal(pl_pmsg_put(t, &in, i, &m[i]), PL_OK);
        assert_int_equal(m[i].seq, (uint64_t)i);
    }
    for (int i = 1; i <= n; i++) {
        if (k < nk && keep[k] == i) {
            k++;
            continue;
        }
        assert_int_equal(pl_pmsg_withdraw(t, ALICE, m[i].id, NULL), PL_OK);
    }
    tc(t);
    /* first -> 5 -> 16 -> ... -> 4100 -> none, nothing acknowledged */
    assert_int_equal(get(f, &d, NULL, got, next, NULL), PL_OK);
    assert_string_equal(got, m[5].id);
    for (k = 0; k < nk; k++) {
        assert_int_equal(get(f, &d, m[keep[k]].id, got, next, NULL), PL_OK);
        assert_string_equal(got, m[keep[k]].id);
        assert_string_equal(next, k + 1 < nk ? m[keep[k + 1]].id : "");
        sent(f, &d, got);
    }
    /* acknowledging from the end keeps the chain of the rest */
    assert_int_equal(ack(f, &d, m[4100].id, PL_PDISP_DELETE, 1), PL_PACK_OK);
    assert_int_equal(ack(f, &d, m[256].id, PL_PDISP_DELETE, 1), PL_PACK_OK);
    assert_int_equal(get(f, &d, m[255].id, got, next, NULL), PL_OK);
    assert_string_equal(next, m[257].id);
    assert_int_equal(get(f, &d, m[4096].id, got, next, NULL), PL_OK);
    assert_string_equal(next, "");
    free(m);
}

/* ---- random operations against a model ------------------------------------- */

#define MM 64
/* receipts of deliveries (push_intake.c): same bytes, same digest; a
 * receipt is found until it is older than `since`, and purged by age */
static void test_intake_receipts(void **state)
{
    struct fx *f = *state;
    char d1[PL_PIN_DIGEST_LEN + 1], d2[PL_PIN_DIGEST_LEN + 1], d3[PL_PIN_DIGEST_LEN + 1];
    char id[PL_PID_LEN + 1];
    const char *m = "Subject: x\r\n\r\nbody\r\n";
    unsigned n = 0;
    pl_txn *t;
    assert_int_equal(pl_pin_digest("bob@example.test", "a@b.test", m, strlen(m), d1), 0);
    assert_int_equal(pl_pin_digest("bob@example.test", "a@b.test", m, strlen(m), d2), 0);
    assert_string_equal(d1, d2);
    assert_int_equal(pl_pin_digest("bob@example.test", "", m, strlen(m), d3), 0);
    assert_string_not_equal(d1, d3);              /* the sender counts */
    assert_int_equal(pl_pin_digest("carol@example.test", "a@b.test", m, strlen(m), d3), 0);
    assert_string_not_equal(d1, d3);              /* the user counts */
    t = tb(f);
    assert_int_equal(pl_pin_get(t, "bob@example.test", d1, 0, id, sizeof(id)), PL_NOTFOUND);
    assert_int_equal(pl_pin_put(t, "Bob@Example.Test", d1, "0123456789abcdef0123456789abcdef",
                                1000), PL_OK);
    assert_int_equal(pl_pin_put(t, "bob@example.test", d1, "short", 1000), PL_ERR);
    tc(t);
    t = tb(f);
    assert_int_equal(pl_pin_get(t, "bob@example.test", d1, 900, id, sizeof(id)), PL_OK);
    assert_string_equal(id, "0123456789abcdef0123456789abcdef");
    assert_int_equal(pl_pin_get(t, "bob@example.test", d1, 1001, id, sizeof(id)), PL_NOTFOUND);
    assert_int_equal(pl_pin_get(t, "carol@example.test", d1, 0, id, sizeof(id)), PL_NOTFOUND);
    assert_int_equal(pl_pin_purge(t, 1000, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pl_pin_purge(t, 1001, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pl_pin_get(t, "bob@example.test", d1, 0, id, sizeof(id)), PL_NOTFOUND);
    tc(t);
}

struct model {
    int n;                              /* messages put */
    struct pl_pmsg m[MM];
    char st[2][MM];                     /* per device: 0 gone, 'W', 'S' */
    int kept[MM];
};

static void model_check(struct fx *f, struct pl_pdev *d, struct model *md)
{
    char got[PL_PID_LEN + 1], next[PL_PID_LEN + 1];
    for (int k = 0; k < 2; k++) {       /* the chain is the model's queue, in order */
        int i = 0, rc = get(f, &d[k], NULL, got, next, NULL);
        for (;; i++) {
            while (i < md->n && md->st[k][i] == 0)
                i++;
            if (i == md->n) {
                assert_int_equal(rc, PL_NOTFOUND);
                break;
            }
            assert_int_equal(rc, PL_OK);
            assert_string_equal(got, md->m[i].id);
            if (next[0] == '\0')
                rc = PL_NOTFOUND;
            else
                rc = get(f, &d[k], next, got, next, NULL);
        }
    }
    for (int i = 0; i < md->n; i++) {
        int q = (md->st[0][i] != 0) + (md->st[1][i] != 0);
        assert_int_equal(msg_exists(f, md->m[i].id), q + md->kept[i] > 0);
    }
}

static void model_step(struct fx *f, struct pl_pdev *d, struct model *md, unsigned r)
{
    int k = (int)(r >> 4) & 1, i = md->n ? (int)((r >> 5) % (unsigned)md->n) : 0;
    char *st = &md->st[k][i];
    switch (r % 5) {
    case 0:
        if (md->n < MM) {
            put_msg(f, ALICE, "Subject: r\r\n\r\nr\r\n", NULL, 100 + md->n, &md->m[md->n]);
            md->st[0][md->n] = md->st[1][md->n] = 'W';
            md->n++;
        }
        break;
    case 1:
    case 2:
        if (md->n && *st) {
            sent(f, &d[k], md->m[i].id);
            *st = 'S';
        }
        break;
    case 3:
        if (md->n) {
            int want = *st == 'S' ? PL_PACK_OK : *st == 'W' ? PL_PACK_NOTSENT : -1;
            int rc = ack(f, &d[k], md->m[i].id, (r >> 12) & 1 ? PL_PDISP_MOVE : PL_PDISP_DELETE, 1);
            if (want >= 0)
                assert_int_equal(rc, want);
            else                        /* acked before: DONE; withdrawn: NOTSENT/UNKNOWN */
                assert_true(rc == PL_PACK_DONE || rc == PL_PACK_NOTSENT || rc == PL_PACK_UNKNOWN);
            if (want == PL_PACK_OK) {
                md->kept[i] += (r >> 12) & 1;
                *st = 0;
            }
        }
        break;
    case 4:
        if (md->n && (r >> 13) % 4 == 0) {
            pl_txn *t = tb(f);
            unsigned n;
            int rc = pl_pmsg_withdraw(t, ALICE, md->m[i].id, &n);
            tc(t);
            assert_true(rc == PL_OK || rc == PL_NOTFOUND);
            for (int j = 0; j < 2; j++)
                if (md->st[j][i] == 'W')
                    md->st[j][i] = 0;
        }
        break;
    }
}

static void test_model(void **state)
{
    struct fx *f = *state;
    struct pl_pdev d[2];
    struct model *md = calloc(1, sizeof(*md));
    unsigned seed = 12345;
    add_dev(f, ALICE, "a", &d[0]);
    add_dev(f, ALICE, "b", &d[1]);
    for (int step = 0; step < 400; step++) {
        seed = seed * 1103515245u + 12345u;
        model_step(f, d, md, seed >> 8);
        if (step % 10 == 9)
            model_check(f, d, md);
    }
    model_check(f, d, md);
    free(md);
}

/* ---- a writer killed while storing mail ------------------------------------ */

static void writer(const char *dir, int fd)
{
    struct pl_store_opts o = {0};
    pl_store *s;
    char err[256], body[256];
    o.home = dir;
    if (pl_store_open(&s, &o, err, sizeof(err)) != PL_OK)
        _exit(2);
    for (int i = 0;; i++) {
        struct pl_pmsg_in in = {ALICE, body, 0, NULL, i, NULL, NULL};
        struct pl_pmsg m;
        pl_txn *t;
        int n = snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
        in.len = (size_t)n;
        if (pl_store_begin(s, &t, PL_TXN_SYNC) != PL_OK)
            continue;
        if (pl_pmsg_put(t, &in, i, &m) != PL_OK) {
            pl_txn_abort(t);
            continue;
        }
        if (pl_txn_commit(t) != PL_OK)
            continue;
        n = snprintf(body, sizeof(body), "%s %d\n", m.id, i);
        if (write(fd, body, (size_t)n) != n)
            _exit(3);
    }
}

struct count { pl_txn *t; unsigned n; };

static int count_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct count *c = ctx;
    char id[PL_PID_LEN + 1];
    void *b;
    size_t len;
    (void)v, (void)vl;
    assert_int_equal(kl, PL_PID_LEN);
    memcpy(id, k, kl);
    id[kl] = '\0';
    assert_int_equal(pl_pmsg_get(c->t, id, &b, &len), PL_OK);   /* never a record alone */
    free(b);
    c->n++;
    return 0;
}

static void test_killed_writer(void **state)
{
    struct fx *f = *state;
    struct pl_pdev d;
    struct count c = {0};
    char buf[8192], got[PL_PID_LEN + 1], next[PL_PID_LEN + 1], want[PL_PID_LEN + 1];
    size_t have = 0;
    int fds[2], lines = 0, status;
    pid_t pid;
    pl_txn *t;

    add_dev(f, ALICE, "phone", &d);
    pl_store_close(f->s);
    f->s = NULL;
    assert_int_equal(pipe(fds), 0);
    if ((pid = fork()) == 0) {
        close(fds[0]);
        writer(f->dir, fds[1]);
    }
    close(fds[1]);
    while (lines < 40) {                     /* 40 commits reported: kill it mid-stream */
        struct pollfd p = {fds[0], POLLIN, 0};
        ssize_t r;
        assert_true(poll(&p, 1, 30000) == 1);
        r = read(fds[0], buf + have, sizeof(buf) - 1 - have);
        assert_true(r > 0);
        for (ssize_t i = 0; i < r; i++)
            lines += buf[have + (size_t)i] == '\n';
        have += (size_t)r;
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* what arrived after the 40th line and before the kill counts too */
    for (ssize_t r; (r = read(fds[0], buf + have, sizeof(buf) - 1 - have)) > 0;)
        have += (size_t)r;
    close(fds[0]);
    buf[have] = '\0';
    lines = 0;
    for (size_t i = 0; i < have; i++)
        lines += buf[i] == '\n';

    fx_open(f);                              /* recovers the environment */
    t = tb(f);
    c.t = t;
    assert_int_equal(pl_store_scan(t, PL_T_PMSG, "", 0, count_visit, &c), PL_OK);
    pl_txn_abort(t);
    /* every reported message in order, whole; at most one more (committed
     * just before the kill, not yet reported); no gap, nothing twice */
    {
        char *line = buf;
        unsigned drained = 0;
        const char *prev = NULL;
        assert_true(c.n >= (unsigned)lines && c.n <= (unsigned)lines + 1);
        for (unsigned i = 0; i < c.n; i++) {
            assert_int_equal(get(f, &d, prev ? want : NULL, got, next, NULL), PL_OK);
            if (*line) {
                assert_memory_equal(line, got, PL_PID_LEN);
                line = strchr(line, '\n') + 1;
            }
            sent(f, &d, got);
            assert_int_equal(ack(f, &d, got, PL_PDISP_DELETE, 1), PL_PACK_OK);
            memcpy(want, next, sizeof(want));
            prev = want;
            drained++;
            if (next[0] == '\0')
                break;
        }
        assert_int_equal(drained, c.n);
    }
    assert_int_equal(get(f, &d, NULL, got, next, NULL), PL_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test_setup_teardown(test_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fig5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_withdraw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_del_and_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intake_receipts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer, setup, teardown),
    };
    pl_log_open("test_push_store", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
