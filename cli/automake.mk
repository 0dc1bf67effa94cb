# cli/: yunguan, the command-line client.
bin_PROGRAMS += cli/yunguan
cli_yunguan_SOURCES = \
	cli/cli.h \
	cli/yunguan.c \
	cli/api.c \
	cli/settings.c \
	cli/output.c \
	cli/table.c \
	cli/cmd-request.c \
	cli/cmd-quota.c \
	cli/cmd-token.c \
	cli/cmd-audit.c
cli_yunguan_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
cli_yunguan_LDADD = lib/libyunguan.la $(CURL_LIBS) $(JANSSON_LIBS) $(YAML_LIBS)

