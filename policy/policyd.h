/* policyd.h -- what postlink-policyd's files share: settings read at
 * start-up and the store (both read-only or thread-safe once running). */
#ifndef PL_POLICYD_H
#define PL_POLICYD_H

#include <stddef.h>

#include "conf_params.h"
#include "peers.h"
#include "policy_request.h"
#include "store.h"

struct policyd {
    const struct pl_cfg *_Atomic cfg;  /* replaced by SIGHUP */
    pl_store *store;
    struct pl_peers peers;
    int verbose;
};

extern struct policyd pd;

/* Decide one request: the action for Postfix (DUNNO unless the store
 * cannot record a trusted peer's mail) into action. */
void policyd_decide(const struct pl_policy_req *q, char *action, size_t len);

#endif
