/* crash_point.c -- the crash tests' kill hook (crash_point.h). */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash_point.h"
#include "log.h"
#include "strutil.h"

void pl_crash_point(const char *env, const char *step)
{
    const char *f = getenv(env);
    char buf[64] = "";
    FILE *fp;
    if (f == NULL || (fp = fopen(f, "r")) == NULL)
        return;
    if (fgets(buf, sizeof(buf), fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    pl_strtrim_right(buf);
    if (strcmp(buf, step) == 0) {
        unlink(f);
        msg_warn("test hook: killed at step \"%s\"", step);
        raise(SIGKILL);
    }
}
