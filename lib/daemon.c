/* daemon.c -- common daemon start-up (daemon.h). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "privs.h"
#include "store_conf.h"
#include "strutil.h"

volatile sig_atomic_t pl_daemon_stop, pl_daemon_reload;

static void usage(const struct pl_daemon *d)
{
    fprintf(stderr, "usage: %s [-f] [-v] [-c postlink.conf] [-o name=value]...\n"
                    "  -f  stay in the foreground and log to stderr as well as syslog\n"
                    "See %s(8) and postlink.conf(5).\n", d->name, d->name);
    exit(64);
}

int pl_daemon_start(struct pl_daemon *d, int argc, char **argv, const char *extra_opts,
                    int (*on_opt)(int ch, const char *arg))
{
    char spec[64];
    const char *over[64];
    int nover = 0, ch;

    snprintf(spec, sizeof(spec), "c:o:fvh%s", extra_opts ? extra_opts : "");
    d->conf_path = getenv("POSTLINK_CONF");
    if (d->conf_path == NULL || *d->conf_path == '\0')
        d->conf_path = PL_DEFAULT_CONF;
    pl_log_open(d->name, PL_LOG_STDERR, -1);
    while ((ch = getopt(argc, argv, spec)) != -1) {
        switch (ch) {
        case 'c': d->conf_path = optarg; break;
        case 'o':
            if (nover < 64)
                over[nover++] = optarg;
            break;
        case 'f': d->foreground = 1; break;
        case 'v': d->verbose++; break;
        case 'h': usage(d); break;
        default:
            if (ch == '?' || on_opt == NULL || on_opt(ch, optarg) != 0)
                usage(d);
        }
    }
    d->conf = pl_conf_new(pl_conf_params);
    pl_conf_load(d->conf, d->conf_path, 0);
    for (int i = 0; i < nover; i++) {
        char name[128];
        const char *eq = strchr(over[i], '=');
        if (eq == NULL || (size_t)(eq - over[i]) >= sizeof(name)) {
            msg_error("-o %s: expected name=value", over[i]);
            exit(64);
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - over[i]), over[i]);
        pl_conf_set(d->conf, name, eq + 1);
    }
    if (pl_conf_nerrors(d->conf) > 0) {
        for (size_t i = 0; i < pl_conf_nerrors(d->conf); i++)
            msg_error("%s", pl_conf_error(d->conf, i));
        msg_error("fatal: configuration errors; nothing started");
        exit(78);
    }
    static char ident[128];
    const char *dash = strchr(d->name, '-');
    snprintf(ident, sizeof(ident), "%s/%s", pl_conf_str(d->conf, "syslog_name"),
             dash ? dash + 1 : d->name);
    pl_log_open(ident,
                d->foreground ? PL_LOG_BOTH : PL_LOG_SYSLOG,
                pl_log_facility(pl_conf_str(d->conf, "syslog_facility")));
    if (d->verbose)
        pl_log_verbose(d->verbose);
    return optind;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        pl_daemon_reload = 1;
    else
        pl_daemon_stop = 1;
}

void pl_daemon_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

const char *pl_daemon_hostname(const pl_conf *conf)
{
    static char host[256];
    const char *h = pl_conf_str(conf, "sync_hostname");
    if (h && *h)
        return h;
    if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    return host;
}

void pl_daemon_open_store(struct pl_daemon *d, struct pl_store **sp)
{
    const char *home = pl_conf_str(d->conf, "db_home");
    char err[512];
    int rc;

    if (pl_privs_drop_to_owner(home, err, sizeof(err)) != 0) {
        msg_error("%s", err);
        exit(77);
    }
    if (geteuid() == 0)
        msg_warn("still running as root: %s belongs to root (postlinkctl init gives it to %s)",
                 home, pl_conf_str(d->conf, "postlink_user"));
    if ((rc = pl_store_open_conf(sp, d->conf, err, sizeof(err))) != PL_OK) {
        msg_error("cannot open the store in %s: %s", home, err);
        exit(rc == PL_TEMP ? 75 : 71);
    }
}

char *pl_daemon_read_secret(const pl_conf *conf, const char *param)
{
    const char *path = pl_conf_str(conf, param);
    struct stat st;
    char buf[512];
    FILE *fp;

    if (path == NULL || *path == '\0')
        return NULL;
    if ((fp = fopen(path, "r")) == NULL) {
        msg_error("%s %s: %s", param, path, strerror(errno));
        exit(78);
    }
    if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 0004))
        msg_warn("%s %s is readable by everyone: chmod o-r", param, path);
    if (fgets(buf, sizeof(buf), fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    pl_strtrim_right(buf);
    return pl_xstrdup(buf);
}
