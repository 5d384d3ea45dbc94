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
#define PL_CFG_CTYPE_LIST const char *   /* the text, as written (expanded) */

/* A LIST parameter has a second field, NAME_list: its items, NULL-ended. */
#define PL_CFG_MORE_STR(name)
#define PL_CFG_MORE_BOOL(name)
#define PL_CFG_MORE_INT(name)
#define PL_CFG_MORE_SIZE(name)
#define PL_CFG_MORE_TIME(name)
#define PL_CFG_MORE_LIST(name) const char *const *name##_list;

struct pl_cfg {
#define X(name, type, def, min, max, check, when, help) PL_CFG_CTYPE_##type name; PL_CFG_MORE_##type(name)
#include "conf_params.def"
#undef X
};

/* Is word (any letter case) an item of list?  The value for key in a list
 * of "key=value" items (e.g. imap_url), or NULL. */
int pl_cfg_list_has(const char *const *list, const char *word);
const char *pl_cfg_list_map(const char *const *list, const char *key);

/* The typed view of conf (after pl_conf_load / pl_conf_set); owned by conf
 * and recomputed by each call. */
const struct pl_cfg *pl_conf_cfg(pl_conf *conf);

#endif
