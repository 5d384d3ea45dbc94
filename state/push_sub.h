/* push_sub.h -- capability 5's Web Push subscriptions: at most one per push
 * device (state/push.h), what postlink-pushd sends a wake-up to when mail
 * waits for that device.
 *   psub    key "<sel>" (the device's selector, 16 hex digits) ->
 *           "endpoint=..\np256dh=..\nauth=..\ncreated=..\nfails=..\nlast=..\n"
 *           (created: when it was registered; fails: failed deliveries since
 *           the last one that was accepted; last: the last attempt, 0 = none)
 * The row goes with the device (pl_pdev_del).  Every function works inside
 * the caller's transaction.  pl_psub_parse_json reads what a device POSTs
 * to register (outside input); it is in push_sub_json.c, linked from
 * state/libplpushjson.a with jansson. */
#ifndef PL_PUSH_SUB_H
#define PL_PUSH_SUB_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "webpush.h"

#define PL_T_PSUB "psub"
#define PL_PSUB_JSON_MAX 4096       /* bytes of a registration */

struct pl_psub {
    struct pl_webpush_sub sub;
    int64_t created;
    unsigned fails;                 /* failed deliveries since the last accepted one */
    int64_t last;                   /* the last delivery attempt; 0 = none yet */
};

/* Registers (or replaces: fails and last start again) the subscription of
 * the device with selector sel.  endpoint: an http(s) URL of at most 1024
 * characters; p256dh: base64url of an uncompressed P-256 point; auth:
 * base64url of 16 bytes (lib/webpush.h's checks).  PL_OK; PL_NOTFOUND when
 * there is no such device; PL_ERR with *why set (may be NULL) for bad
 * input; a store error. */
int pl_psub_set(pl_txn *t, const char *sel, const char *endpoint, const char *p256dh,
                const char *auth, int64_t now, const char **why);
/* The device's subscription: PL_OK, PL_NOTFOUND (none, or sel malformed). */
int pl_psub_get(pl_txn *t, const char *sel, struct pl_psub *s, int for_update);
/* PL_OK, PL_NOTFOUND. */
int pl_psub_del(pl_txn *t, const char *sel);
/* Records a delivery attempt at now: ok resets the failure count, else it
 * grows by one; *fails (may be NULL) gets the new count.  PL_OK,
 * PL_NOTFOUND. */
int pl_psub_note(pl_txn *t, const char *sel, int64_t now, int ok, unsigned *fails);

/* Parses a registration, PushSubscription.toJSON()'s form:
 *   {"endpoint":"https://...","expirationTime":null,
 *    "keys":{"p256dh":"<base64url>","auth":"<base64url>"}}
 * at most PL_PSUB_JSON_MAX bytes, one object, no duplicate names;
 * endpoint and keys required, expirationTime null or a number (not kept);
 * other members are ignored.  Each value is checked as pl_psub_set does.
 * 0 with out filled, or -1 with err set (and out cleared). */
int pl_psub_parse_json(const char *buf, size_t len, struct pl_webpush_sub *out, char *err,
                       size_t errlen);

#endif
