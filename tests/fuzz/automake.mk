# tests/fuzz: libFuzzer targets with seed corpora (systemd style).
# With --enable-fuzzing (CC=clang) fuzz-request is a real fuzzer; run it with
# tests/fuzz/run-fuzz.sh.  Otherwise the same target is linked with
# fuzz-main.c, which replays the seed corpus in "make check", so every crash
# once found (saved as a named seed) stays a regression test.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-request
tests_fuzz_fuzz_request_SOURCES = tests/fuzz/fuzz-request.c
tests_fuzz_fuzz_request_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz-request
TESTS += tests/fuzz/fuzz-request
tests_fuzz_fuzz_request_SOURCES = tests/fuzz/fuzz-request.c tests/fuzz/fuzz-main.c
endif
tests_fuzz_fuzz_request_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS) \
	-DFUZZ_CORPUS='"tests/fuzz/corpus/request"'
tests_fuzz_fuzz_request_LDADD = lib/libyunguan.la $(JANSSON_LIBS) $(YAML_LIBS)
EXTRA_DIST += tests/fuzz/run-fuzz.sh tests/fuzz/request.dict tests/fuzz/loader-checks.h
EXTRA_DIST += \
	tests/fuzz/corpus/request/alias-merge-key.yaml \
	tests/fuzz/corpus/request/anchor-alias.yaml \
	tests/fuzz/corpus/request/bad-names.yaml \
	tests/fuzz/corpus/request/billion-laughs.yaml \
	tests/fuzz/corpus/request/control-character.yaml \
	tests/fuzz/corpus/request/count-vcpus-out-of-range.yaml \
	tests/fuzz/corpus/request/custom-tags.yaml \
	tests/fuzz/corpus/request/duplicate-key-flow.yaml \
	tests/fuzz/corpus/request/duplicate-key.yaml \
	tests/fuzz/corpus/request/duplicate-vm-name.yaml \
	tests/fuzz/corpus/request/empty-document.yaml \
	tests/fuzz/corpus/request/empty-file.yaml \
	tests/fuzz/corpus/request/invalid-utf8-gbk.yaml \
	tests/fuzz/corpus/request/invalid-utf8-overlong.yaml \
	tests/fuzz/corpus/request/invalid-utf8-surrogate.yaml \
	tests/fuzz/corpus/request/ipv6-bad-value.yaml \
	tests/fuzz/corpus/request/ipv6-case.yaml \
	tests/fuzz/corpus/request/key-not-a-string.yaml \
	tests/fuzz/corpus/request/lease-month-13.yaml \
	tests/fuzz/corpus/request/lease-not-a-real-date.yaml \
	tests/fuzz/corpus/request/lease-not-leap-year.yaml \
	tests/fuzz/corpus/request/lease-timestamp.yaml \
	tests/fuzz/corpus/request/lease-wrong-format.yaml \
	tests/fuzz/corpus/request/missing-metadata-and-spec-fields.yaml \
	tests/fuzz/corpus/request/missing-nested-fields.yaml \
	tests/fuzz/corpus/request/missing-top-level.yaml \
	tests/fuzz/corpus/request/multi-document.yaml \
	tests/fuzz/corpus/request/nul-byte.yaml \
	tests/fuzz/corpus/request/nul-escape.yaml \
	tests/fuzz/corpus/request/null-document.yaml \
	tests/fuzz/corpus/request/purpose-empty.yaml \
	tests/fuzz/corpus/request/purpose-too-long.yaml \
	tests/fuzz/corpus/request/security-level-not-integer.yaml \
	tests/fuzz/corpus/request/security-level-out-of-range.yaml \
	tests/fuzz/corpus/request/size-out-of-range.yaml \
	tests/fuzz/corpus/request/syntax-error-indentation.yaml \
	tests/fuzz/corpus/request/syntax-error-unclosed.yaml \
	tests/fuzz/corpus/request/syntax-error.input.json \
	tests/fuzz/corpus/request/too-deep.yaml \
	tests/fuzz/corpus/request/too-many-nodes.yaml \
	tests/fuzz/corpus/request/too-many-problems.yaml \
	tests/fuzz/corpus/request/top-level-scalar.yaml \
	tests/fuzz/corpus/request/top-level-sequence.yaml \
	tests/fuzz/corpus/request/unit-case.yaml \
	tests/fuzz/corpus/request/unit-decimal-and-short.yaml \
	tests/fuzz/corpus/request/unit-gb.yaml \
	tests/fuzz/corpus/request/unit-malformed.yaml \
	tests/fuzz/corpus/request/unit-missing.yaml \
	tests/fuzz/corpus/request/unit-other-binary.yaml \
	tests/fuzz/corpus/request/unknown-key-case.yaml \
	tests/fuzz/corpus/request/unknown-key-hint.yaml \
	tests/fuzz/corpus/request/unknown-key-list.yaml \
	tests/fuzz/corpus/request/unknown-keys.input.json \
	tests/fuzz/corpus/request/utf16.yaml \
	tests/fuzz/corpus/request/valid-block-scalars.yaml \
	tests/fuzz/corpus/request/valid-block-style.yaml \
	tests/fuzz/corpus/request/valid-bom-crlf-chinese.yaml \
	tests/fuzz/corpus/request/valid-compact.input.json \
	tests/fuzz/corpus/request/valid-design-example.yaml \
	tests/fuzz/corpus/request/valid-flow-style.yaml \
	tests/fuzz/corpus/request/valid-ipv6-off.yaml \
	tests/fuzz/corpus/request/valid-json-design-example.input.json \
	tests/fuzz/corpus/request/valid-leap-day.yaml \
	tests/fuzz/corpus/request/valid-limits.yaml \
	tests/fuzz/corpus/request/valid-minimal.yaml \
	tests/fuzz/corpus/request/valid-quoted-and-markers.yaml \
	tests/fuzz/corpus/request/valid-standard-tags.yaml \
	tests/fuzz/corpus/request/valid-tabs.input.json \
	tests/fuzz/corpus/request/valid-units.yaml \
	tests/fuzz/corpus/request/vms-empty-value.yaml \
	tests/fuzz/corpus/request/vms-item-not-mapping.yaml \
	tests/fuzz/corpus/request/vms-missing.yaml \
	tests/fuzz/corpus/request/vms-too-many-groups.yaml \
	tests/fuzz/corpus/request/wrong-api-version-and-kind.yaml \
	tests/fuzz/corpus/request/wrong-type-integer.yaml \
	tests/fuzz/corpus/request/wrong-type-mapping.yaml \
	tests/fuzz/corpus/request/wrong-type-quoted-integer.yaml \
	tests/fuzz/corpus/request/wrong-type-sequence.yaml \
	tests/fuzz/corpus/request/wrong-type-string.yaml \
	tests/fuzz/corpus/request/wrong-types.input.json

# The segment list loader (lib/segments.c): run-fuzz.sh 60 segments.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-segments
tests_fuzz_fuzz_segments_SOURCES = tests/fuzz/fuzz-segments.c
tests_fuzz_fuzz_segments_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz-segments
TESTS += tests/fuzz/fuzz-segments
tests_fuzz_fuzz_segments_SOURCES = tests/fuzz/fuzz-segments.c tests/fuzz/fuzz-main.c
endif
tests_fuzz_fuzz_segments_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(YAML_CFLAGS) \
	-DFUZZ_CORPUS='"tests/fuzz/corpus/segments"'
tests_fuzz_fuzz_segments_LDADD = lib/libyunguan.la $(JANSSON_LIBS) $(YAML_LIBS)
EXTRA_DIST += tests/fuzz/segments.dict
EXTRA_DIST += \
	tests/fuzz/corpus/segments/anchors-refused.yaml \
	tests/fuzz/corpus/segments/duplicate-names-and-vlans.yaml \
	tests/fuzz/corpus/segments/gateway-not-usable.yaml \
	tests/fuzz/corpus/segments/gateway-outside-prefix.yaml \
	tests/fuzz/corpus/segments/host-addresses.yaml \
	tests/fuzz/corpus/segments/host-bits-set.yaml \
	tests/fuzz/corpus/segments/host-ipv6-without-segment-ipv6.yaml \
	tests/fuzz/corpus/segments/interface-and-names.yaml \
	tests/fuzz/corpus/segments/invalid-utf8.yaml \
	tests/fuzz/corpus/segments/ipv6-gateway-without-prefix.yaml \
	tests/fuzz/corpus/segments/ipv6-prefix-without-gateway.yaml \
	tests/fuzz/corpus/segments/malformed-addresses.yaml \
	tests/fuzz/corpus/segments/missing-required.yaml \
	tests/fuzz/corpus/segments/multi-document.yaml \
	tests/fuzz/corpus/segments/not-a-list.yaml \
	tests/fuzz/corpus/segments/overlapping-prefixes.yaml \
	tests/fuzz/corpus/segments/reserved-prefixes.yaml \
	tests/fuzz/corpus/segments/sample-contrib.yaml \
	tests/fuzz/corpus/segments/slaac-needs-64.yaml \
	tests/fuzz/corpus/segments/target-date-and-types.yaml \
	tests/fuzz/corpus/segments/unknown-keys.yaml \
	tests/fuzz/corpus/segments/valid-design-example.yaml \
	tests/fuzz/corpus/segments/valid-json.input.json \
	tests/fuzz/corpus/segments/valid-minimal.yaml \
	tests/fuzz/corpus/segments/valid-normalised.yaml \
	tests/fuzz/corpus/segments/valid-slaac-and-small.yaml \
	tests/fuzz/corpus/segments/vlan-out-of-range.yaml \
	tests/fuzz/corpus/segments/wrong-family.yaml \
	tests/fuzz/corpus/segments/wrong-kind-and-empty.yaml

# The controller's agent-report parser (controller/readiness.c: the body as
# api.c loads it, readiness_report_check, readiness_ingest into a small
# store, the segment reads): run-fuzz.sh 60 report.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-report
tests_fuzz_fuzz_report_SOURCES = tests/fuzz/fuzz-report.c
tests_fuzz_fuzz_report_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz-report
TESTS += tests/fuzz/fuzz-report
tests_fuzz_fuzz_report_SOURCES = tests/fuzz/fuzz-report.c tests/fuzz/fuzz-main.c
endif
tests_fuzz_fuzz_report_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/controller
tests_fuzz_fuzz_report_CFLAGS = $(controller_libcontroller_la_CFLAGS) \
	-DFUZZ_CORPUS='"tests/fuzz/corpus/report"'
tests_fuzz_fuzz_report_LDADD = controller/libcontroller.la
EXTRA_DIST += tests/fuzz/report.dict
EXTRA_DIST += \
	tests/fuzz/corpus/report/check-name-too-long.json \
	tests/fuzz/corpus/report/checks-at-limit.json \
	tests/fuzz/corpus/report/deep-nesting.json \
	tests/fuzz/corpus/report/duplicate-keys-in-check.json \
	tests/fuzz/corpus/report/duplicate-keys.json \
	tests/fuzz/corpus/report/duplicate-segment-in-report.json \
	tests/fuzz/corpus/report/empty-file.json \
	tests/fuzz/corpus/report/invalid-utf8.json \
	tests/fuzz/corpus/report/lone-surrogate-escape.json \
	tests/fuzz/corpus/report/message-at-limit-chinese.json \
	tests/fuzz/corpus/report/message-too-long.json \
	tests/fuzz/corpus/report/minimal.json \
	tests/fuzz/corpus/report/missing-seq-and-segments.json \
	tests/fuzz/corpus/report/nul-byte-raw.json \
	tests/fuzz/corpus/report/nul-escape-in-name.json \
	tests/fuzz/corpus/report/reason-at-limit.json \
	tests/fuzz/corpus/report/reason-too-long.json \
	tests/fuzz/corpus/report/replayed-seq-3.json \
	tests/fuzz/corpus/report/replayed-seq-5.json \
	tests/fuzz/corpus/report/resync-empty-segments.json \
	tests/fuzz/corpus/report/resync-unknown-and-missing-segment.json \
	tests/fuzz/corpus/report/segment-not-object.json \
	tests/fuzz/corpus/report/segments-at-limit.json \
	tests/fuzz/corpus/report/segments-not-array.json \
	tests/fuzz/corpus/report/seq-float.json \
	tests/fuzz/corpus/report/seq-int64-max.json \
	tests/fuzz/corpus/report/seq-negative.json \
	tests/fuzz/corpus/report/seq-overflow.json \
	tests/fuzz/corpus/report/seq-string.json \
	tests/fuzz/corpus/report/seq-zero.json \
	tests/fuzz/corpus/report/severity-case.json \
	tests/fuzz/corpus/report/severity-unknown.json \
	tests/fuzz/corpus/report/syntax-error-truncated.json \
	tests/fuzz/corpus/report/too-many-checks.json \
	tests/fuzz/corpus/report/too-many-segments.json \
	tests/fuzz/corpus/report/top-level-array.json \
	tests/fuzz/corpus/report/top-level-string.json \
	tests/fuzz/corpus/report/unknown-keys-kept.json \
	tests/fuzz/corpus/report/valid-dad-failed.json \
	tests/fuzz/corpus/report/valid-gateway-neigh-failed.json \
	tests/fuzz/corpus/report/valid-heartbeat-unchanged.json \
	tests/fuzz/corpus/report/valid-ipv4-only.json \
	tests/fuzz/corpus/report/valid-mtu-too-small.json \
	tests/fuzz/corpus/report/valid-no-ipv6-default-route.json \
	tests/fuzz/corpus/report/valid-only-outside-prefix.json \
	tests/fuzz/corpus/report/valid-outside-prefix-warn.json \
	tests/fuzz/corpus/report/valid-pretty-printed.json \
	tests/fuzz/corpus/report/valid-three-segments.json \
	tests/fuzz/corpus/report/waived-host-segment.json \
	tests/fuzz/corpus/report/whitespace-only.json \
	tests/fuzz/corpus/report/wrong-types.json

# The playbook loader and renderer (lib/playbook.c); every rendered step must
# pass the agent's own parser (agents/steps.c): run-fuzz.sh 60 playbook.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-playbook
tests_fuzz_fuzz_playbook_SOURCES = tests/fuzz/fuzz-playbook.c
tests_fuzz_fuzz_playbook_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz-playbook
TESTS += tests/fuzz/fuzz-playbook
tests_fuzz_fuzz_playbook_SOURCES = tests/fuzz/fuzz-playbook.c tests/fuzz/fuzz-main.c
endif
tests_fuzz_fuzz_playbook_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
tests_fuzz_fuzz_playbook_CFLAGS = $(agents_libagent_la_CFLAGS) $(YAML_CFLAGS) \
	-DFUZZ_CORPUS='"tests/fuzz/corpus/playbook"'
tests_fuzz_fuzz_playbook_LDADD = agents/libagent.la $(JANSSON_LIBS)
EXTRA_DIST += tests/fuzz/playbook.dict
EXTRA_DIST += \
	tests/fuzz/corpus/playbook/agent-rules.yaml \
	tests/fuzz/corpus/playbook/anchor-alias.yaml \
	tests/fuzz/corpus/playbook/bad-arg-type.yaml \
	tests/fuzz/corpus/playbook/bad-metadata-name.yaml \
	tests/fuzz/corpus/playbook/check-run-rules.yaml \
	tests/fuzz/corpus/playbook/crash-ip-error-cuts-utf8.yaml \
	tests/fuzz/corpus/playbook/duplicate-key.yaml \
	tests/fuzz/corpus/playbook/empty-document.yaml \
	tests/fuzz/corpus/playbook/empty-steps.yaml \
	tests/fuzz/corpus/playbook/invalid-utf8.yaml \
	tests/fuzz/corpus/playbook/leak-param-description-after-default.yaml \
	tests/fuzz/corpus/playbook/missing-required-arg.yaml \
	tests/fuzz/corpus/playbook/missing-top-level.yaml \
	tests/fuzz/corpus/playbook/param-bad-default.yaml \
	tests/fuzz/corpus/playbook/param-unknown-type.yaml \
	tests/fuzz/corpus/playbook/route-family.yaml \
	tests/fuzz/corpus/playbook/sample-accept-ra-with-forwarding.yaml \
	tests/fuzz/corpus/playbook/sample-disable-ipv6.yaml \
	tests/fuzz/corpus/playbook/sample-enable-dual-stack.yaml \
	tests/fuzz/corpus/playbook/sample-fix-default-route.yaml \
	tests/fuzz/corpus/playbook/sysctl-key-dotdot.yaml \
	tests/fuzz/corpus/playbook/sysctl-key-kernel.yaml \
	tests/fuzz/corpus/playbook/sysctl-key-net-core.yaml \
	tests/fuzz/corpus/playbook/sysctl-key-templated.yaml \
	tests/fuzz/corpus/playbook/template-malformed.yaml \
	tests/fuzz/corpus/playbook/template-outside-args.yaml \
	tests/fuzz/corpus/playbook/template-unknown-variable.yaml \
	tests/fuzz/corpus/playbook/template-unquoted.yaml \
	tests/fuzz/corpus/playbook/too-many-steps.yaml \
	tests/fuzz/corpus/playbook/unknown-action.yaml \
	tests/fuzz/corpus/playbook/unknown-arg.yaml \
	tests/fuzz/corpus/playbook/valid-doc-example.yaml \
	tests/fuzz/corpus/playbook/valid-every-action.yaml \
	tests/fuzz/corpus/playbook/valid-json.input.json \
	tests/fuzz/corpus/playbook/valid-param-when.yaml \
	tests/fuzz/corpus/playbook/valid-required-param.yaml \
	tests/fuzz/corpus/playbook/verify-bad.yaml \
	tests/fuzz/corpus/playbook/when-both.yaml \
	tests/fuzz/corpus/playbook/when-param.yaml \
	tests/fuzz/corpus/playbook/wrong-api-version-and-kind.yaml

# The agent's task and step parser (agents/tasks.c, agents/steps.c):
# run-fuzz.sh 60 task.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-task
tests_fuzz_fuzz_task_SOURCES = tests/fuzz/fuzz-task.c
tests_fuzz_fuzz_task_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer
else
check_PROGRAMS += tests/fuzz/fuzz-task
TESTS += tests/fuzz/fuzz-task
tests_fuzz_fuzz_task_SOURCES = tests/fuzz/fuzz-task.c tests/fuzz/fuzz-main.c
endif
tests_fuzz_fuzz_task_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agents
tests_fuzz_fuzz_task_CFLAGS = $(agents_libagent_la_CFLAGS) \
	-DFUZZ_CORPUS='"tests/fuzz/corpus/task"'
tests_fuzz_fuzz_task_LDADD = agents/libagent.la
EXTRA_DIST += \
	tests/fuzz/corpus/task/empty-file.json \
	tests/fuzz/corpus/task/family-mismatch.json \
	tests/fuzz/corpus/task/indexes-not-increasing.json \
	tests/fuzz/corpus/task/nul-escape-in-name.json \
	tests/fuzz/corpus/task/syntax-error-truncated.json \
	tests/fuzz/corpus/task/sysctl-outside.json \
	tests/fuzz/corpus/task/timeouts-out-of-range.json \
	tests/fuzz/corpus/task/unknown-members.json \
	tests/fuzz/corpus/task/valid-doc-example.json \
	tests/fuzz/corpus/task/valid-every-action.json \
	tests/fuzz/corpus/task/wrong-types.json
