/* doorbell.h -- a wake-up from one postlink process to another on the
 * same host: a unix datagram socket NAME.bell in db_home that the daemon
 * waits on, and that postlinkctl (or a daemon's own stop) rings after it
 * committed work to the store.  A ring carries no data and may be lost or
 * ring nobody: the store stays the only source of truth and a daemon
 * still looks at it on its own interval. */
#ifndef PL_DOORBELL_H
#define PL_DOORBELL_H

#include <stddef.h>

/* Bind dir/NAME.bell (a stale one is replaced).  Returns the socket
 * (non-blocking, close-on-exec) or -1 with the reason in err. */
int pl_doorbell_open(const char *dir, const char *name, char *err, size_t errlen);

/* Wait up to ms milliseconds for a ring on fd; every ring that arrived
 * meanwhile is consumed.  Returns 1 when rung, 0 on a timeout. */
int pl_doorbell_wait(int fd, unsigned ms);

/* Ring dir/NAME.bell; quietly nothing when nobody listens.  Returns 0 when
 * the ring was sent. */
int pl_doorbell_ring(const char *dir, const char *name);

/* Close fd and remove dir/NAME.bell. */
void pl_doorbell_close(int fd, const char *dir, const char *name);

#endif
