"""Which addresses the guard calls internal, whatever way they are written."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from casedesk.integrations.errors import OutboundAddressRefused
from casedesk.integrations.guard import AddressPolicy


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.53", "loopback"),
        ("::1", "loopback"),
        ("10.20.30.40", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "non-public"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),
        ("64:ff9b::a00:1", "reserved"),
    ],
)
def test_internal_addresses_are_refused(address: str, kind: str) -> None:
    with pytest.raises(OutboundAddressRefused, match=f"{kind} addresses"):
        AddressPolicy().check("service.test", ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    AddressPolicy().check("service.test", ip_address(address))


@pytest.mark.parametrize("address", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_an_allowed_network_covers_every_spelling_of_its_addresses(address: str) -> None:
    policy = AddressPolicy((ip_network("127.0.0.0/8"),))

    policy.check("service.test", ip_address(address))


def test_an_allowed_network_does_not_open_its_neighbours() -> None:
    policy = AddressPolicy((ip_network("10.1.0.0/16"),))

    policy.check("service.test", ip_address("10.1.2.3"))
    with pytest.raises(OutboundAddressRefused):
        policy.check("service.test", ip_address("10.2.0.1"))
