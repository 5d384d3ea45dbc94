/* route.h -- route tokens: the postlink-sync milter vets a control (who
 * sent it, for which user) and hands postlink-syncd a random token inside
 * the recipient address it adds; postlink-syncd acts only on a token it
 * finds here, and takes the vetted user and sending device from it.  So
 * nobody can reach postlink-syncd by writing to the sync pseudo-domain
 * (in any spelling Postfix accepts), through sendmail(1) or a listener
 * without the milter.  Table "route" (schema v5): key token, value
 * "<created> <user> <sender>". */
#ifndef PL_ROUTE_H
#define PL_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define PL_ROUTE_TOKEN_LEN 32          /* hex digits */

/* A fresh token (NUL-terminated, PL_ROUTE_TOKEN_LEN + 1 bytes). */
int pl_route_token(char *out, size_t outlen);
int pl_route_add(pl_txn *t, const char *token, const char *user, const char *sender, int64_t now);
/* PL_OK with the user and sender the token was made for, or PL_NOTFOUND. */
int pl_route_get(pl_txn *t, const char *token, char *user, size_t ulen, char *sender, size_t slen);
/* Forget tokens made before `before` (Postfix gives up on mail long before). */
int pl_route_purge(pl_txn *t, int64_t before, unsigned *purged);

#endif
