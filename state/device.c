/* device.c -- the device registry (device.h) in the store's "device" table:
 * key "<user>\n<address>" (both lower-case), value "<created> <name>". */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "device.h"

struct op { const char *user, *address, *name; int existed; };

#define KEYSIZE (2 * PL_ADDR_SIZE + 1)

/* "<user>\n<address>" lower-cased; 0 when either is longer than an
 * address can be (no such device: never a key cut short). */
static size_t make_key(char *key, size_t len, const char *user, const char *address)
{
    char u[PL_ADDR_SIZE], a[PL_ADDR_SIZE];
    int n;
    if (pl_addr_canon(user, u, sizeof(u)) != 0 || pl_addr_canon(address ? address : "", a, sizeof(a)) != 0)
        return 0;
    n = snprintf(key, len, "%s\n%s", u, a);
    return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

static int add_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    char key[KEYSIZE], val[512];
    size_t klen = make_key(key, sizeof(key), op->user, op->address);
    void *old = NULL;
    int rc;

    if (klen == 0)
        return PL_ERR;
    rc = pl_store_get(t, "device", key, klen, &old, NULL, 1);

    free(old);
    if (rc == PL_OK) {
        op->existed = 1;
        return PL_OK;                  /* nothing to change */
    }
    if (rc != PL_NOTFOUND)
        return rc;
    snprintf(val, sizeof(val), "%lld %s", (long long)time(NULL), op->name ? op->name : "");
    return pl_store_put(t, "device", key, klen, val, strlen(val));
}

int pl_device_add(pl_store *s, const char *user, const char *address, const char *name)
{
    struct op op = {user, address, name, 0};
    int rc = pl_store_run(s, PL_TXN_SYNC, add_fn, &op);
    return rc == PL_OK && op.existed ? PL_DEVICE_EXISTS : rc;
}

static int del_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    char key[KEYSIZE];
    size_t klen = make_key(key, sizeof(key), op->user, op->address);
    return klen == 0 ? PL_NOTFOUND : pl_store_del(t, "device", key, klen);
}

int pl_device_del(pl_store *s, const char *user, const char *address)
{
    struct op op = {user, address, NULL, 0};
    return pl_store_run(s, PL_TXN_SYNC, del_fn, &op);
}

struct visit { pl_device_fn fn; void *ctx; };

static int visit_fn(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct visit *vis = ctx;
    char key[KEYSIZE], val[512], *nl, *sp;
    struct pl_device d;

    snprintf(key, sizeof(key), "%.*s", (int)kl, (const char *)k);
    snprintf(val, sizeof(val), "%.*s", (int)vl, (const char *)v);
    if ((nl = strchr(key, '\n')) == NULL)
        return 0;                      /* not a device key: skip */
    *nl = '\0';
    d.user = key;
    d.address = nl + 1;
    d.created = strtoll(val, &sp, 10);
    d.name = *sp == ' ' ? sp + 1 : "";
    return vis->fn(vis->ctx, &d);
}

struct list { const char *user; struct visit vis; };

static int list_fn(pl_txn *t, void *ctx)
{
    struct list *l = ctx;
    char prefix[KEYSIZE];
    size_t plen = 0;
    if (l->user != NULL && (plen = make_key(prefix, sizeof(prefix), l->user, NULL)) == 0)
        return PL_OK;                                               /* no such user */
    return pl_store_scan(t, "device", prefix, plen, visit_fn, &l->vis);
}

int pl_device_list_txn(pl_txn *t, const char *user, pl_device_fn fn, void *ctx)
{
    struct list l = {user, {fn, ctx}};
    int rc = list_fn(t, &l);
    return rc > 0 ? PL_OK : rc;
}

int pl_device_is(pl_txn *t, const char *user, const char *address)
{
    char key[KEYSIZE];
    size_t klen = make_key(key, sizeof(key), user, address);
    void *v = NULL;
    int rc;

    if (klen == 0)
        return PL_NOTFOUND;
    rc = pl_store_get(t, "device", key, klen, &v, NULL, 0);
    free(v);
    return rc;
}

int pl_device_list(pl_store *s, const char *user, pl_device_fn fn, void *ctx)
{
    struct list l = {user, {fn, ctx}};
    int rc = pl_store_run(s, PL_TXN_NOSYNC, list_fn, &l);
    return rc > 0 ? PL_OK : rc;       /* a callback's stop is not an error */
}
