/* pushd_sync.c -- POST /v1/sync: a device asks for a sync of its user's
 * mirror account (capability 2).  The request is recorded in the store as
 * "postlinkctl mirror sync" records it (a "sync" row of mreq, which
 * postlink-mirrord polls, and its doorbell rung); the copies reach the device through the push
 * store as they are fetched. */
#include "config.h"

#include <time.h>

#include "doorbell.h"
#include "log.h"
#include "mirror.h"
#include "pushd_sync.h"
#include "server.h"

struct sync_q { const char *user; int64_t now; };

static int sync_fn(pl_txn *t, void *ctx)
{
    struct sync_q *q = ctx;
    struct pl_maccount a;
    int rc = pl_maccount_get(t, q->user, &a);
    if (rc != PL_OK)
        return rc;
    return pl_mreq_put(t, q->user, "sync", q->now);
}

void pushd_sync(const struct pl_pdev *d, struct pushd_reply *r)
{
    struct sync_q q = {d->user, (int64_t)time(NULL)};
    int rc = pl_store_run(pd.store, PL_TXN_SYNC, sync_fn, &q);
    if (rc == PL_OK) {
        (void)pl_doorbell_ring(pl_server_cfg()->db_home, "mirrord");
        msg_info("%s: device %s asked for a mirror sync", d->user, d->name);
        pushd_reply_text(r, 202, NULL, "mirror sync asked for; the new mail follows");
    } else if (rc == PL_NOTFOUND) {
        pushd_reply_text(r, 404, "no-mirror", "no mirror account for this user");
    } else {
        pushd_reply_text(r, 503, "store", "the store is busy; try again");
        pushd_reply_header(r, "Retry-After", "5");
    }
}
