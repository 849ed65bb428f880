#!/usr/bin/env bash
# Runs the test suite with no route off this machine: inside a fresh network namespace with only loopback up,
# so Ray, Redis and the RTSP server cannot reach (or be reached from) any other address.
set -euo pipefail
cd "$(dirname "$0")/.."
pytest=(.venv/bin/python -m pytest "$@")

if [ "${OMNISIFT_TEST_NETNS:-}" = "1" ]; then
    ip link set lo up
    set +e
    "${pytest[@]}"
    status=$?
    set -e
    if [ "$status" -eq 5 ]; then
        echo "run-tests: pytest collected no tests; that is a failure" >&2
        exit 1
    fi
    exit "$status"
fi

if [ "$(id -u)" -eq 0 ]; then
    exec env OMNISIFT_TEST_NETNS=1 unshare --net -- "$0" "$@"
fi
exec env OMNISIFT_TEST_NETNS=1 unshare --net --map-root-user -- "$0" "$@"
