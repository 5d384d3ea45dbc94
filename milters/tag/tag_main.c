/* tag_main.c -- postlink-tag, the milter of capability 4 (messenger
 * tagging and presence): its settings, the tag keys, and its place on the
 * server skeleton (server/milter_server.h).  The per-message work is in
 * tag_filter.c and the files it calls.  See postlink-tag(8). */
#include "config.h"

#include <stdio.h>
#include <sys/stat.h>

#include "log.h"
#include "milter_server.h"
#include "server.h"
#include "tag_milter.h"

struct tag_milter tm;

static int tag_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
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

static int tag_open(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    return pl_milter_open(&tag_filter_desc, cfg->tag_milter_socket, cfg->postlink_user);
}

static int tag_run(void)
{
    tm.store = pl_server_store();
    msg_info("postlink-tag %s listening on %s (%zu key(s), signing with %s, presence budget %u ms)",
             PACKAGE_VERSION, pl_server_cfg()->tag_milter_socket, tm.keys.n,
             tm.keys.signer ? tm.keys.signer->id : "none", tm.presence_ms);
    return pl_milter_run();
}

static void tag_finish(void)
{
    pl_tagkeys_free(&tm.keys);
}

static const struct pl_service tag_service = {
    .name = "postlink-tag",
    .needs_store = 1,
    .configure = tag_configure,
    .open = tag_open,
    .run = tag_run,
    .finish = tag_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&tag_service, argc, argv);
}
