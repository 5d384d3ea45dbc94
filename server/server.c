/* server.c -- the server skeleton (server.h): options, configuration and
 * its reload, privileges, the signal thread, the store, and shutdown. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"
#include "listener.h"
#include "log.h"
#include "privs.h"
#include "server.h"
#include "store_conf.h"
#include "strutil.h"

#define MAX_OVERRIDES 64
#define MAX_LISTENERS 8

static const struct pl_service *svc;
static const char *conf_path;
static const char *overrides[MAX_OVERRIDES];
static int noverrides, foreground, verbose, check_only, allow_root;

static _Atomic(pl_conf *) cur_conf;
static _Atomic(const struct pl_cfg *) cur_cfg;
static struct { pl_conf **v; size_t n; } retired;   /* replaced by reloads; freed at exit */
static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER;   /* reload vs. exit */
static pl_store *store;
static atomic_int stopping;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static pl_listener *listeners[MAX_LISTENERS];
static int nlisteners;
static pthread_mutex_t listeners_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*stop_hook)(void);
static sigset_t handled;
static atomic_int bell_fd = -1;   /* read by the signal thread */

const struct pl_cfg *pl_server_cfg(void) { return atomic_load(&cur_cfg); }
pl_store *pl_server_store(void) { return store; }
int pl_server_stopping(void) { return atomic_load(&stopping); }
int pl_server_verbose(void) { return verbose; }
void pl_server_set_stop_hook(void (*hook)(void)) { stop_hook = hook; }

int pl_server_sleep_ms(unsigned ms)
{
    struct timespec deadline;
    int stop;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stop_mu);
    while (!atomic_load(&stopping) && pthread_cond_timedwait(&stop_cv, &stop_mu, &deadline) == 0)
        ;
    stop = atomic_load(&stopping);
    pthread_mutex_unlock(&stop_mu);
    return stop;
}

int pl_server_nap_ms(unsigned ms)
{
    if (bell_fd < 0)
        return pl_server_sleep_ms(ms);
    if (!atomic_load(&stopping))
        (void)pl_doorbell_wait(bell_fd, ms);
    return atomic_load(&stopping);
}

void pl_server_adopt(pl_listener *l)
{
    pthread_mutex_lock(&listeners_mu);
    if (nlisteners < MAX_LISTENERS)
        listeners[nlisteners++] = l;
    else
        abort();                     /* a program opens a fixed, small number */
    pthread_mutex_unlock(&listeners_mu);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-f] [-v] [-n] [-R] [-c postlink.conf] [-o name=value]...\n"
            "  -c FILE        configuration file (default %s, or $POSTLINK_CONF)\n"
            "  -o name=value  override one parameter of the file\n"
            "  -f             stay in the foreground and log to stderr as well as syslog\n"
            "  -v             more logging (repeat for more)\n"
            "  -n             check the configuration and exit (0 = good, 78 = errors)\n"
            "  -R             keep running as root instead of becoming postlink_user\n"
            "See %s(8) and postlink.conf(5).\n",
            svc->name, PL_DEFAULT_CONF, svc->name);
    exit(64);
}

static void parse_options(int argc, char **argv)
{
    int ch;
    conf_path = getenv("POSTLINK_CONF");
    if (conf_path == NULL || *conf_path == '\0')
        conf_path = PL_DEFAULT_CONF;
    while ((ch = getopt(argc, argv, "c:o:fvnRh")) != -1) {
        switch (ch) {
        case 'c': conf_path = optarg; break;
        case 'o':
            if (noverrides >= MAX_OVERRIDES || strchr(optarg, '=') == NULL) {
                msg_error("-o %s: expected name=value (at most %d)", optarg, MAX_OVERRIDES);
                exit(64);
            }
            overrides[noverrides++] = optarg;
            break;
        case 'f': foreground = 1; break;
        case 'v': verbose++; break;
        case 'n': check_only = 1; break;
        case 'R': allow_root = 1; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
}

/* Load the file and the -o overrides; NULL after logging every error. */
static pl_conf *load_conf(void)
{
    pl_conf *c = pl_conf_new(pl_conf_params);
    pl_conf_load(c, conf_path, 0);
    for (int i = 0; i < noverrides; i++) {
        char name[128];
        const char *eq = strchr(overrides[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - overrides[i]), overrides[i]);
        pl_conf_set(c, name, eq + 1);
    }
    for (size_t i = 0; i < pl_conf_nwarnings(c); i++)
        msg_warn("%s", pl_conf_warning(c, i));
    if (pl_conf_nerrors(c) > 0) {
        for (size_t i = 0; i < pl_conf_nerrors(c); i++)
            msg_error("%s", pl_conf_error(c, i));
        pl_conf_free(c);
        return NULL;
    }
    return c;
}

static void open_log(const pl_conf *c)
{
    static char ident[128];
    const char *dash = strchr(svc->name, '-');
    const struct pl_cfg *cfg = pl_conf_cfg((pl_conf *)c);
    snprintf(ident, sizeof(ident), "%s/%s", cfg->syslog_name, dash ? dash + 1 : svc->name);
    pl_log_open(ident, foreground ? PL_LOG_BOTH : PL_LOG_SYSLOG,
                pl_log_facility(cfg->syslog_facility));
    if (verbose)
        pl_log_verbose(verbose);
}

/* ---- reload ------------------------------------------------------------ */

static void retire(pl_conf *c)
{
    retired.v = pl_xrealloc(retired.v, (retired.n + 1) * sizeof(*retired.v));
    retired.v[retired.n++] = c;
}

/* RESTART parameters keep their running values until the next restart. */
static void keep_restart_params(pl_conf *next, const pl_conf *old)
{
    for (size_t i = 0; pl_conf_params[i].name != NULL; i++) {
        const char *name = pl_conf_params[i].name;
        if (pl_conf_params[i].when != PL_CONF_RESTART || !pl_conf_differs(old, next, i))
            continue;
        msg_warn("reload: parameter %s changed (%s): it takes effect at the next restart",
                 name, pl_conf_origin(next, name) ? pl_conf_origin(next, name) : "now default");
        pl_conf_set(next, name, pl_conf_str(old, name));
    }
}

static void reload(void)
{
    pl_conf *old = atomic_load(&cur_conf), *next;
    char err[512] = "";
    size_t changed = 0;

    msg_info("reloading %s (SIGHUP)", conf_path);
    if ((next = load_conf()) == NULL) {
        msg_error("reload failed: %s has errors; keeping the old settings", conf_path);
        return;
    }
    keep_restart_params(next, old);
    if (pl_conf_nerrors(next) > 0) {
        msg_error("reload failed: %s", pl_conf_error(next, 0));
        pl_conf_free(next);
        return;
    }
    if (svc->configure && svc->configure(next, pl_conf_cfg(next), 1, err, sizeof(err)) != 0) {
        msg_error("reload failed: %s; keeping the old settings", err);
        pl_conf_free(next);
        return;
    }
    for (size_t i = 0; pl_conf_params[i].name != NULL; i++)
        changed += pl_conf_differs(old, next, i) ? 1 : 0;
    atomic_store(&cur_cfg, pl_conf_cfg(next));
    atomic_store(&cur_conf, next);
    retire(old);            /* other threads may still read it */
    msg_info("reloaded %s: %zu parameter(s) changed", conf_path, changed);
}

/* ---- stop -------------------------------------------------------------- */

static void stop_listeners(void)
{
    pthread_mutex_lock(&listeners_mu);
    for (int i = 0; i < nlisteners; i++)
        pl_listener_stop(listeners[i]);
    pthread_mutex_unlock(&listeners_mu);
}

static void request_stop(const char *why)
{
    if (atomic_exchange(&stopping, 1)) {
        msg_info("already stopping (%s)", why);
        return;
    }
    msg_info("%s stopping (%s)", svc->name, why);
    pthread_mutex_lock(&stop_mu);
    pthread_cond_broadcast(&stop_cv);
    pthread_mutex_unlock(&stop_mu);
    if (bell_fd >= 0 && svc->doorbell)
        (void)pl_doorbell_ring(pl_server_cfg()->db_home, svc->doorbell);
    stop_listeners();
    if (stop_hook)
        stop_hook();
    if (svc->wake)
        svc->wake();
}

static void *signal_main(void *arg)
{
    (void)arg;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&handled, &si);
        if (sig < 0)
            continue;
        if (sig == SIGHUP) {
            pthread_mutex_lock(&reload_mu);
            if (!atomic_load(&stopping))
                reload();
            pthread_mutex_unlock(&reload_mu);
        } else {
            request_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
        }
    }
    return NULL;
}

/* ---- privileges -------------------------------------------------------- */

static int drop_privileges(const struct pl_cfg *cfg)
{
    struct passwd *pw;
    struct stat st;
    char err[512];

    if (geteuid() != 0)
        return 0;
    if (allow_root) {
        msg_warn("running as root (-R): not recommended");
        return 0;
    }
    if ((pw = getpwnam(cfg->postlink_user)) == NULL) {
        msg_error("postlink_user \"%s\" is not an account on this machine "
                  "(useradd --system %s, or set postlink_user)", cfg->postlink_user,
                  cfg->postlink_user);
        return 77;
    }
    if (pw->pw_uid == 0) {
        msg_error("postlink_user \"%s\" is root: refusing to run as root "
                  "(use an unprivileged account, or -R if you really mean it)",
                  cfg->postlink_user);
        return 77;
    }
    if (stat(cfg->db_home, &st) == 0 && st.st_uid != pw->pw_uid)
        msg_warn("db_home %s belongs to uid %ld, not to postlink_user %s: "
                 "postlinkctl init gives it to %s", cfg->db_home, (long)st.st_uid,
                 cfg->postlink_user, cfg->postlink_user);
    if (pl_privs_drop(cfg->postlink_user, err, sizeof(err)) != 0) {
        msg_error("%s", err);
        return 77;
    }
    return 0;
}

/* ---- the life of a process --------------------------------------------- */

/* libmilter retries accept() at once when out of descriptors: make that
 * unlikely by using the hard limit (the units set LimitNOFILE). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The number of connections that did not finish in time. */
static unsigned drain_listeners(unsigned timeout_s)
{
    unsigned left = 0;
    for (int i = 0; i < nlisteners; i++)
        left += pl_listener_drain(listeners[i], timeout_s);
    return left;
}

int pl_server_main(const struct pl_service *service, int argc, char **argv)
{
    pthread_t sig_th;
    pl_conf *conf;
    char err[512] = "";
    int rc;

    svc = service;
    /* Before any thread exists, so that every thread inherits the mask and
     * only the signal thread ever sees these signals. */
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    pl_log_open(svc->name, PL_LOG_STDERR, -1);
    parse_options(argc, argv);
    if ((conf = load_conf()) == NULL) {
        msg_error("fatal: configuration errors in %s; nothing started", conf_path);
        return 78;
    }
    if (!check_only)
        open_log(conf);
    atomic_store(&cur_cfg, pl_conf_cfg(conf));
    atomic_store(&cur_conf, conf);
    if (svc->configure && svc->configure(conf, pl_server_cfg(), 0, err, sizeof(err)) != 0) {
        msg_error("fatal: %s", err);
        return 78;
    }
    if (check_only) {
        printf("%s: configuration %s OK\n", svc->name, conf_path);
        return 0;
    }
    if (svc->open && svc->open() != 0)
        return 71;
    if ((rc = drop_privileges(pl_server_cfg())) != 0)
        return rc;
    if (access(conf_path, R_OK) != 0)
        msg_warn("%s is not readable by %s: SIGHUP will not be able to re-read it (%s)",
                 conf_path, pl_server_cfg()->postlink_user, strerror(errno));
    /* From here on a SIGTERM is handled, even while the store opens. */
    if (pthread_create(&sig_th, NULL, signal_main, NULL) != 0) {
        msg_error("cannot start the signal thread");
        return 71;
    }
    pthread_detach(sig_th);
    if (svc->needs_store) {
        if ((rc = pl_store_open_conf(&store, conf, err, sizeof(err))) != PL_OK) {
            msg_error("cannot open the store in %s: %s", pl_server_cfg()->db_home, err);
            return rc == PL_TEMP ? 75 : 71;
        }
    }
    if (svc->doorbell && !atomic_load(&stopping) &&
        (bell_fd = pl_doorbell_open(pl_server_cfg()->db_home, svc->doorbell, err,
                                    sizeof(err))) < 0)
        msg_warn("no doorbell (%s): requests are seen within the service's interval", err);
    if (atomic_load(&stopping)) {            /* stopped while starting */
        pl_store_close(store);
        msg_info("%s stopped", svc->name);
        return 0;
    }
    rc = svc->run();
    if (!atomic_load(&stopping))
        request_stop(rc == 0 ? "the service ended" : "a fatal error");
    if (rc == 75) {
        /* threads may still be inside the store (milter_server.c) */
        msg_error("%s: exiting without closing the store (the next process to open it "
                  "recovers it)", svc->name);
        return 75;
    }
    if (drain_listeners((unsigned)pl_server_cfg()->shutdown_timeout) > 0) {
        /* Threads still inside the store: closing it would pull it from
         * under them.  Leaving it open makes the others recover it. */
        msg_error("%s: connections still busy after the shutdown bound; exiting without "
                  "closing the store (the next process to open it recovers it)", svc->name);
        return 75;
    }
    if (svc->finish)
        svc->finish();
    for (int i = 0; i < nlisteners; i++)
        pl_listener_free(listeners[i]);
    nlisteners = 0;
    pl_store_close(store);
    store = NULL;
    if (bell_fd >= 0)
        pl_doorbell_close(bell_fd, pl_server_cfg()->db_home, svc->doorbell);
    bell_fd = -1;
    msg_info("%s stopped", svc->name);
    pthread_mutex_lock(&reload_mu);          /* no reload half done */
    for (size_t i = 0; i < retired.n; i++)
        pl_conf_free(retired.v[i]);
    free(retired.v);
    retired.v = NULL;
    retired.n = 0;
    return rc;
}

/* ---- small shared helpers ---------------------------------------------- */

int pl_server_read_secret(const char *param, const char *path, char **out, char *err,
                          size_t errlen)
{
    struct stat st;
    char buf[512];
    FILE *fp;

    *out = NULL;
    if (path == NULL || *path == '\0')
        return 0;
    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s %s: %s", param, path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 0004))
        msg_warn("%s %s is readable by everyone: chmod o-r", param, path);
    if (fgets(buf, sizeof(buf), fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    pl_strtrim_right(buf);
    *out = pl_xstrdup(buf);
    return 0;
}

const char *pl_server_hostname(const struct pl_cfg *cfg)
{
    static char host[256];
    if (cfg->sync_hostname && *cfg->sync_hostname)
        return cfg->sync_hostname;
    if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    return host;
}
