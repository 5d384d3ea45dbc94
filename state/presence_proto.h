/* presence_proto.h -- the wire format of postlink-xmppd's presence lookup
 * socket, kept apart from the sockets so it can be tested and fuzzed:
 * the request is one line "PRESENCE <bare-jid>" ended by LF (CR LF
 * accepted), the answer one line "online", "away", "offline" or "unknown"
 * ("error" for a request that is not one). */
#ifndef PL_PRESENCE_PROTO_H
#define PL_PRESENCE_PROTO_H

#include <stddef.h>

/* Read the request in line[0..len) (the bytes received, not necessarily
 * NUL-terminated, possibly with more after the first LF).  On success
 * copies the JID (NUL-terminated, not yet checked as a JID) into jid and
 * returns 0; returns -1 when the first line is not "PRESENCE " and a
 * non-empty argument, holds a NUL or another CR, or the argument does not
 * fit in jidlen bytes. */
int pl_presence_parse_request(const char *line, size_t len, char *jid, size_t jidlen);

#endif
