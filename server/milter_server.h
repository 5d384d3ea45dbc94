/* milter_server.h -- the libmilter variant of the server skeleton:
 * smfi_main() runs under the same signal handling as every other postlink
 * process (SIGTERM drains and stops through smfi_stop(), SIGHUP reloads
 * instead of stopping, as libmilter alone would), and the server counts
 * live milter sessions so that a stop lets them finish within
 * shutdown_timeout.  A milter's pl_service calls pl_milter_open() from
 * its open() and pl_milter_run() from its run(). */
#ifndef PL_MILTER_SERVER_H
#define PL_MILTER_SERVER_H

#include <libmilter/mfapi.h>

/* Register the filter and open its socket (unix:/path given to user,
 * group postfix, mode 0660; or inet:port@host).  Every callback of desc
 * is called through a wrapper that counts transactions in progress and
 * threads inside the filter.  Returns 0, or -1 after logging why. */
int pl_milter_open(struct smfiDesc *desc, const char *socket, const char *user);

/* smfi_main(); after a stop, wait for live sessions (shutdown_timeout).
 * Returns the exit status. */
int pl_milter_run(void);

/* Transactions (MAIL .. end of message) in progress. */
unsigned pl_milter_live(void);

#endif
