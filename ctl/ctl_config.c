/* ctl_config.c -- "postlinkctl check-config": validate postlink.conf and
 * say where each problem is (file:line), like "postfix check". */
#include "config.h"

#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"

int ctl_check_config(struct ctl *ctl, int argc, char **argv)
{
    int show_non_default = 0, rc = CTL_OK;
    struct stat st;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0) {
            show_non_default = 1;
        } else {
            fprintf(stderr, "postlinkctl: check-config: unknown argument %s\n", argv[i]);
            return CTL_USAGE;
        }
    }
    for (size_t i = 0; i < pl_conf_nwarnings(ctl->conf); i++)
        fprintf(stderr, "postlinkctl: warning: %s\n", pl_conf_warning(ctl->conf, i));
    for (size_t i = 0; i < pl_conf_nerrors(ctl->conf); i++)
        fprintf(stderr, "postlinkctl: error: %s\n", pl_conf_error(ctl->conf, i));
    if (pl_conf_nerrors(ctl->conf) > 0)
        return CTL_CONFIG;

    /* Facts about the machine that make the configuration unusable. */
    if (getpwnam(pl_conf_str(ctl->conf, "postlink_user")) == NULL) {
        fprintf(stderr, "postlinkctl: error: %s: postlink_user \"%s\" is not an account on "
                "this machine\n", pl_conf_origin(ctl->conf, "postlink_user")
                ? pl_conf_origin(ctl->conf, "postlink_user") : ctl->conf_path,
                pl_conf_str(ctl->conf, "postlink_user"));
        rc = CTL_CONFIG;
    }
    if (stat(pl_conf_str(ctl->conf, "db_home"), &st) < 0)
        fprintf(stderr, "postlinkctl: warning: db_home %s does not exist yet "
                "(run postlinkctl init)\n", pl_conf_str(ctl->conf, "db_home"));
    if (pl_conf_list(ctl->conf, "enabled_domains")[0] == NULL)
        fprintf(stderr, "postlinkctl: warning: enabled_domains is empty: postlink will pass "
                "all mail untouched\n");

    if (show_non_default) {
        for (const struct pl_conf_param *p = pl_conf_params; p->name; p++)
            if (pl_conf_is_set(ctl->conf, p->name))
                printf("%s = %s\n", p->name, pl_conf_str(ctl->conf, p->name));
    }
    if (rc == CTL_OK)
        printf("%s: configuration OK\n", ctl->conf_path);
    return rc;
}
