/* route_main.c -- postlink-route, the milter of capability 3 (routing
 * relayed mail over SIP) in a process of its own: its place on the server
 * skeleton (server/milter_server.h).  The filter is route_filter.c, its
 * settings and tables route_module.c.  See postlink-route(8). */
#include "config.h"

#include "milter_server.h"
#include "route_milter.h"
#include "server.h"

static int route_open(void)
{
    static const struct pl_filter *const filters[] = {&route_filter};
    const struct pl_cfg *cfg = pl_server_cfg();
    return pl_milter_open(filters, 1, cfg->route_milter_socket, cfg->postlink_user);
}

static int route_run(void)
{
    route_module_start(pl_server_store());
    return pl_milter_run();
}

static const struct pl_service route_service = {
    .name = "postlink-route",
    .needs_store = 1,
    .configure = route_module_configure,
    .open = route_open,
    .run = route_run,
    .finish = route_module_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&route_service, argc, argv);
}
