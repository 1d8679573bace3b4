#!/usr/bin/env bash
# Makes the TLS fixtures of Tests/SyncNodeTests (TLSTests.swift): a test CA with three site
# certificates (north, south, and hub, which names only hub.tierline.test, no address), and a
# second, unrelated CA ("rogue-ca") with one certificate, which nodes trusting the test CA refuse.
# Run it from anywhere; it writes next to itself:
#
#   Tests/SyncNodeTests/Fixtures/tls/make-certs.sh
#
# Every certificate is valid for 100 years from the day it is made, so the committed files do not
# expire under the tests. Keys are ECDSA P-256. Site certificates name NAME.tierline.test,
# localhost, 127.0.0.1 and ::1 (the tests dial 127.0.0.1) unless given other names, and allow both
# serverAuth and clientAuth, since a node both accepts and dials. The CA keys are deleted at the end: to add a certificate, run the script again (it makes
# every file anew). The same commands, with real names, are in Deploy/OPERATOR.md ("TLS").
set -euo pipefail
cd "$(dirname "$0")"
DAYS=36500
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make_ca() { # NAME SUBJECT
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days $DAYS \
        -keyout "$work/$1-key.pem" -out "$1.pem" -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

make_site() { # NAME CA [SUBJECT-ALT-NAMES]
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1-key.pem" -out "$work/$1.csr" -subj "/O=Tierline test/CN=$1"
    cat > "$work/$1.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=${3:-DNS:$1.tierline.test,DNS:localhost,IP:127.0.0.1,IP:::1}
EXT
    openssl x509 -req -in "$work/$1.csr" -CA "$2.pem" -CAkey "$work/$2-key.pem" -CAcreateserial \
        -CAserial "$work/$2.srl" -days $DAYS -extfile "$work/$1.ext" -out "$1.pem"
}

make_ca ca "/O=Tierline test/CN=Tierline Test CA"
make_site north ca
make_site south ca
make_site hub ca DNS:hub.tierline.test
make_ca rogue-ca "/O=Somebody else/CN=Rogue CA"
make_site rogue rogue-ca
chmod 0644 ./*.pem
openssl verify -CAfile ca.pem north.pem south.pem hub.pem
openssl verify -CAfile rogue-ca.pem rogue.pem
