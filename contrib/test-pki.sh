#!/bin/sh
# contrib/test-pki.sh DIR: a throw-away CA and a server certificate for
# 127.0.0.1, for tests and benchmarks that run yunguand over HTTPS — never
# for production.  Writes DIR/ca.crt, DIR/ca.key, DIR/server.crt and
# DIR/server.key (mode 0600), ECDSA P-256, valid 2 days.  Needs openssl;
# exits non-zero (with openssl's messages in DIR/openssl.log) when it fails.
set -eu
dir=${1:?usage: test-pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=yunguan test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout ca.key -out ca.crt
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=yunguand test" \
        -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt
} >openssl.log 2>&1
chmod 600 server.key ca.key
