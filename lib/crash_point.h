/* crash_point.h -- a test hook the crash tests use to kill a daemon at an
 * exact step: when the file named by an environment variable holds the
 * step's name, the process logs it and SIGKILLs itself (once: the file is
 * removed first).  Without the variable it costs one getenv. */
#ifndef PL_CRASH_POINT_H
#define PL_CRASH_POINT_H

void pl_crash_point(const char *env, const char *step);

#endif
