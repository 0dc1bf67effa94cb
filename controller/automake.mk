# controller/: yunguand, the controller daemon.
sbin_PROGRAMS += controller/yunguand
noinst_LTLIBRARIES += controller/libcontroller.la
controller_libcontroller_la_SOURCES = \
	controller/api.c controller/api.h controller/api-handlers.h \
	controller/api-admin.c controller/api-metrics.c controller/api-requests.c \
	controller/api-readiness.c controller/readiness.c controller/readiness.h \
	controller/audit.c controller/audit.h \
	controller/auth.c controller/auth.h \
	controller/config.c controller/config.h \
	controller/lifecycle.c controller/lifecycle.h \
	controller/quota.c controller/quota.h \
	controller/requests.c controller/requests.h \
	controller/segments.c controller/segments.h controller/api-segments.c \
	controller/store.c controller/store.h controller/store-schema.h \
	controller/store-walbuf.c controller/store-walbuf.h \
	controller/hypervisor.c controller/hypervisor.h \
	controller/domain-xml.c controller/domain-xml.h \
	controller/placement.c controller/placement.h \
	controller/addresses.c controller/addresses.h \
	controller/hosts.c controller/hosts.h controller/api-hosts.c \
	controller/vms.c controller/vms.h controller/vms-priv.h controller/vms-engine.c \
	controller/api-vms.c \
	controller/playbook-run.c controller/playbook-run.h controller/api-playbooks.c
nodist_controller_libcontroller_la_SOURCES = controller/schema-sql.c
controller_libcontroller_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
controller_libcontroller_la_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS) \
	$(LIBVIRT_CFLAGS) $(LIBXML2_CFLAGS)
controller_libcontroller_la_LIBADD = lib/libyunguan.la $(SQLITE_LIBS) $(MHD_LIBS) $(JANSSON_LIBS) $(YAML_LIBS) \
	$(LIBVIRT_LIBS) $(LIBXML2_LIBS)

controller_yunguand_SOURCES = controller/yunguand.c
controller_yunguand_CFLAGS = $(controller_libcontroller_la_CFLAGS)
controller_yunguand_CPPFLAGS = $(controller_libcontroller_la_CPPFLAGS)
controller_yunguand_LDADD = controller/libcontroller.la
