/* pushd_sync.h -- POST /v1/sync (pushd_sync.c): a device asks for a
 * mirror sync of its user's account (capability 2). */
#ifndef PL_PUSHD_SYNC_H
#define PL_PUSHD_SYNC_H

#include "pushd.h"

/* 202 (the request recorded for postlink-mirrord), 404 (no mirror
 * account for d's user) or 503 (the store). */
void pushd_sync(const struct pl_pdev *d, struct pushd_reply *r);

#endif
