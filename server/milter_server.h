/* milter_server.h -- the milter variant of the server skeleton.  A milter
 * program gives its filters (milter_api.h: one for postlink-sync and
 * postlink-tag, several for postlink-milter) and a socket; the server
 * serves them on the engine postlink.conf names (milter_engine = native,
 * the event loops of milter_native.c, or libmilter), under the same
 * signal handling as every other postlink process: SIGTERM refuses new
 * sessions and transactions (Postfix applies milter_default_action),
 * lets the transactions in progress finish within shutdown_timeout, then
 * stops; SIGHUP reloads.  A program's pl_service calls pl_milter_open()
 * from its open() and pl_milter_run() from its run(). */
#ifndef PL_MILTER_SERVER_H
#define PL_MILTER_SERVER_H

#include "milter_api.h"

/* Set up the filters and open the socket (unix:/path given to user,
 * group postfix, mode 0660; or inet:port@host).  0, or -1 after logging
 * why. */
int pl_milter_open(const struct pl_filter *const *filters, unsigned n, const char *socket,
                   const char *user);

/* Serve until a stop; after it, wait for the sessions in progress
 * (shutdown_timeout).  Returns the exit status. */
int pl_milter_run(void);

#endif
