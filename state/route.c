/* route.c -- route tokens (route.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "address.h"
#include "route.h"
#include "sync.h"

int pl_route_token(char *out, size_t outlen)
{
    unsigned char r[PL_ROUTE_TOKEN_LEN / 2];
    if (outlen < PL_ROUTE_TOKEN_LEN + 1 || getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return PL_ERR;
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return PL_OK;
}

static int token_ok(const char *token)
{
    if (strlen(token) != PL_ROUTE_TOKEN_LEN)
        return 0;
    return strspn(token, "0123456789abcdef") == PL_ROUTE_TOKEN_LEN;
}

int pl_route_add(pl_txn *t, const char *token, const char *user, const char *sender, int64_t now)
{
    char v[64 + 2 * PL_ADDR_SIZE];
    int n = snprintf(v, sizeof(v), "%" PRId64 " %s %s", now, user, sender);
    if (!token_ok(token) || strlen(user) > PL_ADDR_MAX || strlen(sender) > PL_ADDR_MAX || n < 0 || (size_t)n >= sizeof(v) || strchr(user, ' ') || strchr(sender, ' '))
        return PL_ERR;
    return pl_store_put(t, "route", token, PL_ROUTE_TOKEN_LEN, v, (size_t)n);
}

int pl_route_get(pl_txn *t, const char *token, char *user, size_t ulen, char *sender, size_t slen)
{
    void *v = NULL;
    char u[PL_ADDR_SIZE], s[PL_ADDR_SIZE];
    long long created;
    int rc;

    if (!token_ok(token))
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, "route", token, PL_ROUTE_TOKEN_LEN, &v, NULL, 0)) != PL_OK)
        return rc;
    rc = sscanf(v, "%lld %" PL_ADDR_MAX_S "s %" PL_ADDR_MAX_S "s", &created, u, s) == 3
         ? PL_OK : PL_NOTFOUND;
    free(v);
    if (rc == PL_OK && (strlen(u) >= ulen || strlen(s) >= slen))
        rc = PL_NOTFOUND;                        /* never hand out a cut address */
    if (rc == PL_OK) {
        snprintf(user, ulen, "%s", u);
        snprintf(sender, slen, "%s", s);
    }
    return rc;
}

int pl_route_purge(pl_txn *t, int64_t before, unsigned *purged)
{
    return pl_sync_purge_older(t, "route", before, purged);
}
