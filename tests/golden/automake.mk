# tests/golden: the request loader, YAML/JSON in -> canonical JSON or the exact
# line:column errors out (tests/golden/golden.h explains the files).
# Regenerate the expected files after a deliberate change with
#   YG_REGENERATE=1 top_srcdir=$(srcdir) tests/golden/golden-requests
# and review the diff.  Every case file is listed so that it ships.
check_PROGRAMS += tests/golden/golden-requests
TESTS += tests/golden/golden-requests
tests_golden_golden_requests_SOURCES = tests/golden/golden-requests.c \
	tests/golden/golden.c tests/golden/golden.h
tests_golden_golden_requests_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
tests_golden_golden_requests_LDADD = lib/libyunguan.la $(JANSSON_LIBS) $(YAML_LIBS)
EXTRA_DIST += \
	tests/golden/requests/alias-merge-key.err \
	tests/golden/requests/alias-merge-key.yaml \
	tests/golden/requests/anchor-alias.err \
	tests/golden/requests/anchor-alias.yaml \
	tests/golden/requests/bad-names.err \
	tests/golden/requests/bad-names.yaml \
	tests/golden/requests/billion-laughs.err \
	tests/golden/requests/billion-laughs.yaml \
	tests/golden/requests/control-character.err \
	tests/golden/requests/control-character.yaml \
	tests/golden/requests/count-vcpus-out-of-range.err \
	tests/golden/requests/count-vcpus-out-of-range.yaml \
	tests/golden/requests/custom-tags.err \
	tests/golden/requests/custom-tags.yaml \
	tests/golden/requests/duplicate-key-flow.err \
	tests/golden/requests/duplicate-key-flow.yaml \
	tests/golden/requests/duplicate-key.err \
	tests/golden/requests/duplicate-key.yaml \
	tests/golden/requests/duplicate-vm-name.err \
	tests/golden/requests/duplicate-vm-name.yaml \
	tests/golden/requests/empty-document.err \
	tests/golden/requests/empty-document.yaml \
	tests/golden/requests/empty-file.err \
	tests/golden/requests/empty-file.yaml \
	tests/golden/requests/invalid-utf8-gbk.err \
	tests/golden/requests/invalid-utf8-gbk.yaml \
	tests/golden/requests/invalid-utf8-overlong.err \
	tests/golden/requests/invalid-utf8-overlong.yaml \
	tests/golden/requests/invalid-utf8-surrogate.err \
	tests/golden/requests/invalid-utf8-surrogate.yaml \
	tests/golden/requests/ipv6-bad-value.err \
	tests/golden/requests/ipv6-bad-value.yaml \
	tests/golden/requests/ipv6-case.err \
	tests/golden/requests/ipv6-case.yaml \
	tests/golden/requests/key-not-a-string.err \
	tests/golden/requests/key-not-a-string.yaml \
	tests/golden/requests/lease-month-13.err \
	tests/golden/requests/lease-month-13.yaml \
	tests/golden/requests/lease-not-a-real-date.err \
	tests/golden/requests/lease-not-a-real-date.yaml \
	tests/golden/requests/lease-not-leap-year.err \
	tests/golden/requests/lease-not-leap-year.yaml \
	tests/golden/requests/lease-timestamp.err \
	tests/golden/requests/lease-timestamp.yaml \
	tests/golden/requests/lease-wrong-format.err \
	tests/golden/requests/lease-wrong-format.yaml \
	tests/golden/requests/missing-metadata-and-spec-fields.err \
	tests/golden/requests/missing-metadata-and-spec-fields.yaml \
	tests/golden/requests/missing-nested-fields.err \
	tests/golden/requests/missing-nested-fields.yaml \
	tests/golden/requests/missing-top-level.err \
	tests/golden/requests/missing-top-level.yaml \
	tests/golden/requests/multi-document.err \
	tests/golden/requests/multi-document.yaml \
	tests/golden/requests/nul-byte.err \
	tests/golden/requests/nul-byte.yaml \
	tests/golden/requests/nul-escape.err \
	tests/golden/requests/nul-escape.yaml \
	tests/golden/requests/null-document.err \
	tests/golden/requests/null-document.yaml \
	tests/golden/requests/purpose-empty.err \
	tests/golden/requests/purpose-empty.yaml \
	tests/golden/requests/purpose-too-long.err \
	tests/golden/requests/purpose-too-long.yaml \
	tests/golden/requests/security-level-not-integer.err \
	tests/golden/requests/security-level-not-integer.yaml \
	tests/golden/requests/security-level-out-of-range.err \
	tests/golden/requests/security-level-out-of-range.yaml \
	tests/golden/requests/size-out-of-range.err \
	tests/golden/requests/size-out-of-range.yaml \
	tests/golden/requests/syntax-error-indentation.err \
	tests/golden/requests/syntax-error-indentation.yaml \
	tests/golden/requests/syntax-error-unclosed.err \
	tests/golden/requests/syntax-error-unclosed.yaml \
	tests/golden/requests/syntax-error.err \
	tests/golden/requests/syntax-error.input.json \
	tests/golden/requests/too-deep.err \
	tests/golden/requests/too-deep.yaml \
	tests/golden/requests/too-large.err \
	tests/golden/requests/too-large.yaml \
	tests/golden/requests/too-many-nodes.err \
	tests/golden/requests/too-many-nodes.yaml \
	tests/golden/requests/too-many-problems.err \
	tests/golden/requests/too-many-problems.yaml \
	tests/golden/requests/top-level-scalar.err \
	tests/golden/requests/top-level-scalar.yaml \
	tests/golden/requests/top-level-sequence.err \
	tests/golden/requests/top-level-sequence.yaml \
	tests/golden/requests/unit-case.err \
	tests/golden/requests/unit-case.yaml \
	tests/golden/requests/unit-decimal-and-short.err \
	tests/golden/requests/unit-decimal-and-short.yaml \
	tests/golden/requests/unit-gb.err \
	tests/golden/requests/unit-gb.yaml \
	tests/golden/requests/unit-malformed.err \
	tests/golden/requests/unit-malformed.yaml \
	tests/golden/requests/unit-missing.err \
	tests/golden/requests/unit-missing.yaml \
	tests/golden/requests/unit-other-binary.err \
	tests/golden/requests/unit-other-binary.yaml \
	tests/golden/requests/unknown-key-case.err \
	tests/golden/requests/unknown-key-case.yaml \
	tests/golden/requests/unknown-key-hint.err \
	tests/golden/requests/unknown-key-hint.yaml \
	tests/golden/requests/unknown-key-list.err \
	tests/golden/requests/unknown-key-list.yaml \
	tests/golden/requests/unknown-keys.err \
	tests/golden/requests/unknown-keys.input.json \
	tests/golden/requests/utf16.err \
	tests/golden/requests/utf16.yaml \
	tests/golden/requests/valid-block-scalars.json \
	tests/golden/requests/valid-block-scalars.yaml \
	tests/golden/requests/valid-block-style.json \
	tests/golden/requests/valid-block-style.yaml \
	tests/golden/requests/valid-bom-crlf-chinese.json \
	tests/golden/requests/valid-bom-crlf-chinese.yaml \
	tests/golden/requests/valid-compact.input.json \
	tests/golden/requests/valid-compact.json \
	tests/golden/requests/valid-design-example.json \
	tests/golden/requests/valid-design-example.yaml \
	tests/golden/requests/valid-flow-style.json \
	tests/golden/requests/valid-flow-style.yaml \
	tests/golden/requests/valid-ipv6-off.json \
	tests/golden/requests/valid-ipv6-off.yaml \
	tests/golden/requests/valid-json-design-example.input.json \
	tests/golden/requests/valid-json-design-example.json \
	tests/golden/requests/valid-leap-day.json \
	tests/golden/requests/valid-leap-day.yaml \
	tests/golden/requests/valid-limits.json \
	tests/golden/requests/valid-limits.yaml \
	tests/golden/requests/valid-minimal.json \
	tests/golden/requests/valid-minimal.yaml \
	tests/golden/requests/valid-quoted-and-markers.json \
	tests/golden/requests/valid-quoted-and-markers.yaml \
	tests/golden/requests/valid-standard-tags.json \
	tests/golden/requests/valid-standard-tags.yaml \
	tests/golden/requests/valid-tabs.input.json \
	tests/golden/requests/valid-tabs.json \
	tests/golden/requests/valid-units.json \
	tests/golden/requests/valid-units.yaml \
	tests/golden/requests/vms-empty-value.err \
	tests/golden/requests/vms-empty-value.yaml \
	tests/golden/requests/vms-item-not-mapping.err \
	tests/golden/requests/vms-item-not-mapping.yaml \
	tests/golden/requests/vms-missing.err \
	tests/golden/requests/vms-missing.yaml \
	tests/golden/requests/vms-too-many-groups.err \
	tests/golden/requests/vms-too-many-groups.yaml \
	tests/golden/requests/wrong-api-version-and-kind.err \
	tests/golden/requests/wrong-api-version-and-kind.yaml \
	tests/golden/requests/wrong-type-integer.err \
	tests/golden/requests/wrong-type-integer.yaml \
	tests/golden/requests/wrong-type-mapping.err \
	tests/golden/requests/wrong-type-mapping.yaml \
	tests/golden/requests/wrong-type-quoted-integer.err \
	tests/golden/requests/wrong-type-quoted-integer.yaml \
	tests/golden/requests/wrong-type-sequence.err \
	tests/golden/requests/wrong-type-sequence.yaml \
	tests/golden/requests/wrong-type-string.err \
	tests/golden/requests/wrong-type-string.yaml \
	tests/golden/requests/wrong-types.err \
	tests/golden/requests/wrong-types.input.json

# The segment list loader (lib/segments.c), the same way; regenerate with
#   YG_REGENERATE=1 top_srcdir=$(srcdir) tests/golden/golden-segments
check_PROGRAMS += tests/golden/golden-segments
TESTS += tests/golden/golden-segments
tests_golden_golden_segments_SOURCES = tests/golden/golden-segments.c \
	tests/golden/golden.c tests/golden/golden.h
tests_golden_golden_segments_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
tests_golden_golden_segments_LDADD = lib/libyunguan.la $(JANSSON_LIBS) $(YAML_LIBS)
EXTRA_DIST += \
	tests/golden/segments/anchors-refused.err \
	tests/golden/segments/anchors-refused.yaml \
	tests/golden/segments/duplicate-names-and-vlans.err \
	tests/golden/segments/duplicate-names-and-vlans.yaml \
	tests/golden/segments/gateway-not-usable.err \
	tests/golden/segments/gateway-not-usable.yaml \
	tests/golden/segments/gateway-outside-prefix.err \
	tests/golden/segments/gateway-outside-prefix.yaml \
	tests/golden/segments/host-addresses.err \
	tests/golden/segments/host-addresses.yaml \
	tests/golden/segments/host-bits-set.err \
	tests/golden/segments/host-bits-set.yaml \
	tests/golden/segments/host-ipv6-without-segment-ipv6.err \
	tests/golden/segments/host-ipv6-without-segment-ipv6.yaml \
	tests/golden/segments/interface-and-names.err \
	tests/golden/segments/interface-and-names.yaml \
	tests/golden/segments/invalid-utf8.err \
	tests/golden/segments/invalid-utf8.yaml \
	tests/golden/segments/ipv6-gateway-without-prefix.err \
	tests/golden/segments/ipv6-gateway-without-prefix.yaml \
	tests/golden/segments/ipv6-prefix-without-gateway.err \
	tests/golden/segments/ipv6-prefix-without-gateway.yaml \
	tests/golden/segments/malformed-addresses.err \
	tests/golden/segments/malformed-addresses.yaml \
	tests/golden/segments/missing-required.err \
	tests/golden/segments/missing-required.yaml \
	tests/golden/segments/multi-document.err \
	tests/golden/segments/multi-document.yaml \
	tests/golden/segments/not-a-list.err \
	tests/golden/segments/not-a-list.yaml \
	tests/golden/segments/overlapping-prefixes.err \
	tests/golden/segments/overlapping-prefixes.yaml \
	tests/golden/segments/reserved-prefixes.err \
	tests/golden/segments/reserved-prefixes.yaml \
	tests/golden/segments/slaac-needs-64.err \
	tests/golden/segments/slaac-needs-64.yaml \
	tests/golden/segments/target-date-and-types.err \
	tests/golden/segments/target-date-and-types.yaml \
	tests/golden/segments/unknown-keys.err \
	tests/golden/segments/unknown-keys.yaml \
	tests/golden/segments/valid-design-example.json \
	tests/golden/segments/valid-design-example.yaml \
	tests/golden/segments/valid-json.input.json \
	tests/golden/segments/valid-json.json \
	tests/golden/segments/valid-minimal.json \
	tests/golden/segments/valid-minimal.yaml \
	tests/golden/segments/valid-normalised.json \
	tests/golden/segments/valid-normalised.yaml \
	tests/golden/segments/valid-slaac-and-small.json \
	tests/golden/segments/valid-slaac-and-small.yaml \
	tests/golden/segments/vlan-out-of-range.err \
	tests/golden/segments/vlan-out-of-range.yaml \
	tests/golden/segments/wrong-family.err \
	tests/golden/segments/wrong-family.yaml \
	tests/golden/segments/wrong-kind-and-empty.err \
	tests/golden/segments/wrong-kind-and-empty.yaml

# The playbook loader and renderer (lib/playbook.c); every shipped playbook
# (playbooks/) must load and give tests/golden/playbooks/shipped/NAME.json.
# Regenerate with
#   YG_REGENERATE=1 top_srcdir=$(srcdir) tests/golden/golden-playbooks
check_PROGRAMS += tests/golden/golden-playbooks
TESTS += tests/golden/golden-playbooks
tests_golden_golden_playbooks_SOURCES = tests/golden/golden-playbooks.c \
	tests/golden/golden.c tests/golden/golden.h
tests_golden_golden_playbooks_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS)
tests_golden_golden_playbooks_LDADD = lib/libyunguan.la $(JANSSON_LIBS) $(YAML_LIBS)
# schema/playbook.schema.json against the shipped playbooks and cases.
TESTS += tests/golden/playbook-schema.sh
EXTRA_DIST += tests/golden/playbook-schema.sh

# The playbook cases and the shipped playbooks' expected JSON.
EXTRA_DIST += \
	tests/golden/playbooks/agent-rules.err \
	tests/golden/playbooks/agent-rules.yaml \
	tests/golden/playbooks/anchor-alias.err \
	tests/golden/playbooks/anchor-alias.yaml \
	tests/golden/playbooks/bad-arg-type.err \
	tests/golden/playbooks/bad-arg-type.yaml \
	tests/golden/playbooks/bad-metadata-name.err \
	tests/golden/playbooks/bad-metadata-name.yaml \
	tests/golden/playbooks/check-run-rules.err \
	tests/golden/playbooks/check-run-rules.yaml \
	tests/golden/playbooks/duplicate-key.err \
	tests/golden/playbooks/duplicate-key.yaml \
	tests/golden/playbooks/empty-document.err \
	tests/golden/playbooks/empty-document.yaml \
	tests/golden/playbooks/empty-steps.err \
	tests/golden/playbooks/empty-steps.yaml \
	tests/golden/playbooks/invalid-utf8.err \
	tests/golden/playbooks/invalid-utf8.yaml \
	tests/golden/playbooks/missing-required-arg.err \
	tests/golden/playbooks/missing-required-arg.yaml \
	tests/golden/playbooks/missing-top-level.err \
	tests/golden/playbooks/missing-top-level.yaml \
	tests/golden/playbooks/param-bad-default.err \
	tests/golden/playbooks/param-bad-default.yaml \
	tests/golden/playbooks/param-unknown-type.err \
	tests/golden/playbooks/param-unknown-type.yaml \
	tests/golden/playbooks/route-family.err \
	tests/golden/playbooks/route-family.yaml \
	tests/golden/playbooks/sysctl-key-dotdot.err \
	tests/golden/playbooks/sysctl-key-dotdot.yaml \
	tests/golden/playbooks/sysctl-key-kernel.err \
	tests/golden/playbooks/sysctl-key-kernel.yaml \
	tests/golden/playbooks/sysctl-key-net-core.err \
	tests/golden/playbooks/sysctl-key-net-core.yaml \
	tests/golden/playbooks/sysctl-key-templated.err \
	tests/golden/playbooks/sysctl-key-templated.yaml \
	tests/golden/playbooks/template-malformed.err \
	tests/golden/playbooks/template-malformed.yaml \
	tests/golden/playbooks/template-outside-args.err \
	tests/golden/playbooks/template-outside-args.yaml \
	tests/golden/playbooks/template-unknown-variable.err \
	tests/golden/playbooks/template-unknown-variable.yaml \
	tests/golden/playbooks/template-unquoted.err \
	tests/golden/playbooks/template-unquoted.yaml \
	tests/golden/playbooks/too-many-steps.err \
	tests/golden/playbooks/too-many-steps.yaml \
	tests/golden/playbooks/unknown-action.err \
	tests/golden/playbooks/unknown-action.yaml \
	tests/golden/playbooks/unknown-arg.err \
	tests/golden/playbooks/unknown-arg.yaml \
	tests/golden/playbooks/valid-doc-example.json \
	tests/golden/playbooks/valid-doc-example.yaml \
	tests/golden/playbooks/valid-every-action.json \
	tests/golden/playbooks/valid-every-action.yaml \
	tests/golden/playbooks/valid-json.input.json \
	tests/golden/playbooks/valid-json.json \
	tests/golden/playbooks/valid-param-when.json \
	tests/golden/playbooks/valid-param-when.yaml \
	tests/golden/playbooks/valid-required-param.json \
	tests/golden/playbooks/valid-required-param.yaml \
	tests/golden/playbooks/verify-bad.err \
	tests/golden/playbooks/verify-bad.yaml \
	tests/golden/playbooks/when-both.err \
	tests/golden/playbooks/when-both.yaml \
	tests/golden/playbooks/when-param.err \
	tests/golden/playbooks/when-param.yaml \
	tests/golden/playbooks/wrong-api-version-and-kind.err \
	tests/golden/playbooks/wrong-api-version-and-kind.yaml \
	tests/golden/playbooks/shipped/accept-ra-with-forwarding.json \
	tests/golden/playbooks/shipped/disable-ipv6.json \
	tests/golden/playbooks/shipped/enable-dual-stack.json \
	tests/golden/playbooks/shipped/fix-default-route.json
