/* presence_client.h -- the milter's side of postlink-xmppd's presence
 * lookup socket: ask for one JID's presence within a hard time budget.
 * The budget covers connecting, sending and reading; past it the caller
 * treats the presence as unknown and the mail goes on. */
#ifndef PL_PRESENCE_CLIENT_H
#define PL_PRESENCE_CLIENT_H

#include <stddef.h>

/* 0 and the answer ("online", "away", "offline", "unknown") in word, or -1
 * with the reason in word (no server, timeout, garbage). */
int pl_presence_ask(const char *sock_path, const char *jid, unsigned budget_ms,
                    char *word, size_t len);

#endif
