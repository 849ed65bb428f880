#!/usr/bin/env bash
# The Debian packages the tests need, in one list: installed when run as root, else the apt-get command that
# would install the missing ones is printed and the script fails, so a fresh machine never runs a half-equipped
# suite. Nothing missing: silent success.
set -euo pipefail

packages=(
    make iproute2 util-linux                    # the test runner: `ip link`, `unshare --net`
    ffmpeg                                      # RTSP publishers for push mode
    python3-gi gir1.2-gst-rtsp-server-1.0       # the test RTSP camera (gst-rtsp-server)
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
    docker-compose                              # `docker-compose config` validates docker-compose.yml
    espeak-ng                                   # spoken words in the quality benchmark's scenes
    chromium                                    # the console's browser tests (driven by Playwright)
)

if ! command -v dpkg-query >/dev/null; then
    echo "install-system-packages: not a Debian system; install the equivalents of: ${packages[*]}" >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-packages: the tests need Debian packages that are missing; as root, run:" >&2
    echo "  apt-get update && ${install[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${install[@]}" -qq
