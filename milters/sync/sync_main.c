/* sync_main.c -- postlink-sync, the milter of capability 1 (message-state
 * sync): its settings and its place on the server skeleton
 * (server/milter_server.h).  The per-message work is in sync_filter.c.
 * See postlink-sync(8). */
#include "config.h"

#include <stdio.h>

#include "log.h"
#include "milter_server.h"
#include "server.h"
#include "sync_milter.h"

struct sync_milter sm;

static int sync_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
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

static int sync_open(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    return pl_milter_open(&sync_filter_desc, cfg->sync_milter_socket, cfg->postlink_user);
}

static int sync_run(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    sm.store = pl_server_store();
    if (sm.peers.nfp > 0)
        msg_info("sync_peers lists %zu certificate fingerprint(s): they are recognised by "
                 "postlink-policyd, which must be in smtpd_data_restrictions", sm.peers.nfp);
    msg_info("postlink-sync %s listening on %s (store %s, enabled domains: %s)",
             PACKAGE_VERSION, cfg->sync_milter_socket, cfg->db_home, cfg->enabled_domains);
    return pl_milter_run();
}

static void sync_finish(void)
{
    pl_peers_free(&sm.peers);
}

static const struct pl_service sync_service = {
    .name = "postlink-sync",
    .needs_store = 1,
    .configure = sync_configure,
    .open = sync_open,
    .run = sync_run,
    .finish = sync_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&sync_service, argc, argv);
}
