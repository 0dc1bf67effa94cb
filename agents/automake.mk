# agents/: yunguan-agent, the per-host agent (doc/AGENT.md).
sbin_PROGRAMS += agents/yunguan-agent
noinst_LTLIBRARIES += agents/libagent.la
agents_libagent_la_SOURCES = \
	agents/checks.c agents/checks.h \
	agents/desired.c agents/desired.h \
	agents/netstate.c agents/netstate.h \
	agents/probe.c agents/probe.h \
	agents/report.c agents/report.h \
	agents/snapshot.c agents/snapshot.h \
	agents/spool.c agents/spool.h \
	agents/steps.c agents/steps.h \
	agents/tasks.c agents/tasks.h
agents_libagent_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
agents_libagent_la_CFLAGS = $(AM_CFLAGS) $(LIBNL_CFLAGS) $(LIBNL_ROUTE_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
agents_libagent_la_LIBADD = lib/libyunguan.la $(LIBNL_LIBS) $(LIBNL_ROUTE_LIBS) $(CURL_LIBS) $(JANSSON_LIBS)

agents_yunguan_agent_SOURCES = agents/yunguan-agent.c
agents_yunguan_agent_CPPFLAGS = $(agents_libagent_la_CPPFLAGS)
agents_yunguan_agent_CFLAGS = $(agents_libagent_la_CFLAGS)
agents_yunguan_agent_LDADD = agents/libagent.la $(LIBNL_LIBS) $(LIBNL_ROUTE_LIBS) $(CURL_LIBS) $(JANSSON_LIBS)

dist_man_MANS += doc/yunguan-agent.8
EXTRA_DIST += bench/bench-agent.sh

# Banned functions (STYLE.md) in the agent too; the top Makefile.am's rule
# covers lib/, controller/ and cli/.
check-banned-agents:
	@if grep -nE '\b(strcpy|strcat|sprintf|strncpy|system|popen)[[:space:]]*\(' \
	    $(srcdir)/agents/*.[ch] 2>/dev/null | grep -vE 'snprintf|vsnprintf'; then \
	  echo "banned function used in agents/ (see STYLE.md)"; exit 1; fi
check-local: check-banned-agents
.PHONY: check-banned-agents
