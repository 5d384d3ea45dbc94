/* sync_main.c -- postlink-sync, the milter of capability 1 (message-state
 * sync) in a process of its own: its place on the server skeleton
 * (server/milter_server.h).  The filter is sync_filter.c, its settings
 * sync_module.c.  See postlink-sync(8). */
#include "config.h"

#include "milter_server.h"
#include "server.h"
#include "sync_milter.h"

static int sync_open(void)
{
    static const struct pl_filter *const filters[] = {&sync_filter};
    const struct pl_cfg *cfg = pl_server_cfg();
    return pl_milter_open(filters, 1, cfg->sync_milter_socket, cfg->postlink_user);
}

static int sync_run(void)
{
    sync_module_start(pl_server_store());
    return pl_milter_run();
}

static const struct pl_service sync_service = {
    .name = "postlink-sync",
    .needs_store = 1,
    .configure = sync_module_configure,
    .open = sync_open,
    .run = sync_run,
    .finish = sync_module_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&sync_service, argc, argv);
}
