/* sync_milter.h -- what the postlink-sync milter's files share: the
 * settings and the store handle (the milter engine runs the callbacks
 * in many threads).  Fields marked _Atomic are replaced by a SIGHUP reload; the
 * others are set once at start-up. */
#ifndef PL_SYNC_MILTER_H
#define PL_SYNC_MILTER_H

#include "milter_api.h"

#include "conf.h"
#include "conf_params.h"
#include "peers.h"
#include "store.h"

struct sync_milter {
    const struct pl_cfg *_Atomic cfg; /* enabled_domains, imap_url */
    pl_store *store;
    struct pl_peers peers;            /* sync_peers: addresses and certificates */
    const char *transport_domain;
    const char *hostname;
    _Atomic size_t max_targets;
    _Atomic int64_t pending_ttl;
};

extern struct sync_milter sm;
extern const struct pl_filter sync_filter;

/* The module's life in a milter process (sync_module.c). */
int sync_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                          size_t errlen);
void sync_module_start(pl_store *store);
void sync_module_finish(void);

/* The recipient that routes a control for user to postlink-syncd:
 * "<local=domain+TOKEN@sync_transport_domain>" (state/route.h); -1 if it
 * does not fit into outlen. */
int sync_agent_rcpt(const char *user, const char *token, char *out, size_t outlen);

#endif
