/* peerq.c -- queue ids of mail from certificate-trusted sync peers (peerq.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerq.h"
#include "sync.h"

#define QID_MAX 64

static int qid_ok(const char *qid)
{
    size_t n = strlen(qid);
    return n > 0 && n <= QID_MAX && strspn(qid, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                               "abcdefghijklmnopqrstuvwxyz") == n;
}

int pl_peerq_mark(pl_txn *t, const char *qid, const char *client, unsigned port,
                  const char *fprint, int64_t now)
{
    char v[512];
    int n = snprintf(v, sizeof(v), "%" PRId64 " %s %u %s", now, client, port, fprint);
    if (!qid_ok(qid) || n < 0 || (size_t)n >= sizeof(v) || *client == '\0' || *fprint == '\0' ||
        strchr(client, ' ') || strchr(fprint, ' '))
        return PL_ERR;
    return pl_store_put(t, "peerq", qid, strlen(qid), v, (size_t)n);
}

int pl_peerq_take(pl_txn *t, const char *qid, const char *client, unsigned port, int64_t now,
                  int *trusted, char *fprint, size_t flen)
{
    void *v = NULL;
    char c[128], f[256];
    long long created;
    unsigned p;
    int rc, ok;

    *trusted = 0;
    if (!qid_ok(qid))
        return PL_OK;
    rc = pl_store_get(t, "peerq", qid, strlen(qid), &v, NULL, 1);
    if (rc == PL_NOTFOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    ok = sscanf(v, "%lld %127s %u %255s", &created, c, &p, f) == 4 && strcmp(c, client) == 0 &&
         p == port && created <= now && now - created < PL_PEERQ_MAX_AGE;
    free(v);
    if ((rc = pl_store_del(t, "peerq", qid, strlen(qid))) != PL_OK)
        return rc;
    if (ok) {
        *trusted = 1;
        snprintf(fprint, flen, "%s", f);
    }
    return PL_OK;
}

int pl_peerq_purge(pl_txn *t, int64_t before, unsigned *purged)
{
    return pl_sync_purge_older(t, "peerq", before, purged);
}
