/* tag_main.c -- postlink-tag, the milter of capability 4 (messenger
 * tagging and presence) in a process of its own: its place on the server
 * skeleton (server/milter_server.h).  The filter is tag_filter.c, its
 * settings tag_module.c.  See postlink-tag(8). */
#include "config.h"

#include "milter_server.h"
#include "server.h"
#include "tag_milter.h"

static int tag_open(void)
{
    static const struct pl_filter *const filters[] = {&tag_filter};
    const struct pl_cfg *cfg = pl_server_cfg();
    return pl_milter_open(filters, 1, cfg->tag_milter_socket, cfg->postlink_user);
}

static int tag_run(void)
{
    tag_module_start(pl_server_store());
    return pl_milter_run();
}

static const struct pl_service tag_service = {
    .name = "postlink-tag",
    .needs_store = 1,
    .configure = tag_module_configure,
    .open = tag_open,
    .run = tag_run,
    .finish = tag_module_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&tag_service, argc, argv);
}
