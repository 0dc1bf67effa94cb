# bench/: benchmarks that print figures (never pass/fail on time).
# Built with everything else (so they keep compiling), never installed;
# `make bench` builds just them and yunguand.  bench/run-all.sh builds and
# runs everything.  See bench/README.md.
BENCH_BINS = bench/bench-mhd-constant bench/bench-sqlite-insert bench/bench-store-fill \
	bench/bench-vms bench/bench-steps bench/bench-playbook-render bench/bench-ingest
noinst_PROGRAMS += $(BENCH_BINS)

# The HTTP layer alone: libmicrohttpd with api.c's threading, a constant answer.
bench_bench_mhd_constant_SOURCES = bench/bench-mhd-constant.c
bench_bench_mhd_constant_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
bench_bench_mhd_constant_LDADD = $(MHD_LIBS)

# The store alone: the rows of one submission with raw prepared statements.
bench_bench_sqlite_insert_SOURCES = bench/bench-sqlite-insert.c
bench_bench_sqlite_insert_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
bench_bench_sqlite_insert_CFLAGS = $(controller_libcontroller_la_CFLAGS)
bench_bench_sqlite_insert_LDADD = controller/libcontroller.la

# Fill a store through yunguand's own store code (requests_insert, group commit).
bench_bench_store_fill_SOURCES = bench/bench-store-fill.c
bench_bench_store_fill_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
bench_bench_store_fill_CFLAGS = $(controller_libcontroller_la_CFLAGS)
bench_bench_store_fill_LDADD = controller/libcontroller.la

# The VM path on libvirt's test driver: the full loop for N VMs against the
# same libvirt calls made directly, and a reconcile of N domains.
bench_bench_vms_SOURCES = bench/bench-vms.c
bench_bench_vms_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
bench_bench_vms_CFLAGS = $(controller_libcontroller_la_CFLAGS)
bench_bench_vms_LDADD = controller/libcontroller.la
EXTRA_DIST += bench/bench-vms-qemu.sh
# Playbook runs with simulated agents: wall time, CPU per host.
EXTRA_DIST += bench/bench-playbook-runs.sh

# Playbook steps on a namespace host: one enable-dual-stack-like apply
# through the agent's task runner, ms per step (wall and CPU).
bench_bench_steps_SOURCES = bench/bench-steps.c
bench_bench_steps_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
bench_bench_steps_CFLAGS = $(agents_libagent_la_CFLAGS)
bench_bench_steps_LDADD = agents/libagent.la $(LIBNL_LIBS) $(LIBNL_ROUTE_LIBS)

EXTRA_DIST += bench/README.md bench/run-all.sh bench/submit.lua bench/request.yaml

# Dual-stack readiness: agent report ingestion and segment summaries.
# bench-ingest: simulated agents in C (epoll, kept-alive connections, the
# agent's own report bodies and results_sha256 from agents/report.c).
bench_bench_ingest_SOURCES = bench/bench-ingest.c
bench_bench_ingest_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
bench_bench_ingest_CFLAGS = $(agents_libagent_la_CFLAGS)
bench_bench_ingest_LDADD = agents/libagent.la $(LIBNL_LIBS) $(LIBNL_ROUTE_LIBS) $(CURL_LIBS) $(JANSSON_LIBS)
EXTRA_DIST += bench/bench-readiness.sh bench/readiness-fill.py bench/report.lua \
	bench/segment-show.lua

bench: $(BENCH_BINS) controller/yunguand
.PHONY: bench
EXTRA_DIST += bench/bench-playbooks.sh

# The playbook loader and renderer alone: CPU time per parse and per host
# rendered, for every shipped playbook.
bench_bench_playbook_render_SOURCES = bench/bench-playbook-render.c
bench_bench_playbook_render_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
bench_bench_playbook_render_LDADD = lib/libyunguan.la $(JANSSON_LIBS)
