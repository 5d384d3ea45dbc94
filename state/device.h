/* device.h -- the registry of a user's devices (capability 1): each device
 * has its own mail address (a phone, a desktop client, a pager gateway at
 * another domain, another postlink server).  USER is the full address,
 * which is also the SASL login.  Addresses are stored lower-case. */
#ifndef PL_DEVICE_H
#define PL_DEVICE_H

#include <stdint.h>

#include "store.h"

enum { PL_DEVICE_EXISTS = 2 };       /* add: already registered */

struct pl_device {
    const char *user;
    const char *address;
    const char *name;                /* "" if none */
    int64_t created;                 /* unix time */
};

/* Both addresses must have passed pl_addr_check(). */
int pl_device_add(pl_store *s, const char *user, const char *address, const char *name);
int pl_device_del(pl_store *s, const char *user, const char *address);

/* Visit the devices of user (all users if NULL), sorted by user then
 * address; fn returns non-zero to stop. */
typedef int (*pl_device_fn)(void *ctx, const struct pl_device *d);
int pl_device_list(pl_store *s, const char *user, pl_device_fn fn, void *ctx);
/* The same inside the caller's transaction. */
int pl_device_list_txn(pl_txn *t, const char *user, pl_device_fn fn, void *ctx);
/* PL_OK if address is a registered device of user, else PL_NOTFOUND (or a
 * store error). */
int pl_device_is(pl_txn *t, const char *user, const char *address);

#endif
