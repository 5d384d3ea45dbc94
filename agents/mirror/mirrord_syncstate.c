/* mirrord_syncstate.c -- the mirror and capability 1 (message-state sync):
 * when the destination is a sync-enabled user (a domain of
 * enabled_domains), a copy handed over is recorded as arrived in the sync
 * state, in the transaction that records it as held, and a copy whose
 * original was read on the primary becomes a "deleted" control (delete
 * mode) or a "read" control (mark mode) for its Message-ID, applied and
 * fanned out to the user's devices as any control is (state/sync.c;
 * postlink-syncd sends the copies). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "address.h"
#include "log.h"
#include "mirrord.h"
#include "sync.h"

int mirrord_sync_enabled(const struct pl_maccount *a)
{
    const struct pl_cfg *cfg = atomic_load(&md.cfg);
    return strcmp(a->deliver_to, "push") != 0 &&
           pl_cfg_list_has(cfg->enabled_domains_list, pl_addr_domain(a->deliver_to));
}

static void opts(const struct pl_maccount *a, struct pl_sync_opts *o, int64_t now)
{
    const struct pl_cfg *cfg = atomic_load(&md.cfg);
    memset(o, 0, sizeof(*o));
    o->now = now;
    o->pending_ttl = cfg->pending_ttl;
    o->hostname = md.hostname;
    o->imap = pl_cfg_list_map(cfg->imap_url_list, pl_addr_domain(a->deliver_to)) != NULL;
}

int mirrord_sync_arrived(pl_txn *t, const struct pl_maccount *a, const char *msgid, int64_t now)
{
    struct pl_sync_opts o;
    unsigned flags = 0, released = 0;
    if (msgid[0] == '\0' || !mirrord_sync_enabled(a))
        return PL_OK;
    opts(a, &o, now);
    return pl_sync_seen(t, &o, a->deliver_to, msgid, &flags, &released);
}

struct ctlop {
    const struct pl_maccount *a;
    struct pl_control c;
    struct pl_sync_opts o;
    struct pl_sync_result r;
};

static int control_fn(pl_txn *t, void *ctx)
{
    struct ctlop *op = ctx;
    memset(&op->r, 0, sizeof(op->r));
    return pl_sync_control(t, &op->o, op->a->deliver_to, op->a->deliver_to, &op->c, NULL, 0,
                           &op->r);
}

int mirrord_sync_withdraw(const struct pl_maccount *a, const char *msgid, const char *token,
                          int64_t now, unsigned *copies)
{
    struct ctlop op;
    char *targets[1];
    int rc;

    *copies = 0;
    memset(&op, 0, sizeof(op));
    op.a = a;
    targets[0] = (char *)msgid;
    op.c.word = a->mode == PL_MIRROR_DELETE ? PL_CW_DELETED : PL_CW_READ;
    op.c.targets = targets;
    op.c.ntargets = 1;
    op.c.version = -1;
    op.c.since = -1;
    op.c.date = now;
    /* the control's own id: the same for a repeat, so it is deduplicated */
    snprintf(op.c.msgid, sizeof(op.c.msgid), "<mirror.%s@%s>", token, md.hostname);
    opts(a, &op.o, now);
    rc = pl_store_run(md.store, PL_TXN_SYNC, control_fn, &op);
    if (rc == PL_OK)
        *copies = op.r.copies;
    return rc;
}
