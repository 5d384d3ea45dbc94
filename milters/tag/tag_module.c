/* tag_module.c -- the postlink-tag filter as a module a milter process
 * hosts (postlink-tag alone, or postlink-milter with others): its
 * settings and keys from postlink.conf, its start with the store, its
 * end.  The per-message work is in tag_filter.c and the files it calls.
 * See postlink-tag(8). */
#include "config.h"

#include <stdio.h>
#include <sys/stat.h>

#include "log.h"
#include "server.h"
#include "tag_milter.h"

struct tag_milter tm;

int tag_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                         size_t errlen)
{
    (void)conf;
    if (!reload) {
        char why[400];
        struct stat st;
        if (pl_tagkeys_load(&tm.keys, cfg->tag_keys_file, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "tag_keys_file %s", why);
            return -1;
        }
        if (stat(cfg->tag_keys_file, &st) == 0 && (st.st_mode & 0004))
            msg_warn("tag_keys_file %s is readable by everyone: chmod o-r (anyone could forge "
                     "tags)", cfg->tag_keys_file);
        if (tm.keys.signer == NULL)
            msg_warn("tag_keys_file %s has no \"sign\" key: mail is checked but not tagged",
                     cfg->tag_keys_file);
        tm.xmpp_jid = cfg->xmpp_jid;
        tm.lookup_socket = cfg->xmpp_lookup_socket;
    }
    tm.cfg = cfg;
    tm.max_age = cfg->tag_max_age;
    tm.presence_ms = (unsigned)cfg->presence_timeout_ms;
    return 0;
}

void tag_module_start(pl_store *store)
{
    tm.store = store;
    msg_info("postlink-tag %s (%zu key(s), signing with %s, presence budget %u ms)",
             PACKAGE_VERSION, tm.keys.n, tm.keys.signer ? tm.keys.signer->id : "none",
             tm.presence_ms);
}

void tag_module_finish(void)
{
    pl_tagkeys_free(&tm.keys);
}
