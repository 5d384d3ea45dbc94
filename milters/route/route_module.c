/* route_module.c -- the postlink-route filter as a module a milter process
 * hosts (postlink-route alone, or postlink-milter with others): its
 * settings from postlink.conf, the routing tables it holds in memory (one
 * snapshot per table generation, shared by reference between the threads
 * that run ends of messages), its start and its end.  See
 * postlink-route(8). */
#include "config.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "route_milter.h"
#include "server.h"
#include "siproute.h"

struct route_milter rm;

struct route_snap {
    struct route_tables t;
    atomic_uint refs;
};

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct route_snap *cur;

int route_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                           size_t errlen)
{
    struct route_settings *s = pl_xcalloc(1, sizeof(*s));
    char order[64], why[256];
    (void)conf;
    snprintf(s->country_code, sizeof(s->country_code), "%s", cfg->route_country_code);
    s->opts.country_code = s->country_code;
    if (route_order_parse(cfg->route_order_list, &s->opts, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "route_order: %s", why);
        free(s);
        return -1;
    }
    if (pl_netlist_parse(&s->trusted, cfg->route_trusted_networks, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "route_trusted_networks: %s", why);
        free(s);
        return -1;
    }
    s->relay_transports = cfg->route_relay_transports_list;
    s->local_domains = cfg->route_local_domains_list;
    s->enabled_domains = cfg->enabled_domains_list;
    s->scan_max = (size_t)cfg->route_scan_max;
    s->older = atomic_load(&rm.set);
    atomic_store(&rm.set, s);
    if (reload) {
        route_order_text(&s->opts, ",", order, sizeof(order));
        msg_info("postlink-route: settings reloaded (order %s)", order);
    }
    return 0;
}

void route_module_start(pl_store *store)
{
    struct route_settings *s = atomic_load(&rm.set);
    char order[64];
    rm.store = store;
    g_mime_init();
    route_order_text(&s->opts, ", ", order, sizeof(order));
    msg_info("postlink-route %s (rules in the order %s, country code %s)", PACKAGE_VERSION, order,
             s->country_code[0] ? s->country_code : "none");
}

void route_module_finish(void)
{
    struct route_settings *s = atomic_exchange(&rm.set, NULL);
    while (s) {
        struct route_settings *o = s->older;
        pl_netlist_free(&s->trusted);
        free(s);
        s = o;
    }
    if (cur)
        route_snap_put(cur);
    cur = NULL;
}

struct route_snap *route_snap_get(pl_txn *t, int *rc)
{
    uint64_t gen;
    struct route_snap *s;
    if ((*rc = pl_route_gen(t, &gen)) != PL_OK)
        return NULL;
    pthread_mutex_lock(&snap_lock);
    if (cur == NULL || cur->t.gen != gen) {
        struct route_snap *n = pl_xcalloc(1, sizeof(*n));
        atomic_init(&n->refs, 1);
        if ((*rc = route_tables_load(t, &n->t)) != PL_OK) {
            pthread_mutex_unlock(&snap_lock);
            route_tables_free(&n->t);
            free(n);
            return NULL;
        }
        if (cur)
            route_snap_put(cur);
        cur = n;
        msg_info("postlink-route: tables of generation %llu: %zu prefix(es), %zu keyword(s)",
                 (unsigned long long)gen, n->t.nprefix, n->t.nkw);
    }
    s = cur;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&snap_lock);
    return s;
}

const struct route_tables *route_snap_tables(const struct route_snap *s) { return &s->t; }

void route_snap_put(struct route_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        route_tables_free(&s->t);
        free(s);
    }
}
