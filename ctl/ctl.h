/* ctl.h -- shared declarations of postlinkctl's command modules. */
#ifndef PL_CTL_H
#define PL_CTL_H

#include "conf.h"
#include "store.h"

/* Exit codes (sysexits.h where one fits). */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 64, CTL_DATAERR = 65, CTL_NOINPUT = 66, CTL_CONFIG = 78,
       CTL_TEMP = 75 };

struct ctl {
    pl_conf *conf;
    const char *conf_path;
    int conf_errors;      /* errors found while loading */
    int json;             /* --json given */
};

/* Open the store named by db_home (dropping root to its owner first). On
 * failure prints why and returns the exit code to use. */
int ctl_open_store(struct ctl *ctl, pl_store **sp);

int ctl_check_config(struct ctl *ctl, int argc, char **argv);
int ctl_init(struct ctl *ctl, int argc, char **argv);
int ctl_status(struct ctl *ctl, int argc, char **argv);
int ctl_db(struct ctl *ctl, int argc, char **argv);
int ctl_device(struct ctl *ctl, int argc, char **argv);
int ctl_state(struct ctl *ctl, int argc, char **argv);
int ctl_pending(struct ctl *ctl, int argc, char **argv);
int ctl_messenger(struct ctl *ctl, int argc, char **argv);
int ctl_route(struct ctl *ctl, int argc, char **argv);
int ctl_mirror(struct ctl *ctl, int argc, char **argv);
int ctl_push(struct ctl *ctl, int argc, char **argv);

#endif
