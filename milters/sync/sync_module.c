/* sync_module.c -- the postlink-sync filter as a module a milter process
 * hosts (postlink-sync alone, or postlink-milter with others): its
 * settings from postlink.conf, its start with the store, its end.  The
 * per-message work is in sync_filter.c.  See postlink-sync(8). */
#include "config.h"

#include <stdio.h>

#include "log.h"
#include "server.h"
#include "sync_milter.h"

struct sync_milter sm;

int sync_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                          size_t errlen)
{
    (void)conf;
    if (!reload) {
        char why[256];
        if (pl_peers_parse(&sm.peers, cfg->sync_peers, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "sync_peers: %s", why);
            return -1;
        }
        sm.transport_domain = cfg->sync_transport_domain;
        sm.hostname = pl_server_hostname(cfg);
    }
    sm.cfg = cfg;
    sm.max_targets = (size_t)cfg->control_max_targets;
    sm.pending_ttl = cfg->pending_ttl;
    return 0;
}

void sync_module_start(pl_store *store)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    sm.store = store;
    if (sm.peers.nfp > 0)
        msg_info("sync_peers lists %zu certificate fingerprint(s): they are recognised by "
                 "postlink-policyd, which must be in smtpd_data_restrictions", sm.peers.nfp);
    msg_info("postlink-sync %s (store %s, enabled domains: %s)", PACKAGE_VERSION, cfg->db_home,
             cfg->enabled_domains);
}

void sync_module_finish(void)
{
    pl_peers_free(&sm.peers);
}
