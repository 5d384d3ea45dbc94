/* log.c -- implementation of the logging API in log.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <pthread.h>

#include "log.h"

static enum pl_log_dest log_dest = PL_LOG_STDERR;
static const char *log_ident = "postlink";
static int log_verbose;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct { const char *name; int value; } facilities[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},
    {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

int pl_log_facility(const char *name)
{
    for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
        if (strcasecmp(name, facilities[i].name) == 0)
            return facilities[i].value;
    return -1;
}

void pl_log_open(const char *ident, enum pl_log_dest dest, int facility)
{
    log_ident = ident;
    log_dest = dest;
    if (dest != PL_LOG_STDERR)
        openlog(ident, LOG_PID | LOG_NDELAY, facility < 0 ? LOG_MAIL : facility);
}

void pl_log_verbose(int level)
{
    log_verbose = level;
}

static const char *prio_word(int priority)
{
    switch (priority) {
    case LOG_ERR: return "error: ";
    case LOG_WARNING: return "warning: ";
    case LOG_CRIT: return "fatal: ";
    case LOG_DEBUG: return "debug: ";
    default: return "";
    }
}

void msg_vlog(int priority, const char *fmt, va_list ap)
{
    int saved = errno;
    char buf[2048];

    if (priority == LOG_DEBUG && !log_verbose)
        return;
    errno = saved;                     /* so that %m means the caller's errno */
    vsnprintf(buf, sizeof(buf), fmt, ap);
    /* Log lines are single lines: no control characters from mail data. */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = '?';
    pthread_mutex_lock(&log_lock);
    if (log_dest != PL_LOG_SYSLOG)
        fprintf(stderr, "%s: %s%s\n", log_ident, prio_word(priority), buf);
    if (log_dest != PL_LOG_STDERR)
        syslog(priority, "%s%s", prio_word(priority), buf);
    pthread_mutex_unlock(&log_lock);
    errno = saved;
}

#define PL_LOG_FN(name, prio)                  \
    void name(const char *fmt, ...)            \
    {                                          \
        va_list ap;                            \
        va_start(ap, fmt);                     \
        msg_vlog(prio, fmt, ap);               \
        va_end(ap);                            \
    }

PL_LOG_FN(msg_info, LOG_INFO)
PL_LOG_FN(msg_warn, LOG_WARNING)
PL_LOG_FN(msg_error, LOG_ERR)
PL_LOG_FN(msg_debug, LOG_DEBUG)

void msg_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msg_vlog(LOG_CRIT, fmt, ap);
    va_end(ap);
    exit(1);
}

static void PL_PRINTF(2, 3) log_fmt(int priority, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    msg_vlog(priority, fmt, ap);
    va_end(ap);
}

void msg_qid(int priority, const char *qid, const char *fmt, ...)
{
    char buf[1900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (qid != NULL && *qid)
        log_fmt(priority, "%s: %s", qid, buf);
    else
        log_fmt(priority, "%s", buf);
}
