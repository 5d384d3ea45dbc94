/* route_milter.h -- what the postlink-route milter's files share: its
 * settings (replaced whole on SIGHUP), the store, the tables held in
 * memory, and one message's facts as the callbacks collect them. */
#ifndef PL_ROUTE_MILTER_H
#define PL_ROUTE_MILTER_H

#include <stddef.h>

#include "milter_api.h"

#include "conf.h"
#include "conf_params.h"
#include "netmatch.h"
#include "route_decide.h"
#include "store.h"
#include "strutil.h"

struct route_settings {
    struct route_opts opts;
    char country_code[8];
    struct pl_netlist trusted;
    const char *const *relay_transports;   /* from the pl_cfg it was made from */
    const char *const *local_domains, *const *enabled_domains;
    size_t scan_max;
    struct route_settings *older;          /* kept until finish: a callback may hold one */
};

struct route_milter {
    struct route_settings *_Atomic set;
    pl_store *store;
};

extern struct route_milter rm;
extern const struct pl_filter route_filter;

/* The module's life in a milter process (route_module.c). */
int route_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                           size_t errlen);
void route_module_start(pl_store *store);
void route_module_finish(void);

/* The tables in memory, shared by the callbacks' threads: a reference to
 * the snapshot of generation gen, loaded anew when the store's moved. */
struct route_snap;
struct route_snap *route_snap_get(pl_txn *t, int *rc);
const struct route_tables *route_snap_tables(const struct route_snap *s);
void route_snap_put(struct route_snap *s);

#endif
