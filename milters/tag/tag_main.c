/* tag_main.c -- postlink-tag, the milter of capability 4 (messenger
 * tagging and presence): start-up, configuration, the tag keys, the store
 * and libmilter's main loop.  The per-message work is in tag_filter.c and
 * the files it calls.  See postlink-tag(8). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "log.h"
#include "milter_listen.h"
#include "tag_milter.h"

struct tag_milter tm;

int main(int argc, char **argv)
{
    struct pl_daemon d = {"postlink-tag", NULL, 0, 0, NULL};
    const char *sock, *keys;
    char err[512];
    struct stat st;
    int rc;

    pl_daemon_start(&d, argc, argv, NULL, NULL);
    tm.conf = d.conf;
    keys = pl_conf_str(d.conf, "tag_keys_file");
    if (pl_tagkeys_load(&tm.keys, keys, err, sizeof(err)) != 0) {
        msg_error("tag_keys_file %s", err);
        return 78;
    }
    if (stat(keys, &st) == 0 && (st.st_mode & 0004))
        msg_warn("tag_keys_file %s is readable by everyone: chmod o-r (anyone could forge tags)", keys);
    if (tm.keys.signer == NULL)
        msg_warn("tag_keys_file %s has no \"sign\" key: mail is checked but not tagged", keys);
    tm.xmpp_jid = pl_conf_str(d.conf, "xmpp_jid");
    tm.lookup_socket = pl_conf_str(d.conf, "xmpp_lookup_socket");
    tm.max_age = pl_conf_int(d.conf, "tag_max_age");
    tm.presence_ms = (unsigned)pl_conf_int(d.conf, "presence_timeout_ms");
    sock = pl_conf_str(d.conf, "tag_milter_socket");
    if ((rc = pl_milter_listen(&tag_filter_desc, sock, pl_conf_str(d.conf, "db_home"))) != 0)
        return rc;
    pl_daemon_open_store(&d, &tm.store);
    smfi_settimeout(60);
    msg_info("postlink-tag %s listening on %s (%zu key(s), signing with %s, presence budget %u ms)",
             PACKAGE_VERSION, sock, tm.keys.n, tm.keys.signer ? tm.keys.signer->id : "none",
             tm.presence_ms);
    rc = smfi_main();
    msg_info("postlink-tag stopping");
    pl_store_close(tm.store);
    pl_tagkeys_free(&tm.keys);
    pl_conf_free(d.conf);
    return rc == MI_SUCCESS ? 0 : 1;
}
