# tests/e2e
TESTS += tests/e2e/cli-offline.sh
EXTRA_DIST += tests/e2e/cli-offline.sh
