"""The outbound address policy: which hosts a camera URL may name. Resolution is injected here (the tests run
with only loopback), except for the names the system resolver answers offline (localhost, numeric forms)."""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.address_policy import AddressPolicy, system_resolver
from pipeline.errors import ForbiddenSource, SourceUnavailable
from pipeline.ingest.media_policy import MediaPolicy, plan_source
from pipeline.ingest.sources import ClipSource, SourceSpec
from tests.fixtures.media_servers import drain


def names(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


def never_resolve(host: str) -> list[str]:
    raise AssertionError(f"{host} should be decided without resolving it")


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "the cloud metadata endpoint"),
        ("169.254.10.20", "169.254.0.0/16 (link-local)"),
        ("fe80::1", "fe80::/10 (link-local)"),
        ("fe80::1%eth0", "fe80::/10 (link-local)"),
        ("[fe80::1]", "fe80::/10 (link-local)"),
        ("fd00:ec2::254", "the AWS metadata endpoint over IPv6"),
        ("::ffff:169.254.169.254", "the cloud metadata endpoint"),  # IPv4 written as IPv6
    ],
)
def test_link_local_and_metadata_addresses_are_denied_by_default(host, reason):
    with pytest.raises(ForbiddenSource, match="not allowed") as refused:
        AddressPolicy(resolve=never_resolve).check(host)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "10.0.0.12", "172.16.5.4", "192.168.1.20", "fd12:3456::1", "8.8.8.8"]
)
def test_loopback_private_and_public_addresses_are_allowed_by_default(host):
    AddressPolicy(resolve=never_resolve).check(host)


def test_the_metadata_host_name_is_denied_without_resolving_it():
    policy = AddressPolicy(resolve=never_resolve)
    for host in ("metadata.google.internal", "METADATA.Google.Internal.", " metadata.google.internal"):
        with pytest.raises(ForbiddenSource, match="cloud metadata endpoint"):
            policy.check(host)


def test_a_name_is_denied_when_any_of_its_addresses_is():
    policy = AddressPolicy(resolve=names({"cam.lan": ["10.0.0.5"], "sneaky.lan": ["10.0.0.5", "169.254.169.254"]}))
    policy.check("cam.lan")
    with pytest.raises(ForbiddenSource, match=r"sneaky.lan resolves to 169.254.169.254, which is not allowed"):
        policy.check("sneaky.lan")


def test_a_name_that_does_not_resolve_is_unavailable_not_allowed():
    with pytest.raises(SourceUnavailable, match="does not resolve"):
        AddressPolicy(resolve=names({})).check("camera.invalid")


def test_the_system_resolver_reads_numeric_host_forms_as_addresses():
    """FFmpeg would connect 2852039166 and 0251.0376.0251.0376 to 169.254.169.254: so does the check."""
    assert system_resolver("localhost") and all(
        ipaddress.ip_address(a).is_loopback for a in system_resolver("localhost")
    )
    policy = AddressPolicy()
    policy.check("localhost")
    for host in ("2852039166", "0251.0376.0251.0376", "169.254.43518"):
        with pytest.raises(ForbiddenSource, match="resolves to 169.254.169.254"):
            policy.check(host)


def test_allowed_ranges_restrict_and_denied_ranges_still_win():
    policy = AddressPolicy(allow_cidrs=("10.0.0.0/8", "169.254.0.0/16"), resolve=never_resolve)
    policy.check("10.1.2.3")
    with pytest.raises(ForbiddenSource, match=r"none of the allowed ranges \(10.0.0.0/8, 169.254.0.0/16\)"):
        policy.check("192.168.1.20")
    with pytest.raises(ForbiddenSource, match="denied range"):
        policy.check("169.254.1.1")


def test_the_denied_ranges_are_configurable():
    """A site whose cameras sit on link-local addresses denies only the metadata endpoints."""
    policy = AddressPolicy(deny_cidrs=("169.254.169.254/32", "fd00:ec2::254/128"), resolve=never_resolve)
    policy.check("169.254.10.20")
    with pytest.raises(ForbiddenSource, match="169.254.169.254/32"):
        policy.check("169.254.169.254")


def test_a_range_that_is_not_a_cidr_is_refused():
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP address or CIDR range"):
        AddressPolicy(deny_cidrs=("10.0.0.0/33",))


def test_camera_urls_are_checked_when_planned():
    policy = MediaPolicy(addresses=AddressPolicy(resolve=names({"cam.lan": ["10.0.0.5"]})))
    assert plan_source("rtsp://user:pw@cam.lan:554/stream1", policy).kind.value == "rtsp"
    assert plan_source("rtsp://camera.invalid/x", policy).kind.value == "rtsp"  # unresolvable now: opens check
    for url in ("rtsp://169.254.169.254/latest", "http://[fe80::1]:8080/video.ts", "https://metadata.google.internal/"):
        with pytest.raises(ForbiddenSource):
            plan_source(url, policy)
    with pytest.raises(ForbiddenSource, match=r"rtsp://\*\*\*@"):  # credentials stay redacted in the reason
        plan_source("rtsp://admin:s3cret@169.254.169.254/x", policy)


def test_every_open_checks_the_address_again():
    """A name that resolved to a camera when the stream was added and to the metadata endpoint later is
    refused before FFmpeg opens it, and the live source stops instead of retrying."""
    answers = iter([["10.0.0.5"], ["169.254.169.254"]])
    policy = MediaPolicy(addresses=AddressPolicy(resolve=lambda host: next(answers)), backoff_initial_s=0.05)
    source = ClipSource(SourceSpec("gate", "rtsp://cam.lan/stream", clip_seconds=2), policy)
    with pytest.raises(ForbiddenSource, match="cam.lan resolves to 169.254.169.254"):
        drain(source)
    assert source.status().state == "failed"


def test_a_live_source_whose_name_stops_resolving_retries():
    calls = []

    def flaky(host: str) -> list[str]:
        calls.append(host)
        raise OSError("temporary failure in name resolution")

    policy = MediaPolicy(addresses=AddressPolicy(resolve=flaky), backoff_initial_s=0.05, retry_for_s=0.5)
    with pytest.raises(SourceUnavailable, match="does not resolve"):
        drain(ClipSource(SourceSpec("gate", "rtsp://cam.lan/stream", clip_seconds=2), policy))
    assert len(calls) >= 3  # the plan's check, then one per open until retry_for_s ran out
