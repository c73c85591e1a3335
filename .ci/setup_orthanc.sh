#!/usr/bin/env bash
# Installs Orthanc (a DICOM server) and its DICOMweb plugin from Debian, for the PACS round trip of the MONAI
# Label tests (tests/monailabel/test_dicomweb.py starts its own Orthanc on 127.0.0.1 with a temporary
# configuration and storage; the system service is never used).
# Idempotent: does nothing when the Orthanc binary and the plugin are present. Needs root (CI runs as root);
# without root and without Orthanc it says so and exits 1 (the tests then fail), or 0 where
# VOXCAUSE_REQUIRE_ORTHANC=0 says the round trip is optional (the PACS tests then skip).
# Usage: bash .ci/setup_orthanc.sh
set -euo pipefail
plugin_present() {
    dpkg -L orthanc-dicomweb 2>/dev/null | grep -q 'libOrthancDicomWeb\.so'
}
if command -v Orthanc >/dev/null 2>&1 && plugin_present; then
    echo "setup_orthanc: $(Orthanc --version 2>/dev/null | head -1) with the DICOMweb plugin already installed"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "setup_orthanc: Orthanc is missing and this is not root — run as root: apt-get install -y orthanc orthanc-dicomweb" >&2
    # outside CI the PACS tests may be skipped on purpose: VOXCAUSE_REQUIRE_ORTHANC=0
    [ "${VOXCAUSE_REQUIRE_ORTHANC:-1}" = "0" ] && exit 0
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# the packages' post-install scripts try to (re)start the system service; in containers policy-rc.d denies it
apt-get install -y --no-install-recommends orthanc orthanc-dicomweb >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y --no-install-recommends orthanc orthanc-dicomweb >/dev/null
}
command -v Orthanc >/dev/null && plugin_present
echo "setup_orthanc: installed $(Orthanc --version 2>/dev/null | head -1) with the DICOMweb plugin"
