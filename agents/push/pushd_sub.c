/* pushd_sub.c -- what POST and DELETE /v1/subscription do (issue 14, point
 * 3): a device registers the Web Push subscription its push service gave
 * it (PushSubscription.toJSON(), at most PL_PSUB_JSON_MAX bytes), or
 * removes it.  The bearer token decides the device: no request can name
 * another.  The notices themselves are pushd_notify.c's. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "push_sub.h"
#include "pushd.h"

struct subop {
    const char *sel;
    const struct pl_webpush_sub *sub;   /* NULL: remove */
    const char *why;
};

static int sub_fn(pl_txn *t, void *ctx)
{
    struct subop *o = ctx;
    if (o->sub == NULL)
        return pl_psub_del(t, o->sel);
    return pl_psub_set(t, o->sel, o->sub->endpoint, o->sub->p256dh, o->sub->auth, time(NULL),
                       &o->why);
}

void pushd_subscription(const struct pl_preq *q, const struct pl_pdev *d, const char *body,
                        size_t len, int too_large, struct pushd_reply *r)
{
    struct pl_webpush_sub sub;
    struct subop o = {d->sel, NULL, NULL};
    char err[256], origin[PL_WP_ENDPOINT_MAX + 1];
    int rc;

    if (q->kind == PL_PREQ_SUBSCRIBE) {
        if (!pushd_notify_enabled()) {
            pushd_reply_text(r, 501, "not-configured", "Web Push is not configured on this "
                             "server (push_vapid_key_file): use GET /v1/wait");
            return;
        }
        if (too_large) {
            pushd_reply_text(r, 413, "too-large", "a subscription is at most %d bytes",
                             PL_PSUB_JSON_MAX);
            return;
        }
        if (pl_psub_parse_json(body ? body : "", len, &sub, err, sizeof(err)) != 0) {
            pushd_reply_text(r, 400, "bad-subscription", "%s", err);
            return;
        }
        /* the device names the URL pushd will post to: only push services
         * the administrator listed (no internal host, no other port) */
        if (!pl_webpush_origin_allowed(sub.endpoint,
                                       atomic_load(&pd.cfg)->push_webpush_services_list)) {
            if (pl_webpush_origin(sub.endpoint, origin, sizeof(origin)) != 0)
                snprintf(origin, sizeof(origin), "?");
            msg_warn("%s/%s: refused a Web Push subscription to %s: not in "
                     "push_webpush_services", d->user, d->name, origin);
            pushd_reply_text(r, 403, "push-service-not-allowed", "this server sends Web Push "
                             "only to the push services in push_webpush_services");
            return;
        }
        o.sub = &sub;
    }
    rc = pl_store_run(pd.store, PL_TXN_SYNC, sub_fn, &o);
    if (rc == PL_OK && o.sub) {
        if (pl_webpush_origin(sub.endpoint, origin, sizeof(origin)) != 0)
            snprintf(origin, sizeof(origin), "?");
        msg_info("%s/%s: Web Push subscription registered (push service %s)", d->user, d->name,
                 origin);
        pushd_reply_text(r, 201, NULL, "subscription registered");
        pushd_notify_user(d->user);     /* mail may wait already */
    } else if (rc == PL_OK) {
        msg_info("%s/%s: Web Push subscription removed by the device", d->user, d->name);
        r->status = 204;
    } else if (rc == PL_NOTFOUND) {
        if (o.sub)
            pushd_reply_text(r, 401, "unauthorized", "the device was removed");
        else
            pushd_reply_text(r, 404, "no-subscription", "this device has no subscription");
    } else if (rc == PL_ERR && o.why) {
        pushd_reply_text(r, 400, "bad-subscription", "%s", o.why);
    } else {
        pushd_reply_text(r, 503, "store", "the store is busy; try again");
        pushd_reply_header(r, "Retry-After", "5");
    }
}
