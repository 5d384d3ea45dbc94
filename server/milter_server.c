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
 * sessions (Postfix then applies milter_default_action = tempfail), lets
 * the live ones finish within shutdown_timeout, then calls smfi_stop().  The milter tests send
 * SIGHUP and SIGTERM to both milters and check that each does what the
 * server says. */
#include "config.h"

#include <errno.h>
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

static struct smfiDesc wrapped;
static sfsistat (*inner_negotiate)(SMFICTX *, unsigned long, unsigned long, unsigned long,
                                   unsigned long, unsigned long *, unsigned long *,
                                   unsigned long *, unsigned long *);
static sfsistat (*inner_close)(SMFICTX *);
static atomic_uint live;
static atomic_int draining;
static const char *sock_name;

int sigwait(const sigset_t *set, int *sig);
int sigwait(const sigset_t *set, int *sig)
{
    (void)set;
    (void)sig;
    for (;;)
        sleep(3600);           /* libmilter's signal thread: see the top of the file */
}

unsigned pl_milter_live(void) { return atomic_load(&live); }

static sfsistat count_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                                unsigned long f2, unsigned long f3, unsigned long *pf0,
                                unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    if (atomic_load(&draining))
        return SMFIS_REJECT;   /* stopping: Postfix applies milter_default_action */
    atomic_fetch_add(&live, 1);
    if (inner_negotiate)
        return inner_negotiate(ctx, f0, f1, f2, f3, pf0, pf1, pf2, pf3);
    return SMFIS_ALL_OPTS;
}

static sfsistat count_close(SMFICTX *ctx)
{
    sfsistat r = inner_close ? inner_close(ctx) : SMFIS_CONTINUE;
    unsigned n = atomic_load(&live);
    /* a session that ended before negotiation was never counted */
    while (n > 0 && !atomic_compare_exchange_weak(&live, &n, n - 1))
        ;
    return r;
}

/* In the signal thread: refuse new sessions, give the live ones
 * shutdown_timeout, then stop libmilter.  (smfi_stop() first would not
 * do: libmilter's worker pool stops serving sessions in progress once it
 * is told to stop.) */
static void stop_milter(void)
{
    unsigned waited = 0, bound = (unsigned)pl_server_cfg()->shutdown_timeout * 10;
    atomic_store(&draining, 1);
    while (atomic_load(&live) > 0 && waited < bound) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        waited++;
    }
    (void)smfi_stop();
}

int pl_milter_open(struct smfiDesc *desc, const char *socket, const char *owner_path)
{
    char err[512];

    wrapped = *desc;
    inner_negotiate = desc->xxfi_negotiate;
    inner_close = desc->xxfi_close;
    wrapped.xxfi_negotiate = count_negotiate;
    wrapped.xxfi_close = count_close;
    sock_name = socket;
    umask(007);
    if (smfi_setconn((char *)socket) != MI_SUCCESS || smfi_register(wrapped) != MI_SUCCESS) {
        msg_error("cannot set up the milter on %s", socket);
        return -1;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {
        msg_error("cannot listen on %s: %s", socket, strerror(errno));
        return -1;
    }
    if (strncmp(socket, "unix:", 5) == 0 &&
        pl_socket_for_postfix(socket + 5, owner_path, err, sizeof(err)) != 0) {
        msg_error("%s", err);
        return -1;
    }
    pl_server_set_stop_hook(stop_milter);
    return 0;
}

int pl_milter_run(void)
{
    int rc;

    smfi_settimeout(60);
    rc = smfi_main();
    if (!pl_server_stopping()) {
        msg_error("libmilter's main loop ended by itself (%s)", rc == MI_SUCCESS ? "no error"
                  : "an error");
        return 1;
    }
    /* Sessions still open had shutdown_timeout (stop_milter); Postfix
     * applies milter_default_action to what they had not finished. */
    if (atomic_load(&live) > 0)
        msg_warn("%u milter session(s) still busy after %lld s (shutdown_timeout): cut",
                 atomic_load(&live), pl_server_cfg()->shutdown_timeout);
    if (strncmp(sock_name, "unix:", 5) == 0)
        (void)unlink(sock_name + 5);
    return 0;
}
