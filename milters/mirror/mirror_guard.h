/* mirror_guard.h -- the postlink-mirror guard filter, a module of
 * postlink-milter (milter_filters = ..., mirror): on the listener
 * postlink-mirrord hands its copies to (milter_macro_daemon_name =
 * mirror_guard_daemon_name) it drops a copy whose hand-over token was
 * taken before (a hand-over repeated after a crash: never two copies);
 * everywhere else it removes X-Postlink-Mirror fields a sender wrote. */
#ifndef PL_MIRROR_GUARD_H
#define PL_MIRROR_GUARD_H

#include "milter_api.h"

#include "conf.h"
#include "conf_params.h"
#include "store.h"

extern const struct pl_filter mirror_guard_filter;

int mirror_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                            size_t errlen);
void mirror_module_start(pl_store *store);
void mirror_module_finish(void);

#endif
