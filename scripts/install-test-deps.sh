#!/usr/bin/env bash
# Installs what the tests need from outside npm: the AWS CLI (Debian's awscli) and boto3
# (python3-boto3), used by the wire tests as real, independent clients; SoftHSMv2 and opensc for
# the PKCS#11 key store tests; openssl and curl for the XKS and HSM agent tests. Runs before
# `npm test` (npm's pretest hook).
set -euo pipefail
need=()
[ -x /usr/bin/aws ] || need+=(awscli)
/usr/bin/python3 -c 'import boto3' >/dev/null 2>&1 || need+=(python3-boto3)
# PKCS#11 HSM tests: SoftHSMv2 tokens, and opensc's pkcs11-tool as an independent witness.
[ -f /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
[ -x /usr/bin/pkcs11-tool ] || need+=(opensc)
# Test certificates (XKS proxies, HSM agents) and an independent SigV4 client (curl --aws-sigv4).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "npm test needs: ${need[*]} (Debian packages); install them or run as root" >&2; exit 1
  fi
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
