/* test_log.c -- unit tests of the logging API: the Postfix queue id leads
 * per-message lines, severities are spelled like Postfix's, control
 * characters from mail data never split a log line. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* Run fn with stderr captured into buf. */
static void capture(void (*fn)(void), char *buf, size_t len)
{
    FILE *tmp = tmpfile();
    int saved = dup(2);
    size_t n;

    assert_non_null(tmp);
    fflush(stderr);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, len - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

static void log_qid(void) { msg_qid(LOG_INFO, "4F2A81C3D", "control consumed, %d copies", 2); }
static void log_noqid(void) { msg_qid(LOG_WARNING, NULL, "no queue id"); }
static void log_ctrl(void) { msg_warn("header: %s", "evil\r\nInjected: line"); }
static void log_debug_off(void) { msg_debug("hidden"); }

static void test_qid_prefix(void **state)
{
    char buf[512];
    (void)state;
    capture(log_qid, buf, sizeof(buf));
    assert_string_equal(buf, "test_log: 4F2A81C3D: control consumed, 2 copies\n");
    capture(log_noqid, buf, sizeof(buf));
    assert_string_equal(buf, "test_log: warning: no queue id\n");
}

static void test_control_characters(void **state)
{
    char buf[512];
    (void)state;
    capture(log_ctrl, buf, sizeof(buf));
    assert_string_equal(buf, "test_log: warning: header: evil??Injected: line\n");
}

static void test_debug_needs_verbose(void **state)
{
    char buf[512];
    (void)state;
    capture(log_debug_off, buf, sizeof(buf));
    assert_string_equal(buf, "");
    pl_log_verbose(1);
    capture(log_debug_off, buf, sizeof(buf));
    assert_string_equal(buf, "test_log: debug: hidden\n");
    pl_log_verbose(0);
}

static void test_facility_names(void **state)
{
    (void)state;
    assert_int_equal(pl_log_facility("mail"), LOG_MAIL);
    assert_int_equal(pl_log_facility("LOCAL3"), LOG_LOCAL3);
    assert_int_equal(pl_log_facility("kernel"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qid_prefix),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_debug_needs_verbose),
        cmocka_unit_test(test_facility_names),
    };
    pl_log_open("test_log", PL_LOG_STDERR, -1);
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
