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

# The VM path: state table, names, placement, addresses, domain XML (golden
# files in tests/unit/data/, YG_REGENERATE=1 rewrites them); the hypervisor
# layer and the engine against libvirt's test:///default driver.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-vms tests/unit/test-hypervisor
TESTS += tests/unit/test-vms tests/unit/test-hypervisor
tests_unit_test_vms_SOURCES = tests/unit/test-vms.c
tests_unit_test_vms_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
tests_unit_test_vms_CFLAGS = $(controller_libcontroller_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vms_LDADD = controller/libcontroller.la $(CMOCKA_LIBS)
tests_unit_test_hypervisor_SOURCES = tests/unit/test-hypervisor.c
tests_unit_test_hypervisor_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
tests_unit_test_hypervisor_CFLAGS = $(controller_libcontroller_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_hypervisor_LDADD = controller/libcontroller.la $(CMOCKA_LIBS)
endif
EXTRA_DIST += tests/unit/data/domain-basic.xml tests/unit/data/domain-escaped.xml \
	tests/unit/data/volume-backed.xml tests/unit/data/volume-empty.xml

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

# agents/steps.c and agents/tasks.c on a real kernel, inside a private
# network namespace of the test's own (root; skipped without).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-steps
TESTS += tests/unit/test-steps
tests_unit_test_steps_SOURCES = tests/unit/test-steps.c
tests_unit_test_steps_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
tests_unit_test_steps_CFLAGS = $(agents_libagent_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_steps_LDADD = agents/libagent.la $(CMOCKA_LIBS)
endif

# lib/playbook.c: rendering the shipped playbooks, parameters, derived
# variables, type checks after substitution; the check names and reason
# codes against the agent's (agents/checks.c).  Loader messages: tests/golden.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-playbook
TESTS += tests/unit/test-playbook
tests_unit_test_playbook_SOURCES = tests/unit/test-playbook.c
tests_unit_test_playbook_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
tests_unit_test_playbook_CFLAGS = $(agents_libagent_la_CFLAGS) $(CMOCKA_CFLAGS) $(YAML_CFLAGS)
tests_unit_test_playbook_LDADD = agents/libagent.la $(CMOCKA_LIBS) $(JANSSON_LIBS)
endif

# controller/playbook-run.c: canary and batches, stop, timeouts, cancel,
# repeated results, roles, render failures, restart.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-playbook-run
TESTS += tests/unit/test-playbook-run
tests_unit_test_playbook_run_SOURCES = tests/unit/test-playbook-run.c
tests_unit_test_playbook_run_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
tests_unit_test_playbook_run_CFLAGS = $(controller_libcontroller_la_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_playbook_run_LDADD = controller/libcontroller.la $(CMOCKA_LIBS)
endif
