/* sync_main.c -- postlink-sync, the milter of capability 1 (message-state
 * sync): start-up, configuration, the store, and libmilter's main loop.
 * The per-message work is in sync_filter.c.  See postlink-sync(8). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "milter_listen.h"
#include "sync_milter.h"

struct sync_milter sm;

int main(int argc, char **argv)
{
    struct pl_daemon d = {"postlink-sync", NULL, 0, 0, NULL};
    const char *sock;
    char err[512];
    int rc;

    pl_daemon_start(&d, argc, argv, NULL, NULL);
    sm.conf = d.conf;
    if (pl_peers_parse(&sm.peers, pl_conf_str(d.conf, "sync_peers"), err, sizeof(err)) != 0) {
        msg_error("sync_peers: %s", err);
        return 78;
    }
    if (sm.peers.nfp > 0)
        msg_info("sync_peers lists %zu certificate fingerprint(s): they are recognised by "
                 "postlink-policyd, which must be in smtpd_data_restrictions", sm.peers.nfp);
    sm.transport_domain = pl_conf_str(d.conf, "sync_transport_domain");
    sm.hostname = pl_daemon_hostname(d.conf);
    sm.max_targets = (size_t)pl_conf_int(d.conf, "control_max_targets");
    sm.pending_ttl = pl_conf_int(d.conf, "pending_ttl");
    sock = pl_conf_str(d.conf, "sync_milter_socket");
    if ((rc = pl_milter_listen(&sync_filter_desc, sock, pl_conf_str(d.conf, "db_home"))) != 0)
        return rc;
    pl_daemon_open_store(&d, &sm.store);
    smfi_settimeout(60);
    msg_info("postlink-sync %s listening on %s (store %s, enabled domains: %s)",
             PACKAGE_VERSION, sock, pl_conf_str(d.conf, "db_home"),
             pl_conf_str(d.conf, "enabled_domains"));
    rc = smfi_main();
    msg_info("postlink-sync stopping");
    pl_store_close(sm.store);
    pl_peers_free(&sm.peers);
    pl_conf_free(d.conf);
    return rc == MI_SUCCESS ? 0 : 1;
}
