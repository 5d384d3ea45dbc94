/* test_policy.c -- unit tests of postlink-policyd's parts: the Postfix
 * SMTPD policy protocol read and answered over a socketpair
 * (policy/policy_request.c), sync_peers certificate fingerprints and lists
 * (lib/peers.c), and the peerq records of mail from certificate-trusted
 * peers in a real temporary store (state/peerq.c). */
#include "config.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "peerq.h"
#include "peers.h"
#include "policy_request.h"
#include "testdir.h"

#define T0 1795424400LL
#define IP "192.0.2.7"
#define MD5_LC "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
#define MD5_UC "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define SHA1_NC "0123456789abcdef0123456789ABCDEF01234567"
#define SHA1_UC "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67"
#define H16_UC "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9"
#define H16_LC "0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9"
#define SHA256_UC H16_UC ":" H16_UC
#define SHA256_LC H16_LC ":" H16_LC
#define SHA256_NC "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
#define OTHER_UC "FF:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:" H16_UC
#define Q32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* ---- the policy protocol over a socketpair ------------------------------ */

/* fd[0] is the server's end (c.fd), fd[1] Postfix's; child, if not 0, a
 * forked writer that owns fd[1]. */
struct pfx { int fd[2]; pid_t child; struct pl_policy_conn c; struct pl_policy_req q; char err[256]; };

#define PARSE(s, len) pl_policy_parse(s, len, &f->q, f->err, sizeof(f->err))
#define GET(name) pl_policy_get(&f->q, name)

/* End the writer, close both ends and, unless last, connect anew. */
static void reconnect(struct pfx *f, int last)
{
    if (f->child > 0) {
        kill(f->child, SIGKILL);
        waitpid(f->child, NULL, 0);
    }
    f->child = 0;
    for (int i = 0; i < 2; i++)
        if (f->fd[i] >= 0)
            close(f->fd[i]);
    f->c.len = 0;
    if (!last) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->fd), 0);
        f->c.fd = f->fd[0];
    }
}

static int setup_sock(void **state)
{
    struct pfx *f = calloc(1, sizeof(*f));
    f->fd[0] = f->fd[1] = -1;
    reconnect(f, 0);
    *state = f;
    return 0;
}

static int teardown_sock(void **state)
{
    reconnect(*state, 1);
    free(*state);
    return 0;
}

static void hang_up(struct pfx *f)
{
    close(f->fd[1]);
    f->fd[1] = -1;
}

static void send_str(struct pfx *f, const char *s)
{
    assert_int_equal(write(f->fd[1], s, strlen(s)), (ssize_t)strlen(s));
}

/* A forked writer sends the chunks 50 ms apart, then hangs up (or, with
 * linger, waits to be killed). */
static void feed(struct pfx *f, const char *const *chunk, size_t len, int n, int linger)
{
    assert_true((f->child = fork()) >= 0);
    if (f->child == 0) {
        close(f->fd[0]);
        for (int i = 0; i < n; i++) {
            size_t off = 0, l = len ? len : strlen(chunk[i]);
            usleep(50000);
            for (ssize_t w; off < l; off += (size_t)w)
                if ((w = write(f->fd[1], chunk[i] + off, l - off)) <= 0)
                    _exit(3);
        }
        while (linger)
            pause();
        _exit(0);
    }
    hang_up(f);
}

static int rd(struct pfx *f, unsigned idle_s, volatile sig_atomic_t *stop)
{
    f->err[0] = '\0';
    return pl_policy_read(&f->c, &f->q, idle_s, stop, f->err, sizeof(f->err));
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_parse(void **state)
{
    struct pfx *f = *state;
    static const char text[] = "request=smtpd_access_policy\nprotocol_state=DATA\r\n"
                               "ccert_fingerprint=\nsasl_username=a=b\nqueue_id=4XyZ12";
    char many[PL_POLICY_MAX_ATTRS * 10];
    size_t len = 0;

    assert_int_equal(PARSE(text, sizeof(text) - 1), 0);
    assert_int_equal(f->q.n, 5);
    assert_string_equal(f->q.name[0], "request");
    assert_string_equal(GET("request"), "smtpd_access_policy");
    assert_string_equal(GET("protocol_state"), "DATA");           /* CR dropped */
    assert_string_equal(GET("ccert_fingerprint"), "");
    assert_string_equal(GET("sasl_username"), "a=b");
    assert_string_equal(GET("queue_id"), "4XyZ12");
    assert_string_equal(GET("client_address"), "");               /* absent */
    assert_string_equal(GET("queue"), "");

    assert_int_equal(PARSE("a=1\nnoequals\nb=2", 16), -1);
    assert_non_null(strstr(f->err, "noequals"));
    assert_int_equal(PARSE("=value", 6), -1);
    assert_int_equal(PARSE("a=1\n\nb=2", 8), -1);
    assert_int_equal(PARSE("a=1\0b=2", 7), -1);
    assert_int_equal(PARSE(f->c.buf, PL_POLICY_MAX_REQUEST), -1);

    for (int i = 0; i < PL_POLICY_MAX_ATTRS; i++)
        len += (size_t)sprintf(many + len, "a%d=%d\n", i, i);
    assert_int_equal(PARSE(many, len), 0);
    assert_int_equal(f->q.n, PL_POLICY_MAX_ATTRS);
    assert_string_equal(GET("a127"), "127");
    assert_int_equal(PARSE(many, len + (size_t)sprintf(many + len, "x=1")), -1);   /* one more */
}

static void test_read_reply_pipelined(void **state)
{
    struct pfx *f = *state;
    char out[64];

    send_str(f, "request=smtpd_access_policy\nqueue_id=4ABC\nclient_address=" IP "\n\n");
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_int_equal(f->q.n, 3);
    assert_string_equal(GET("queue_id"), "4ABC");
    assert_string_equal(GET("client_address"), IP);
    assert_int_equal(pl_policy_reply(&f->c, "DUNNO"), 0);
    assert_int_equal(recv(f->fd[1], out, sizeof(out), MSG_DONTWAIT), 14);
    assert_memory_equal(out, "action=DUNNO\n\n", 14);

    send_str(f, "a=1\nb=2\n\na=3\n\n");                             /* in one write */
    hang_up(f);
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_int_equal(f->q.n, 2);
    assert_string_equal(GET("a"), "1");
    assert_string_equal(GET("b"), "2");
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_int_equal(f->q.n, 1);
    assert_string_equal(GET("a"), "3");
    assert_string_equal(GET("b"), "");
    assert_int_equal(rd(f, 5, NULL), 0);                           /* EOF between requests */
}

static void test_read_split_and_empty(void **state)
{
    struct pfx *f = *state;
    static const char *const chunk[] = {"request=smtpd_", "access_policy\nqueue_", "id=Q1\n",
                                        "\n", "\n", "x=1\n", "\n"};

    feed(f, chunk, 0, 7, 0);
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_int_equal(f->q.n, 2);
    assert_string_equal(GET("request"), "smtpd_access_policy");
    assert_string_equal(GET("queue_id"), "Q1");
    assert_int_equal(rd(f, 5, NULL), 1);                           /* the empty request */
    assert_int_equal(f->q.n, 0);
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_int_equal(f->q.n, 1);
    assert_string_equal(GET("x"), "1");
    assert_int_equal(rd(f, 5, NULL), 0);
}

static void test_read_errors(void **state)
{
    struct pfx *f = *state;

    send_str(f, "request=smtpd_access_policy\nnoequals\n\n");
    assert_int_equal(rd(f, 5, NULL), -1);
    assert_non_null(strstr(f->err, "noequals"));
    reconnect(f, 0);
    send_str(f, "a=1\n\nb=2\n");                                  /* EOF mid-request */
    hang_up(f);
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_string_equal(GET("a"), "1");
    assert_int_equal(rd(f, 5, NULL), -1);
    assert_string_not_equal(f->err, "");
}

/* The largest request that fits (65534 bytes and "\n\n") is read; 65536
 * bytes without an empty line fail at once, not at the idle limit. */
static void test_read_size_limit(void **state)
{
    struct pfx *f = *state;
    static char big[PL_POLICY_MAX_REQUEST];
    const char *chunk[1] = {big};
    time_t t;

    memset(big, 'x', sizeof(big));
    memcpy(big, "big=", 4);
    memcpy(big + sizeof(big) - 2, "\n\n", 2);
    feed(f, chunk, sizeof(big), 1, 0);
    assert_int_equal(rd(f, 5, NULL), 1);
    assert_int_equal(strlen(GET("big")), sizeof(big) - 6);
    assert_int_equal(rd(f, 5, NULL), 0);

    reconnect(f, 0);
    memset(big + sizeof(big) - 2, 'x', 2);
    feed(f, chunk, sizeof(big), 1, 1);
    t = time(NULL);
    assert_int_equal(rd(f, 10, NULL), -1);
    assert_true(time(NULL) - t < 5);
    assert_non_null(strstr(f->err, "bytes or more"));
}

static void test_read_idle_and_stop(void **state)
{
    struct pfx *f = *state;
    volatile sig_atomic_t stop = 1;
    double t = mono();

    send_str(f, "a=1\n");                                          /* then silence */
    assert_int_equal(rd(f, 1, NULL), -1);
    t = mono() - t;
    assert_true(t > 0.9 && t < 1.8);
    assert_non_null(strstr(f->err, "idle"));
    assert_int_equal(rd(f, 1, &stop), 0);                          /* not -1 after 1 s */
}

/* ---- sync_peers: fingerprints and lists -------------------------------- */

static void test_fprint_norm(void **state)
{
    static const char *const good[][2] = {
        {SHA256_LC, SHA256_UC}, {SHA256_UC, SHA256_UC}, {SHA256_NC, SHA256_UC},
        {MD5_LC, MD5_UC}, {SHA1_NC, SHA1_UC},
        {SHA256_NC SHA256_NC, SHA256_UC ":" SHA256_UC},           /* SHA-512 */
    };
    static const char *const bad[] = {
        "", MD5_LC ":ab", MD5_LC + 3, SHA256_NC "ab", SHA256_NC + 1, SHA256_LC ":",
        "0a:1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8:f9",
        H16_LC ":0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8f9",
        "0g:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff",
        "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:f ",
    };
    char out[PL_FPRINT_MAX];
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(out, 0, sizeof(out));
        assert_int_equal(pl_fprint_norm(good[i][0], strlen(good[i][0]), out, sizeof(out)), 0);
        assert_string_equal(out, good[i][1]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pl_fprint_norm(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
    assert_int_equal(pl_fprint_norm(SHA256_LC, 95, out, 96), 0);   /* exact fit */
    assert_int_equal(pl_fprint_norm(SHA256_LC, 95, out, 95), -1);
}

static void test_peers(void **state)
{
    struct pl_peers p;
    char err[256] = "";
    (void)state;

    assert_int_equal(pl_peers_parse(&p, "127.0.0.2, 10.0.0.0/8,2001:db8::/32\n\t" MD5_LC
                                        "  " SHA256_LC, err, sizeof(err)), 0);
    assert_int_equal(p.nets.n, 3);
    assert_int_equal(p.nfp, 2);
    assert_string_equal(p.fp[0], MD5_UC);
    assert_string_equal(p.fp[1], SHA256_UC);
    assert_true(pl_peers_match_fprint(&p, SHA256_UC));
    assert_true(pl_peers_match_fprint(&p, SHA256_LC));
    assert_true(pl_peers_match_fprint(&p, SHA256_NC));
    assert_true(pl_peers_match_fprint(&p, MD5_LC));
    assert_false(pl_peers_match_fprint(&p, OTHER_UC));
    assert_false(pl_peers_match_fprint(&p, SHA1_UC));
    assert_false(pl_peers_match_fprint(&p, ""));
    assert_false(pl_peers_match_fprint(&p, NULL));
    assert_false(pl_peers_match_fprint(&p, "127.0.0.2"));
    pl_peers_free(&p);

    assert_int_equal(pl_peers_parse(&p, " ", err, sizeof(err)), 0);
    assert_int_equal(p.nets.n + p.nfp, 0);
    assert_int_equal(pl_peers_parse(&p, "127.0.0.2, 0A:1B:zz, " MD5_LC, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"0A:1B:zz\""));
    assert_int_equal(p.nets.n + p.nfp, 0);
    assert_null(p.fp);
    assert_int_equal(pl_peers_parse(&p, MD5_LC ",10.0.0.0/33", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"10.0.0.0/33\""));
}

/* ---- peerq in a real store --------------------------------------------- */

struct sfx { char dir[64]; pl_store *s; };

static int setup_store(void **state)
{
    struct sfx *f = calloc(1, sizeof(*f));
    struct pl_store_opts o = {0};
    char err[256];
    pl_log_open("test_policy", PL_LOG_STDERR, 0);
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    o.home = f->dir;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
    *state = f;
    return 0;
}

static int teardown_store(void **state)
{
    struct sfx *f = *state;
    pl_store_close(f->s);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

static pl_txn *begin(struct sfx *f)
{
    pl_txn *t;
    assert_int_equal(pl_store_begin(f->s, &t, PL_TXN_SYNC), PL_OK);
    return t;
}

#define PORT 40001u

struct mk { const char *qid, *client, *fp; unsigned port; int64_t now; int rc; };

static int mark_fn(pl_txn *t, void *ctx)
{
    struct mk *m = ctx;
    m->rc = pl_peerq_mark(t, m->qid, m->client, m->port, m->fp, m->now);
    return PL_OK;                      /* commit whatever happened */
}

static int mark(struct sfx *f, const char *qid, const char *client, const char *fp, int64_t now)
{
    struct mk m = {qid, client, fp, PORT, now, -99};
    assert_int_equal(pl_store_run(f->s, PL_TXN_SYNC, mark_fn, &m), PL_OK);
    return m.rc;
}

struct tk { const char *qid, *client; unsigned port; int64_t now; int trusted; char fp[PL_FPRINT_MAX]; };

static int take_fn(pl_txn *t, void *ctx)
{
    struct tk *k = ctx;
    return pl_peerq_take(t, k->qid, k->client, k->port, k->now, &k->trusted, k->fp, sizeof(k->fp));
}

/* Through pl_store_run as the milter does: 1 if trusted, 0 if not; fp, if
 * given, gets the fingerprint or "-". */
static int take_port(struct sfx *f, const char *qid, const char *client, unsigned port,
                     int64_t now, char *fp)
{
    struct tk k = {qid, client, port, now, -1, "-"};
    assert_int_equal(pl_store_run(f->s, PL_TXN_SYNC, take_fn, &k), PL_OK);
    if (fp)
        strcpy(fp, k.fp);
    return k.trusted;
}

static int take(struct sfx *f, const char *qid, const char *client, int64_t now, char *fp)
{
    return take_port(f, qid, client, PORT, now, fp);
}

static unsigned purge(struct sfx *f, int64_t before)
{
    unsigned n = 999;
    pl_txn *t = begin(f);
    assert_int_equal(pl_peerq_purge(t, before, &n), PL_OK);
    assert_int_equal(pl_txn_commit(t), PL_OK);
    return n;
}

static uint64_t count(struct sfx *f)
{
    uint64_t n = 999;
    assert_int_equal(pl_store_count(f->s, "peerq", &n), PL_OK);
    return n;
}

static void test_peerq_take(void **state)
{
    struct sfx *f = *state;
    char fp[PL_FPRINT_MAX];

    assert_int_equal(mark(f, "4XyZ12AB", IP, SHA256_UC, T0), PL_OK);
    assert_int_equal(count(f), 1);
    assert_int_equal(take(f, "4XyZ12AB", IP, T0 + 10, fp), 1);
    assert_string_equal(fp, SHA256_UC);
    assert_int_equal(count(f), 0);
    assert_int_equal(take(f, "4XyZ12AB", IP, T0 + 11, NULL), 0);   /* consumed */
    assert_int_equal(take(f, "NeverMarked", IP, T0, NULL), 0);

    assert_int_equal(mark(f, "Q2", IP, MD5_UC, T0), PL_OK);
    assert_int_equal(take(f, "Q2", "2001:db8::7", T0 + 1, NULL), 0);
    assert_int_equal(count(f), 0);                                 /* deleted all the same */
    assert_int_equal(take(f, "Q2", IP, T0 + 2, NULL), 0);
    assert_int_equal(mark(f, "Q2p", IP, MD5_UC, T0), PL_OK);     /* same address, other connection */
    assert_int_equal(take_port(f, "Q2p", IP, PORT + 1, T0 + 1, NULL), 0);
    assert_int_equal(count(f), 0);

    assert_int_equal(mark(f, "Q3", IP, MD5_UC, T0), PL_OK);
    assert_int_equal(take(f, "Q3", IP, T0 + PL_PEERQ_MAX_AGE - 1, fp), 1);
    assert_string_equal(fp, MD5_UC);
    assert_int_equal(mark(f, "Q4", IP, MD5_UC, T0), PL_OK);
    assert_int_equal(take(f, "Q4", IP, T0 + PL_PEERQ_MAX_AGE + 1, fp), 0);
    assert_string_equal(fp, "-");
    assert_int_equal(count(f), 0);                                 /* the stale one too */
    assert_int_equal(mark(f, "Q5", IP, MD5_UC, T0), PL_OK);       /* "less than" the age */
    assert_int_equal(take(f, "Q5", IP, T0 + PL_PEERQ_MAX_AGE, NULL), 0);
}

static void test_peerq_bad_ids(void **state)
{
    struct sfx *f = *state;

    assert_int_equal(mark(f, "", IP, MD5_UC, T0), PL_ERR);
    assert_int_equal(mark(f, "4XyZ 12", IP, MD5_UC, T0), PL_ERR);
    assert_int_equal(mark(f, "4XyZ/12", IP, MD5_UC, T0), PL_ERR);
    assert_int_equal(mark(f, Q32 Q32 "A", IP, MD5_UC, T0), PL_ERR);   /* 65 characters */
    assert_int_equal(mark(f, "Q6", "", MD5_UC, T0), PL_ERR);
    assert_int_equal(mark(f, "Q6", IP, "AB CD", T0), PL_ERR);
    assert_int_equal(count(f), 0);
    assert_int_equal(mark(f, Q32 Q32, IP, MD5_UC, T0), PL_OK);
    assert_int_equal(count(f), 1);
    assert_int_equal(take(f, Q32 Q32 "A", IP, T0, NULL), 0);
    assert_int_equal(take(f, Q32 Q32, IP, T0, NULL), 1);
}

static void test_peerq_purge(void **state)
{
    struct sfx *f = *state;

    assert_int_equal(mark(f, "P1", "192.0.2.1", MD5_UC, T0 - 100), PL_OK);
    assert_int_equal(mark(f, "P2", "192.0.2.2", MD5_UC, T0 - 1), PL_OK);
    assert_int_equal(mark(f, "P3", "192.0.2.3", MD5_UC, T0), PL_OK);
    assert_int_equal(mark(f, "P4", "192.0.2.4", MD5_UC, T0 + 50), PL_OK);
    assert_int_equal(purge(f, T0), 2);
    assert_int_equal(count(f), 2);
    assert_int_equal(take(f, "P1", "192.0.2.1", T0, NULL), 0);
    assert_int_equal(take(f, "P2", "192.0.2.2", T0, NULL), 0);
    assert_int_equal(take(f, "P3", "192.0.2.3", T0 + 1, NULL), 1);
    assert_int_equal(purge(f, T0), 0);
    assert_int_equal(count(f), 1);
    assert_int_equal(purge(f, T0 + 51), 1);
    assert_int_equal(count(f), 0);
}

#define SOCK(t) cmocka_unit_test_setup_teardown(t, setup_sock, teardown_sock)
#define STORE(t) cmocka_unit_test_setup_teardown(t, setup_store, teardown_store)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SOCK(test_parse), SOCK(test_read_reply_pipelined), SOCK(test_read_split_and_empty),
        SOCK(test_read_errors), SOCK(test_read_size_limit), SOCK(test_read_idle_and_stop),
        cmocka_unit_test(test_fprint_norm), cmocka_unit_test(test_peers),
        STORE(test_peerq_take), STORE(test_peerq_bad_ids), STORE(test_peerq_purge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
