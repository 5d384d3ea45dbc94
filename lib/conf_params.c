/* conf_params.c -- the table of every postlink.conf parameter: name, type,
 * default, bounds and validator. Documented in postlink.conf(5); keep the
 * two in step. */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "conf.h"
#include "log.h"

static const char *check_abs_path(const char *v)
{
    return v[0] == '/' ? NULL : "must be an absolute path";
}

static const char *check_word(const char *v)
{
    if (*v == '\0')
        return "must not be empty";
    for (; *v; v++)
        if (!(isalnum((unsigned char)*v) || *v == '-' || *v == '_' || *v == '.'))
            return "may contain only letters, digits, '-', '_' and '.'";
    return NULL;
}

static const char *check_facility(const char *v)
{
    return pl_log_facility(v) >= 0 ? NULL
        : "unknown syslog facility (mail, daemon, user, local0..local7)";
}

/* One domain name: LDH labels separated by dots. */
static int valid_domain(const char *d, size_t len)
{
    size_t label = 0;
    if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum(c) || c == '-') {
            if (label == 0 && c == '-')
                return 0;
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

static const char *check_domains(const char *v)
{
    const char *item;
    size_t len;
    while ((item = pl_conf_next_item(&v, &len)) != NULL)
        if (!valid_domain(item, len))
            return "contains something that is not a domain name";
    return NULL;
}

const struct pl_conf_param pl_conf_params[] = {
    {"db_home", PL_CONF_STR, PL_DEFAULT_DB_HOME, 0, 0, check_abs_path,
     "directory of the shared Berkeley DB environment"},
    {"db_cache_size", PL_CONF_SIZE, "8m", 256 * 1024LL, 1024LL * 1024 * 1024, NULL,
     "Berkeley DB cache size (set when the environment is created)"},
    {"db_log_file_size", PL_CONF_SIZE, "1m", 64 * 1024LL, 256LL * 1024 * 1024, NULL,
     "size of one transaction log file"},
    {"db_checkpoint_interval", PL_CONF_TIME, "60s", 1, 3600, NULL,
     "how often a process checkpoints and removes unneeded log files"},
    {"db_lock_timeout", PL_CONF_TIME, "2s", 1, 600, NULL,
     "a lock wait longer than this checks for dead processes and retries"},
    {"enabled_domains", PL_CONF_LIST, "", 0, 0, check_domains,
     "domains for which postlink acts; mail for others passes untouched"},
    {"postlink_user", PL_CONF_STR, "postlink", 0, 0, check_word,
     "unprivileged account the daemons run as and that owns db_home"},
    {"syslog_name", PL_CONF_STR, "postlink", 0, 0, check_word,
     "prefix of every syslog line"},
    {"syslog_facility", PL_CONF_STR, "mail", 0, 0, check_facility,
     "syslog facility"},
    {NULL, PL_CONF_STR, NULL, 0, 0, NULL, NULL},
};
