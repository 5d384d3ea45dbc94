/* test_doorbell.c -- unit tests of lib/doorbell.h: a ring wakes the
 * waiter at once and is consumed, many rings are one wake-up, a wait
 * without a ring times out, a ring with nobody listening fails quietly,
 * a stale socket file is replaced and close removes it. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "doorbell.h"
#include "testdir.h"

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_ring_and_wait(void **state)
{
    char dir[64], err[256], path[128];
    struct timespec t0;
    struct stat st;
    int fd;
    (void)state;

    assert_non_null(testdir_new(dir, sizeof(dir)));
    assert_int_equal(pl_doorbell_ring(dir, "d"), -1);      /* nobody listens */
    fd = pl_doorbell_open(dir, "d", err, sizeof(err));
    assert_true(fd >= 0);
    snprintf(path, sizeof(path), "%s/d.bell", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));

    assert_int_equal(pl_doorbell_wait(fd, 20), 0);          /* no ring: the timeout */
    for (int i = 0; i < 5; i++)
        assert_int_equal(pl_doorbell_ring(dir, "d"), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pl_doorbell_wait(fd, 5000), 1);
    assert_true(ms_since(&t0) < 4000);                      /* woken, not timed out */
    assert_int_equal(pl_doorbell_wait(fd, 20), 0);          /* the five were one */

    /* a second open replaces the socket (a killed process left it) */
    int fd2 = pl_doorbell_open(dir, "d", err, sizeof(err));
    assert_true(fd2 >= 0);
    assert_int_equal(pl_doorbell_ring(dir, "d"), 0);
    assert_int_equal(pl_doorbell_wait(fd2, 5000), 1);
    close(fd);
    pl_doorbell_close(fd2, dir, "d");
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(pl_doorbell_ring(dir, "d"), -1);
    testdir_remove(dir);
}

static void test_too_long(void **state)
{
    char dir[200], err[256];
    (void)state;
    memset(dir, 'x', sizeof(dir) - 1);
    dir[0] = '/';
    dir[sizeof(dir) - 1] = '\0';
    assert_int_equal(pl_doorbell_open(dir, "d", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too long"));
    assert_int_equal(pl_doorbell_ring(dir, "d"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_and_wait),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
