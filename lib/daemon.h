/* daemon.h -- what every postlink daemon does the same way at start-up:
 * the common options (-c FILE, -o name=value, -f foreground/stderr
 * logging, -v), loading and checking postlink.conf (errors with file:line,
 * exit 78), opening syslog, and SIGTERM/SIGINT/SIGHUP flags. */
#ifndef PL_DAEMON_H
#define PL_DAEMON_H

#include <signal.h>

#include "conf.h"

struct pl_daemon {
    const char *name;          /* program name, e.g. "postlink-sync" */
    const char *conf_path;
    int foreground;            /* -f: log to stderr too */
    int verbose;
    pl_conf *conf;
};

/* Parse the common options (extra single-letter options with their getopt
 * spec in extra_opts are handed to on_opt), load the config, open the log.
 * Exits with a message on any error.  Returns optind. */
int pl_daemon_start(struct pl_daemon *d, int argc, char **argv, const char *extra_opts,
                    int (*on_opt)(int ch, const char *arg));

/* Set by the signal handlers installed by pl_daemon_signals(). */
extern volatile sig_atomic_t pl_daemon_stop, pl_daemon_reload;
void pl_daemon_signals(void);

/* Drop root to the owner of db_home (warning if that is root), then open
 * the store.  Exits 77/75/71 with a message on failure. */
struct pl_store;
void pl_daemon_open_store(struct pl_daemon *d, struct pl_store **sp);

/* The first line of the file named by parameter `param` (a password), or
 * NULL when the parameter is empty.  Exits 78 naming the file when it
 * cannot be read; warns when others may read it.  Caller frees. */
char *pl_daemon_read_secret(const pl_conf *conf, const char *param);

/* The host name for headers (sync_hostname or gethostname). */
const char *pl_daemon_hostname(const pl_conf *conf);

#endif
