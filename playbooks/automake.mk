# playbooks/: the IPv6 migration playbooks yunguan ships (doc/PLAYBOOKS.md,
# playbooks/README.md), installed where yunguand looks by default
# (playbook_dir in yunguand.yaml).  tests/golden/golden-playbooks loads
# every one of them.
playbookdir = $(pkgdatadir)/playbooks
dist_playbook_DATA = \
	playbooks/accept-ra-with-forwarding.yaml \
	playbooks/disable-ipv6.yaml \
	playbooks/enable-dual-stack.yaml \
	playbooks/fix-default-route.yaml
EXTRA_DIST += playbooks/README.md
AM_CPPFLAGS += -DPLAYBOOK_DIR=\"$(playbookdir)\"
