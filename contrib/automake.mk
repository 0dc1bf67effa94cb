# contrib/: installer, systemd unit, sample requests.
EXTRA_DIST += contrib/install-deps.sh contrib/quickstart.sh contrib/demo.sh contrib/test-pki.sh \
	contrib/systemd/yunguand.service contrib/yunguand.yaml .ci/run
systemdunitdir = $(prefix)/lib/systemd/system
dist_systemdunit_DATA = contrib/systemd/yunguand.service
yunguanconfdir = $(sysconfdir)/yunguan
dist_yunguanconf_DATA = contrib/yunguand.yaml

# Sample requests; tests/golden/golden-requests checks that each is valid.
samplerequestsdir = $(pkgdatadir)/requests
dist_samplerequests_DATA = \
	contrib/requests/health-epidemic-reporting.yaml \
	contrib/requests/health-open-data.yaml \
	contrib/requests/health-vaccine-booking.yaml \
	contrib/requests/police-case-archive.yaml

# Sample segment list; tests/golden/golden-segments checks that it is valid.
EXTRA_DIST += contrib/segments.yaml
