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
	cli/cmd-audit.c \
	cli/cmd-readiness.c \
	cli/cmd-vm.c \
	cli/cmd-segment.c \
	cli/cmd-playbook.c
cli_yunguan_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
cli_yunguan_LDADD = lib/libyunguan.la $(CURL_LIBS) $(JANSSON_LIBS) $(YAML_LIBS)

# Manual pages of the client and of the daemon.
dist_man_MANS += doc/yunguan.1 doc/yunguand.8

# Bash completion.
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = contrib/bash-completion/yunguan
