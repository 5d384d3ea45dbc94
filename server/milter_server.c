/* milter_server.c -- the milter variant of the server (milter_server.h):
 * picks the engine, and stops it the way a stop must go: refuse new
 * sessions and transactions, give the transactions in progress
 * shutdown_timeout, then end the engine and wait for the threads still
 * inside a filter.  (Ending libmilter first would not do: its worker pool
 * stops serving sessions in progress once it is told to stop.) */
#include "config.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "milter_chain.h"
#include "milter_libmilter.h"
#include "milter_native.h"
#include "milter_server.h"
#include "server.h"

static int native;
static const char *sock_name;

static void sleep_100ms(void)
{
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
}

/* In the signal thread. */
static void stop_milter(void)
{
    unsigned waited = 0, bound = (unsigned)pl_server_cfg()->shutdown_timeout * 10;
    pl_chain_drain();
    while (pl_chain_live() > 0 && waited++ < bound)
        sleep_100ms();
    if (native)
        pl_native_end();
    else
        pl_libmilter_end();
}

int pl_milter_open(const struct pl_filter *const *filters, unsigned n, const char *socket,
                   const char *user)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    int rc;

    pl_chain_init(filters, n);
    sock_name = socket;
    native = strcmp(cfg->milter_engine, "libmilter") != 0;
    rc = native ? pl_native_open(socket, user)
                : pl_libmilter_open(filters[0]->name, socket, user, (unsigned)cfg->milter_timeout);
    if (rc != 0)
        return -1;
    pl_server_set_stop_hook(stop_milter);
    return 0;
}

int pl_milter_run(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    unsigned waited = 0;
    int rc;

    msg_info("milter engine %s%s serving %s on %s", native ? "native" : "libmilter",
             native ? "" : " (worker pool)", pl_chain_names(), sock_name);
    if (native)
        rc = pl_native_run((unsigned)cfg->milter_threads, (unsigned)cfg->milter_timeout);
    else
        rc = pl_libmilter_run();
    if (rc == 75) {
        msg_error("%u thread(s) still inside the filters after the stop", pl_chain_busy());
        return 75;
    }
    if (!pl_server_stopping()) {
        msg_error("the milter engine ended by itself (%s)", rc == 0 ? "no error" : "an error");
        return 1;
    }
    if (pl_chain_live() > 0)
        msg_warn("%u milter transaction(s) still busy after %lld s (shutdown_timeout): cut; "
                 "Postfix applies milter_default_action", pl_chain_live(),
                 pl_server_cfg()->shutdown_timeout);
    /* A thread may still be inside a callback it started before the stop:
     * the store and the filters' settings must outlive it. */
    while (pl_chain_busy() > 0 && waited++ < 50)
        sleep_100ms();
    if (pl_chain_busy() > 0) {
        msg_error("%u thread(s) still inside the filter after the stop", pl_chain_busy());
        return 75;
    }
    if (!native && strncmp(sock_name, "unix:", 5) == 0)
        (void)unlink(sock_name + 5);
    return 0;
}
