/* milter_main.c -- postlink-milter: several postlink filters in one
 * process on one milter socket (milter_filters = tag, route, sync), for
 * listeners where one milter connection per SMTP session instead of one
 * per filter is worth giving up the isolation of separate processes.
 * Each filter is still its own module with its own settings
 * (milters/sync/sync_module.c, milters/tag/tag_module.c,
 * milters/route/route_module.c, milters/mirror/mirror_guard.c); the server
 * layer calls them in the order listed.  See postlink-milter(8). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "milter_server.h"
#include "mirror_guard.h"
#include "route_milter.h"
#include "server.h"
#include "sync_milter.h"
#include "tag_milter.h"

struct module {
    const char *word;
    const struct pl_filter *filter;
    int (*configure)(const pl_conf *, const struct pl_cfg *, int, char *, size_t);
    void (*start)(pl_store *);
    void (*finish)(void);
};

static const struct module modules[] = {
    {"tag", &tag_filter, tag_module_configure, tag_module_start, tag_module_finish},
    {"route", &route_filter, route_module_configure, route_module_start, route_module_finish},
    {"mirror", &mirror_guard_filter, mirror_module_configure, mirror_module_start,
     mirror_module_finish},
    {"sync", &sync_filter, sync_module_configure, sync_module_start, sync_module_finish},
};
#define NMOD (sizeof(modules) / sizeof(modules[0]))

static const struct module *on[NMOD];  /* in milter_filters order */
static unsigned non;

static int combined_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload,
                              char *err, size_t errlen)
{
    if (!reload) {                     /* milter_filters is read once */
        non = 0;
        for (const char *const *w = cfg->milter_filters_list; *w; w++)
            for (unsigned i = 0; i < NMOD; i++)
                if (strcmp(*w, modules[i].word) == 0)
                    on[non++] = &modules[i];
    }
    for (unsigned i = 0; i < non; i++)
        if (on[i]->configure(conf, cfg, reload, err, errlen) != 0)
            return -1;
    return 0;
}

static int combined_open(void)
{
    const struct pl_filter *filters[NMOD];
    const struct pl_cfg *cfg = pl_server_cfg();
    for (unsigned i = 0; i < non; i++)
        filters[i] = on[i]->filter;
    return pl_milter_open(filters, non, cfg->milter_socket, cfg->postlink_user);
}

static int combined_run(void)
{
    for (unsigned i = 0; i < non; i++)
        on[i]->start(pl_server_store());
    return pl_milter_run();
}

static void combined_finish(void)
{
    for (unsigned i = 0; i < non; i++)
        on[i]->finish();
}

static const struct pl_service combined_service = {
    .name = "postlink-milter",
    .needs_store = 1,
    .configure = combined_configure,
    .open = combined_open,
    .run = combined_run,
    .finish = combined_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&combined_service, argc, argv);
}
