# controller/: yunguand, the controller daemon.
sbin_PROGRAMS += controller/yunguand
controller_yunguand_SOURCES = \
	controller/yunguand.c
controller_yunguand_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
controller_yunguand_LDADD = lib/libyunguan.la $(SQLITE_LIBS) $(MHD_LIBS) $(JANSSON_LIBS) $(YAML_LIBS)
