/* testdir.h -- temporary directories for unit tests, removed afterwards. */
#ifndef PL_TESTDIR_H
#define PL_TESTDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int testdir_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Creates /tmp/postlink-test.XXXXXX and returns it (static buffer). */
static inline char *testdir_new(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/postlink-test.XXXXXX");
    return mkdtemp(buf);
}

static inline void testdir_remove(const char *dir)
{
    nftw(dir, testdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
