/* postlinkctl.c -- postlink's administration command: a table of verbs
 * {name, help, run}; each verb lives in its own ctl_*.c module.
 * See postlinkctl(8). */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

struct verb {
    const char *name;
    const char *usage;
    const char *help;
    int (*run)(struct ctl *, int, char **);
};

static const struct verb verbs[] = {
    {"init", "init", "create db_home and the store (schema upgrade included)", ctl_init},
    {"status", "status [--json]", "store health, sizes, checkpoints, write probe", ctl_status},
    {"db", "db check|recover|backup DIR [--json]",
     "verify a hot backup, make a hot backup, run recovery and checkpoint", ctl_db},
    {"device", "device add|del USER ADDRESS [--name N]",
     "register or remove a device of USER (message-state sync)", ctl_device},
    {"", "device list [USER] [--json]", "list registered devices", NULL},
    {"state", "state show USER [MESSAGE-ID] [--json]",
     "the state of USER's messages (read, replied, saved, deleted) and versions", ctl_state},
    {"pending", "pending list [USER] [--expired] [--json]",
     "controls held until their target arrives (or expired ones)", ctl_pending},
    {"", "pending purge [USER]", "delete expired pending controls", NULL},
    {"messenger", "messenger link MAILADDR XMPP-JID",
     "opt MAILADDR in to messenger tagging with its XMPP account", ctl_messenger},
    {"", "messenger unlink MAILADDR", "stop tagging MAILADDR's mail", NULL},
    {"", "messenger share MAILADDR on|off", "show MAILADDR's presence to recipients, or not", NULL},
    {"", "messenger list [--json]", "links, presence sharing, subscriptions, cached presence", NULL},
    {"route", "route prefix add PREFIX [--digits N]",
     "numbers with PREFIX and N more digits are IP phone numbers (SIP routing)", ctl_route},
    {"", "route map add ADDRESS|DOMAIN|*.DOMAIN NUMBER", "route a recipient, domain or wildcard to NUMBER", NULL},
    {"", "route keyword add KEYWORD NUMBER", "route mail naming KEYWORD (address, header, body) to NUMBER", NULL},
    {"", "route prefix|map|keyword del KEY | list [--json]", "remove a row, or list a table", NULL},
    {"", "route test ADDRESS [--message FILE] [--stranger] [--json]",
     "which rule gives ADDRESS (and the message) which number", NULL},
    {"mirror", "mirror add USER --primary URL --login L --secret-file F --deliver-to ADDR",
     "mirror USER's primary POP3 mailbox ([--mode delete|mark] [--interval S] [--adopt] ...)", ctl_mirror},
    {"", "mirror list|status [USER] [--json]", "mirror accounts; their ids and last sync", NULL},
    {"", "mirror del USER", "stop mirroring USER (its ids and status are forgotten)", NULL},
    {"", "mirror sync USER | fetch USER UIDL [--wait S]", "sync now, or fetch one id again", NULL},
    {"", "mirror release USER [--wait S]", "apply the withdrawals the mass-vanish guard held back", NULL},
    {"push", "push device add USER NAME [--json]",
     "add USER's push device NAME; prints its token, shown only this once", ctl_push},
    {"", "push device list [USER] [--json]", "push devices: selector, created, messages waiting/sent/processed", NULL},
    {"", "push device del USER NAME", "remove the device with its queue and processed store", NULL},
    {"", "push queue USER [--json]", "USER's push messages in arrival order, each device's state", NULL},
    {"", "push vapid-key generate|show FILE [--json]",
     "write a new VAPID key for Web Push (generate) and print its public key (applicationServerKey)", NULL},
    {"check-config", "check-config [-n]",
     "validate postlink.conf (errors name file:line); -n prints non-defaults", ctl_check_config},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *fp)
{
    fprintf(fp, "usage: postlinkctl [-c postlink.conf] [-o name=value]... [-v] command [args]\n\n"
                "commands:\n");
    for (const struct verb *v = verbs; v->name; v++)
        fprintf(fp, "  %-38s %s\n", v->usage, v->help);
    fprintf(fp, "\nThe configuration file is -c FILE, else $POSTLINK_CONF, else %s.\n"
                "See postlinkctl(8) and postlink.conf(5).\n", PL_DEFAULT_CONF);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct ctl ctl = {0};
    const char *overrides[64];
    int noverrides = 0, ch;

    pl_log_open("postlinkctl", PL_LOG_STDERR, -1);
    ctl.conf_path = getenv("POSTLINK_CONF");
    if (ctl.conf_path == NULL || *ctl.conf_path == '\0')
        ctl.conf_path = PL_DEFAULT_CONF;

    while ((ch = getopt_long(argc, argv, "+c:o:vhV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            ctl.conf_path = optarg;
            break;
        case 'o':
            if (noverrides == 64) {
                fprintf(stderr, "postlinkctl: more than 64 -o options\n");
                return CTL_USAGE;
            }
            overrides[noverrides++] = optarg;
            break;
        case 'v':
            pl_log_verbose(1);
            break;
        case 'h':
            usage(stdout);
            return CTL_OK;
        case 'V':
            printf("postlinkctl %s\n", PACKAGE_VERSION);
            return CTL_OK;
        default:
            usage(stderr);
            return CTL_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return CTL_USAGE;
    }
    if (strcmp(argv[0], "help") == 0) {
        usage(stdout);
        return CTL_OK;
    }

    ctl.conf = pl_conf_new(pl_conf_params);
    /* The file must exist, the default one too: a missing file is a
     * configuration error (exit 78, naming the path), never "all defaults". */
    pl_conf_load(ctl.conf, ctl.conf_path, 0);
    for (int i = 0; i < noverrides; i++) {
        char *eq = strchr(overrides[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "postlinkctl: -o %s: expected name=value\n", overrides[i]);
            pl_conf_free(ctl.conf);
            return CTL_USAGE;
        }
        *eq = '\0';
        pl_conf_set(ctl.conf, overrides[i], eq + 1);
    }
    ctl.conf_errors = (int)pl_conf_nerrors(ctl.conf);

    for (const struct verb *v = verbs; v->name; v++) {
        if (v->run != NULL && strcmp(v->name, argv[0]) == 0) {
            int rc;
            /* Only check-config may run on a broken configuration. */
            if (ctl.conf_errors && v->run != ctl_check_config) {
                for (size_t i = 0; i < pl_conf_nerrors(ctl.conf); i++)
                    fprintf(stderr, "postlinkctl: %s\n", pl_conf_error(ctl.conf, i));
                fprintf(stderr, "postlinkctl: fix the configuration first "
                                "(postlinkctl check-config)\n");
                pl_conf_free(ctl.conf);
                return CTL_CONFIG;
            }
            rc = v->run(&ctl, argc, argv);
            pl_conf_free(ctl.conf);
            return rc;
        }
    }
    fprintf(stderr, "postlinkctl: unknown command \"%s\"\n", argv[0]);
    usage(stderr);
    pl_conf_free(ctl.conf);
    return CTL_USAGE;
}
