# lib/: code shared by yunguand, yunguan-agent and yunguan.
noinst_LTLIBRARIES += lib/libyunguan.la
lib_libyunguan_la_SOURCES = \
	lib/util.c lib/util.h \
	lib/error.c lib/error.h \
	lib/log.c lib/log.h \
	lib/sha256.c lib/sha256.h \
	lib/http-client.c lib/http-client.h \
	lib/yamldoc.c lib/yamldoc.h \
	lib/request.c lib/request.h lib/request-priv.h \
	lib/segments.c lib/segments.h \
	lib/playbook-actions.c lib/playbook.c lib/playbook.h
lib_libyunguan_la_SOURCES += lib/ip.c lib/ip.h
lib_libyunguan_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
lib_libyunguan_la_LIBADD = $(YAML_LIBS) $(JANSSON_LIBS) $(CURL_LIBS)
