/* milter_server.c -- the libmilter variant of the server (milter_server.h).
 *
 * libmilter's smfi_main() starts a thread of its own that sigwait()s for
 * SIGHUP, SIGTERM and SIGINT and stops the milter on any of them.  With
 * the server's signal thread waiting for the same signals, which of the
 * two gets one would be unspecified, and a SIGHUP could stop the milter.
 * So this file defines sigwait() for the milter programs: libmilter's
 * call resolves to it (the executable's definition comes first in the
 * dynamic linker's lookup) and parks that thread for good.  postlink
 * itself uses sigwaitinfo(), never sigwait().  A stop refuses new
 * sessions and transactions (Postfix then applies milter_default_action = tempfail), lets
 * the transactions in progress finish within shutdown_timeout, then calls
 * smfi_stop() and waits for the threads still inside a callback.  The milter tests send
 * SIGHUP and SIGTERM to both milters and check that each does what the
 * server says. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "milter_server.h"
#include "privs.h"
#include "server.h"
#include "strutil.h"

static struct smfiDesc inner, wrapped;
static atomic_int draining;    /* a stop was asked for: no new sessions or transactions */
static atomic_int nr_mail;     /* the filter negotiated "no reply" for MAIL */
static atomic_uint in_callback;
static const char *sock_name;

/* Sessions inside a transaction (MAIL .. end of message or abort): the
 * ones a stop waits for.  A session idle between transactions is not
 * waited for; Postfix applies milter_default_action to its next one. */
static pthread_mutex_t txn_mu = PTHREAD_MUTEX_INITIALIZER;
static SMFICTX **txn;
static size_t ntxn, txn_cap;

int sigwait(const sigset_t *set, int *sig);
int sigwait(const sigset_t *set, int *sig)
{
    (void)set;
    (void)sig;
    for (;;)
        sleep(3600);           /* libmilter's signal thread: see the top of the file */
}

static void txn_begin(SMFICTX *ctx)
{
    pthread_mutex_lock(&txn_mu);
    for (size_t i = 0; i < ntxn; i++)
        if (txn[i] == ctx) {
            pthread_mutex_unlock(&txn_mu);
            return;
        }
    if (ntxn == txn_cap) {
        txn_cap = txn_cap ? txn_cap * 2 : 64;
        txn = pl_xrealloc(txn, txn_cap * sizeof(*txn));
    }
    txn[ntxn++] = ctx;
    pthread_mutex_unlock(&txn_mu);
}

static void txn_end(SMFICTX *ctx)
{
    pthread_mutex_lock(&txn_mu);
    for (size_t i = 0; i < ntxn; i++)
        if (txn[i] == ctx) {
            txn[i] = txn[--ntxn];
            break;
        }
    pthread_mutex_unlock(&txn_mu);
}

unsigned pl_milter_live(void)
{
    size_t n;
    pthread_mutex_lock(&txn_mu);
    n = ntxn;
    pthread_mutex_unlock(&txn_mu);
    return (unsigned)n;
}

/* Every callback the filter has is called through one of these, which
 * count the threads inside the filter's code (the store and the
 * filter's settings must outlive them). */
#define ENTER() atomic_fetch_add(&in_callback, 1)
#define LEAVE(r) (atomic_fetch_sub(&in_callback, 1), (r))

static sfsistat w_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                            unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                            unsigned long *pf2, unsigned long *pf3)
{
    sfsistat r;
    if (atomic_load(&draining))
        return SMFIS_REJECT;   /* stopping: Postfix applies milter_default_action */
    ENTER();
    r = inner.xxfi_negotiate(ctx, f0, f1, f2, f3, pf0, pf1, pf2, pf3);
    if (r == SMFIS_CONTINUE)
        atomic_store(&nr_mail, (*pf1 & SMFIP_NR_MAIL) != 0);
    return LEAVE(r);
}
static sfsistat w_connect(SMFICTX *c, char *h, _SOCK_ADDR *a)
{ ENTER(); return LEAVE(inner.xxfi_connect(c, h, a)); }
static sfsistat w_helo(SMFICTX *c, char *h)
{ ENTER(); return LEAVE(inner.xxfi_helo(c, h)); }
static sfsistat w_envfrom(SMFICTX *c, char **argv)
{
    if (atomic_load(&draining) && !atomic_load(&nr_mail))
        return SMFIS_TEMPFAIL; /* stopping: the client tries this one again later */
    txn_begin(c);
    ENTER();
    return LEAVE(inner.xxfi_envfrom(c, argv));
}
static sfsistat w_envrcpt(SMFICTX *c, char **argv)
{ ENTER(); return LEAVE(inner.xxfi_envrcpt(c, argv)); }
static sfsistat w_header(SMFICTX *c, char *f, char *v)
{ ENTER(); return LEAVE(inner.xxfi_header(c, f, v)); }
static sfsistat w_eoh(SMFICTX *c)
{ ENTER(); return LEAVE(inner.xxfi_eoh(c)); }
static sfsistat w_body(SMFICTX *c, unsigned char *b, size_t n)
{ ENTER(); return LEAVE(inner.xxfi_body(c, b, n)); }
static sfsistat w_eom(SMFICTX *c)
{
    sfsistat r;
    ENTER();
    r = inner.xxfi_eom(c);
    txn_end(c);
    return LEAVE(r);
}
static sfsistat w_abort(SMFICTX *c)
{
    sfsistat r;
    ENTER();
    r = inner.xxfi_abort(c);
    txn_end(c);
    return LEAVE(r);
}
static sfsistat w_close(SMFICTX *c)
{
    sfsistat r = SMFIS_CONTINUE;
    ENTER();
    if (inner.xxfi_close)
        r = inner.xxfi_close(c);
    txn_end(c);
    return LEAVE(r);
}
static sfsistat w_unknown(SMFICTX *c, const char *cmd)
{ ENTER(); return LEAVE(inner.xxfi_unknown(c, cmd)); }
static sfsistat w_data(SMFICTX *c)
{ ENTER(); return LEAVE(inner.xxfi_data(c)); }
static sfsistat default_negotiate(SMFICTX *c, unsigned long f0, unsigned long f1,
                                  unsigned long f2, unsigned long f3, unsigned long *pf0,
                                  unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    (void)c; (void)f0; (void)f1; (void)f2; (void)f3;
    (void)pf0; (void)pf1; (void)pf2; (void)pf3;
    return SMFIS_ALL_OPTS;
}

static void wrap(const struct smfiDesc *desc)
{
    inner = *desc;
    wrapped = *desc;
    if (inner.xxfi_negotiate == NULL)
        inner.xxfi_negotiate = default_negotiate;
    wrapped.xxfi_negotiate = w_negotiate;
    wrapped.xxfi_close = w_close;                 /* always: it ends a transaction */
#define W(f) if (inner.xxfi_##f) wrapped.xxfi_##f = w_##f
    W(connect); W(helo); W(envfrom); W(envrcpt); W(header); W(eoh); W(body); W(eom);
    W(abort); W(unknown); W(data);
#undef W
}

static void sleep_100ms(void)
{
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
}

/* In the signal thread: refuse new sessions and transactions, give the
 * transactions in progress shutdown_timeout, then stop libmilter.
 * (smfi_stop() first would not do: libmilter's worker pool stops serving
 * sessions in progress once it is told to stop.) */
static void stop_milter(void)
{
    unsigned waited = 0, bound = (unsigned)pl_server_cfg()->shutdown_timeout * 10;
    atomic_store(&draining, 1);
    while (pl_milter_live() > 0 && waited++ < bound)
        sleep_100ms();
    (void)smfi_stop();
}

int pl_milter_open(struct smfiDesc *desc, const char *socket, const char *user)
{
    char err[512];

    wrap(desc);
    sock_name = socket;
    umask(0117);               /* the socket is made 0660 (privs.h: no chmod by path) */
    if (smfi_setconn((char *)socket) != MI_SUCCESS || smfi_register(wrapped) != MI_SUCCESS) {
        msg_error("cannot set up the milter on %s", socket);
        return -1;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {
        msg_error("cannot listen on %s: %s", socket, strerror(errno));
        return -1;
    }
    if (strncmp(socket, "unix:", 5) == 0 &&
        pl_socket_for_postfix(socket + 5, user, err, sizeof(err)) != 0) {
        msg_error("%s", err);
        return -1;
    }
    pl_server_set_stop_hook(stop_milter);
    return 0;
}

int pl_milter_run(void)
{
    unsigned waited = 0;
    int rc;

    smfi_settimeout(60);
    rc = smfi_main();
    if (!pl_server_stopping()) {
        msg_error("libmilter's main loop ended by itself (%s)", rc == MI_SUCCESS ? "no error"
                  : "an error");
        return 1;
    }
    if (pl_milter_live() > 0)
        msg_warn("%u milter transaction(s) still busy after %lld s (shutdown_timeout): cut; "
                 "Postfix applies milter_default_action", pl_milter_live(),
                 pl_server_cfg()->shutdown_timeout);
    /* A worker thread may still be inside a callback it started before the
     * stop: the store and the filter's settings must outlive it. */
    while (atomic_load(&in_callback) > 0 && waited++ < 50)
        sleep_100ms();
    if (atomic_load(&in_callback) > 0) {
        msg_error("%u thread(s) still inside the filter after the stop", atomic_load(&in_callback));
        return 75;
    }
    if (strncmp(sock_name, "unix:", 5) == 0)
        (void)unlink(sock_name + 5);
    return 0;
}
