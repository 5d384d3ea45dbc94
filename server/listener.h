/* listener.h -- the one accept loop of postlink: a unix or inet socket,
 * a bounded pool of connection threads that counts the live connections,
 * back-off when accept() runs out of descriptors, and a drain at shutdown
 * (stop accepting; let each connection finish the request in hand: its
 * socket is shut for reading, so a client idle between requests sees the
 * end at once; after the bound the sockets are cut). */
#ifndef PL_LISTENER_H
#define PL_LISTENER_H

#include <stddef.h>

typedef struct pl_listener pl_listener;

/* Serve one connection; fd belongs to the callee (close it when done). */
typedef void (*pl_conn_fn)(int fd, void *ctx);

/* Open the socket (as root, before privileges are dropped): "/path" or
 * "unix:/path" (replacing a stale socket; owner user, group postfix, mode
 * 0660), or "inet:port@host".  NULL with a message in err. */
pl_listener *pl_listener_open(const char *endpoint, const char *user, char *err,
                              size_t errlen);

/* The listening socket, for an engine that accepts by itself (the native
 * milter engine) instead of pl_listener_start. */
int pl_listener_fd(const pl_listener *l);

/* Start accepting in a thread of its own; at most max_conns connections
 * are served at once (the next waits in the kernel's backlog).  Returns 0
 * or -1 after logging why. */
int pl_listener_start(pl_listener *l, const char *what, unsigned max_conns, pl_conn_fn fn,
                      void *ctx);

/* Stop accepting and close the listening socket (and remove a unix
 * socket file).  Safe to call from any thread, more than once. */
void pl_listener_stop(pl_listener *l);

/* After pl_listener_stop: wait up to timeout_s for the live connections
 * to finish, then cut them and wait a little more.  Returns the number
 * still live (0 when all finished). */
unsigned pl_listener_drain(pl_listener *l, unsigned timeout_s);

/* Free a stopped listener that has no live connections. */
void pl_listener_free(pl_listener *l);

#endif
