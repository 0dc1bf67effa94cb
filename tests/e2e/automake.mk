# tests/e2e
TESTS += tests/e2e/cli-offline.sh
EXTRA_DIST += tests/e2e/cli-offline.sh

# End-to-end tests: the real yunguand on a temporary SQLite file, driven by
# the real yunguan CLI and curl (they skip, exit 77, without curl, jq or
# sqlite3).  Shared helpers in lib.sh; request templates in data/.
E2E_TESTS = \
	tests/e2e/e2e-requests.sh \
	tests/e2e/e2e-roles.sh \
	tests/e2e/e2e-quota.sh \
	tests/e2e/e2e-idempotency.sh \
	tests/e2e/e2e-audit.sh \
	tests/e2e/e2e-migrate.sh \
	tests/e2e/e2e-daemon.sh \
	tests/e2e/e2e-demo.sh \
	tests/e2e/e2e-playbook-api.sh
TESTS += $(E2E_TESTS)
EXTRA_DIST += $(E2E_TESTS) \
	tests/e2e/lib.sh \
	tests/e2e/data/request.yaml.in \
	tests/e2e/data/request.json.in \
	tests/e2e/data/invalid.yaml.in

# VMs through a real libvirtd with QEMU (root; starts libvirtd when needed;
# skips, exit 77, without libvirtd, virsh or qemu-system-x86_64).
TESTS += tests/e2e/e2e-vms.sh
EXTRA_DIST += tests/e2e/e2e-vms.sh

# yunguan-agent in network namespaces (root; skips, exit 77, without ip netns).
TESTS += tests/e2e/agent-netns.sh
EXTRA_DIST += tests/e2e/agent-netns.sh

# Segment lists and IPv6 prefix allocation.
TESTS += tests/e2e/e2e-segments.sh
EXTRA_DIST += tests/e2e/e2e-segments.sh
TESTS += tests/e2e/e2e-tls.sh
EXTRA_DIST += tests/e2e/e2e-tls.sh

# Dual-stack readiness end to end: yunguand and twelve real agents in
# network namespaces (root; skips, exit 77, without ip netns).
TESTS += tests/e2e/e2e-readiness.sh
EXTRA_DIST += tests/e2e/e2e-readiness.sh tests/e2e/netns-lib.sh

# Playbook runs carried out by real agents in network namespaces: check,
# apply, a rollback, an agent killed mid-task (root; skips, exit 77,
# without ip netns or a yunguand with the playbook API).
TESTS += tests/e2e/e2e-playbook-agent.sh
EXTRA_DIST += tests/e2e/e2e-playbook-agent.sh

# The IPv6 migration of issue 6 end to end: an IPv4-only segment of three
# hosts made dual-stack-ready by enable-dual-stack (check first, canary,
# batches, idempotent re-run), and a failure in the second batch of another
# segment (rolled back exactly, run stopped, canary kept), roles and audit.
TESTS += tests/e2e/e2e-playbooks.sh
EXTRA_DIST += tests/e2e/e2e-playbooks.sh

# A playbook's gateway check (check.run, verify) on the agent's task thread
# sees a dead gateway whose FAILED neighbour entry the kernel dropped as
# failed, as the agent's readiness reports do (root; skips, exit 77,
# without ip netns or a yunguand with the playbook API).
TESTS += tests/e2e/e2e-playbook-dropped-gateway.sh
EXTRA_DIST += tests/e2e/e2e-playbook-dropped-gateway.sh
