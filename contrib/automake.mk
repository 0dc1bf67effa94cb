# contrib/: installer, systemd unit, sample requests.
