# tests/unit
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-lib tests/unit/test-controller
TESTS += tests/unit/test-lib tests/unit/test-controller
tests_unit_test_lib_SOURCES = tests/unit/test-lib.c
tests_unit_test_lib_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_lib_LDADD = lib/libyunguan.la $(CMOCKA_LIBS)
tests_unit_test_controller_SOURCES = tests/unit/test-controller.c
tests_unit_test_controller_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
tests_unit_test_controller_CFLAGS = $(controller_libcontroller_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_controller_LDADD = controller/libcontroller.la $(CMOCKA_LIBS)
endif

# lib/request.c: sizes, dates, names, the text check, limits (messages: tests/golden).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-request
TESTS += tests/unit/test-request
tests_unit_test_request_SOURCES = tests/unit/test-request.c
tests_unit_test_request_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
tests_unit_test_request_LDADD = lib/libyunguan.la $(CMOCKA_LIBS) $(JANSSON_LIBS) $(YAML_LIBS)
endif

# controller/readiness.c
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-readiness
TESTS += tests/unit/test-readiness
tests_unit_test_readiness_SOURCES = tests/unit/test-readiness.c
tests_unit_test_readiness_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
tests_unit_test_readiness_CFLAGS = $(controller_libcontroller_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_readiness_LDADD = controller/libcontroller.la $(CMOCKA_LIBS)
endif

# lib/ip.c: parsing, RFC 5952 text, prefixes, EUI-64.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-ip
TESTS += tests/unit/test-ip
tests_unit_test_ip_SOURCES = tests/unit/test-ip.c
tests_unit_test_ip_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_ip_LDADD = lib/libyunguan.la $(CMOCKA_LIBS)
endif

# The agent (agents/): checks on hand-built snapshots, desired state,
# spool and backoff.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-checks
TESTS += tests/unit/test-checks
tests_unit_test_checks_SOURCES = tests/unit/test-checks.c
tests_unit_test_checks_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
tests_unit_test_checks_CFLAGS = $(agents_libagent_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_checks_LDADD = agents/libagent.la $(CMOCKA_LIBS)
endif
