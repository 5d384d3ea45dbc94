/* conf_params.h -- struct pl_cfg: every postlink.conf parameter as a typed
 * field (conf_params.def is the list), bound once when a configuration is
 * loaded, so that programs read cfg->pending_ttl instead of looking a name
 * up at run time.  Strings and lists point into the pl_conf they were bound
 * from and live as long as it does. */
#ifndef PL_CONF_PARAMS_H
#define PL_CONF_PARAMS_H

#include "conf.h"

#define PL_CFG_CTYPE_STR const char *
#define PL_CFG_CTYPE_BOOL int
#define PL_CFG_CTYPE_INT long long
#define PL_CFG_CTYPE_SIZE long long
#define PL_CFG_CTYPE_TIME long long
#define PL_CFG_CTYPE_LIST const char *   /* the text: walk it with pl_conf_next_item() */

struct pl_cfg {
#define X(name, type, def, min, max, check, when, help) PL_CFG_CTYPE_##type name;
#include "conf_params.def"
#undef X
};

/* The typed view of conf (after pl_conf_load / pl_conf_set); owned by conf
 * and recomputed by each call. */
const struct pl_cfg *pl_conf_cfg(pl_conf *conf);

#endif
