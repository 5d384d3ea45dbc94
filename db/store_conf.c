/* store_conf.c -- maps the db_* parameters of postlink.conf onto store
 * options, so every process opens the environment the same way. */
#include "config.h"

#include <string.h>

#include "store_conf.h"

void pl_store_opts_from_conf(struct pl_store_opts *o, const pl_conf *conf)
{
    memset(o, 0, sizeof(*o));
    o->home = pl_conf_str(conf, "db_home");
    o->cache_bytes = (uint64_t)pl_conf_int(conf, "db_cache_size");
    o->log_file_bytes = (uint32_t)pl_conf_int(conf, "db_log_file_size");
    o->lock_timeout_ms = (unsigned)pl_conf_int(conf, "db_lock_timeout") * 1000;
    o->checkpoint_secs = (unsigned)pl_conf_int(conf, "db_checkpoint_interval");
}

int pl_store_open_conf(pl_store **sp, const pl_conf *conf, char *err, size_t errlen)
{
    struct pl_store_opts o;
    pl_store_opts_from_conf(&o, conf);
    return pl_store_open(sp, &o, err, errlen);
}
