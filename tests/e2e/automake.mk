# tests/e2e
TESTS += tests/e2e/cli-offline.sh
EXTRA_DIST += tests/e2e/cli-offline.sh

# yunguan-agent in network namespaces (root; skips, exit 77, without ip netns).
TESTS += tests/e2e/agent-netns.sh
EXTRA_DIST += tests/e2e/agent-netns.sh
