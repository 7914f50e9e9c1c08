#!/usr/bin/env bash
# Fetch the ONNX Runtime C/C++ headers into DIR (default build/onnxruntime-sdk).
#
# The onnxruntime wheels ship no headers and Debian bookworm has no onnxruntime package;
# Debian trixie's libonnxruntime-dev (1.21) has them. This downloads that one .deb with
# `apt-get download` from the trixie suite of the Debian mirror this machine already uses,
# through a private apt state directory (the machine's apt sources are never changed),
# and unpacks it with dpkg -x. Idempotent: does nothing when the headers are there.
set -euo pipefail
dir=${1:-build/onnxruntime-sdk}
header="$dir/usr/include/onnxruntime/onnxruntime_cxx_api.h"
if [ -f "$header" ]; then
  exit 0
fi
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
# The mirror of the machine's own Debian sources, reused with the trixie suite.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "fetch_sdk.sh: no Debian mirror found in /etc/apt/sources.list{,.d}" >&2
  exit 1
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/parts" "$state/preferences"
echo "deb [signed-by=$keyring] $mirror trixie main" > "$state/sources.list"
apt_opts=(
  -o "Dir::State=$state" -o "Dir::State::status=/dev/null" -o "Dir::Cache=$state/cache"
  -o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=$state/parts"
  -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$state/preferences"
  -o "APT::Architecture=amd64" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -q update >/dev/null
(cd "$state" && apt-get "${apt_opts[@]}" -q download libonnxruntime-dev >/dev/null)
mkdir -p "$dir"
dpkg -x "$state"/libonnxruntime-dev_*.deb "$dir"
test -f "$header"
echo "ONNX Runtime headers in $dir/usr/include/onnxruntime"
