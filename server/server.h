/* server.h -- the one server skeleton every postlink process runs on, in
 * the spirit of Postfix's single_server/multi_server: a program describes
 * itself in a struct pl_service and hands main() to pl_server_main(),
 * which does everything that must be the same everywhere:
 *
 *   - the common options: -c FILE, -o name=value, -f (foreground, log to
 *     stderr too), -v, -n (check the configuration and exit), -R (allow
 *     running as root); configuration errors exit 78 naming file:line;
 *   - SIGTERM, SIGINT and SIGHUP are blocked before any thread starts and
 *     handled by one thread: TERM/INT stop accepting, drain the live
 *     connections within shutdown_timeout, close the store and exit 0 with
 *     a "stopping" line; HUP re-reads postlink.conf, validates it and
 *     swaps it in, or keeps the old settings and logs file:line;
 *   - listeners (listener.h) are opened as root, then the process becomes
 *     postlink_user (setgroups, setgid, setuid, each checked) and opens
 *     the store as that user, so files Berkeley DB creates (during a
 *     recovery, say) stay usable by every other postlink process.
 *
 * The milter variant is in milter_server.h. */
#ifndef PL_SERVER_H
#define PL_SERVER_H

#include <stddef.h>

#include "conf.h"
#include "conf_params.h"
#include "store.h"

struct pl_listener;

struct pl_service {
    const char *name;            /* "postlink-syncd": syslog ident and messages */
    int needs_store;             /* open the store before run() */
    /* Derive the program's settings from a validated configuration.  At
     * start (reload = 0) a failure exits 78; on SIGHUP (reload = 1) a
     * failure keeps the old settings.  Only RELOAD parameters may be
     * applied on reload (the server warns about changed RESTART ones). */
    int (*configure)(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                     size_t errlen);
    /* Open listening sockets (as root, before privileges are dropped);
     * NULL if none.  Returns 0 or -1 after logging why. */
    int (*open)(void);
    /* The work, after privileges are dropped and the store is open: start
     * listeners, threads; return when pl_server_stopping() (or on a fatal
     * error, with a non-zero exit status). */
    int (*run)(void);
    /* Called in the signal thread when a stop is asked for (after the
     * listeners stopped accepting): wake run() if it sleeps elsewhere. */
    void (*wake)(void);
    /* After run() returned and the connections drained: stop helper
     * threads, free what configure() made.  The store is still open. */
    void (*finish)(void);
    /* A doorbell (doorbell.h) named so ("mirrord": db_home/mirrord.bell),
     * opened after the store; pl_server_nap_ms returns when it rings.
     * NULL for none. */
    const char *doorbell;
};

/* The whole life of a process.  Returns the exit status for main(). */
int pl_server_main(const struct pl_service *svc, int argc, char **argv);

/* The configuration in force (swapped atomically by SIGHUP; a pointer
 * stays valid for the life of the process). */
const struct pl_cfg *pl_server_cfg(void);
/* The store (after run() was called, if needs_store). */
pl_store *pl_server_store(void);
/* Nonzero once a stop was asked for. */
int pl_server_stopping(void);
/* -v count. */
int pl_server_verbose(void);
/* Sleep up to ms milliseconds, returning early (nonzero) on a stop. */
int pl_server_sleep_ms(unsigned ms);
/* The same, and returning early (zero) when the service's doorbell rang
 * (another process committed work for it); without a doorbell it is
 * pl_server_sleep_ms. */
int pl_server_nap_ms(unsigned ms);

/* Listeners started through pl_server_listen are drained at shutdown. */
void pl_server_adopt(struct pl_listener *l);

/* The first line of the file named by a parameter (a password), or NULL
 * when it is empty.  Returns -1 with a message in err when the file
 * cannot be read; warns when others may read it.  Caller frees *out. */
int pl_server_read_secret(const char *param, const char *path, char **out, char *err,
                          size_t errlen);

/* The host name for headers (sync_hostname or gethostname). */
const char *pl_server_hostname(const struct pl_cfg *cfg);

/* Used by milter_server.c: stop hook run by the signal thread. */
void pl_server_set_stop_hook(void (*hook)(void));

#endif
