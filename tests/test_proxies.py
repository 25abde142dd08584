"""whitelist.core.proxies: X-Forwarded-For only from trusted proxies; its setting and checks."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from whitelist.checks import check_forwarded_for, check_settings
from whitelist.conf import conf
from whitelist.core.proxies import TrustedProxies, client_address, parse_network

PROXIES = TrustedProxies([parse_network("127.0.0.1"), parse_network("10.0.0.0/8")])


@pytest.mark.parametrize(
    ("address", "trusted"),
    [
        ("127.0.0.1", True),
        ("10.255.0.1", True),
        ("::ffff:10.0.0.1", True),  # a dual-stack listener's view of an IPv4 peer
        ("127.0.0.2", False),
        ("::1", False),
        ("11.0.0.1", False),
        ("unknown", False),
        ("", False),
        (None, False),
    ],
)
def test_trusted_proxies_are_matched_by_network(address: object, trusted: bool) -> None:
    assert (address in PROXIES) is trusted


def test_nothing_is_trusted_by_default() -> None:
    assert not TrustedProxies()
    assert "127.0.0.1" not in TrustedProxies()


def test_a_client_writing_its_own_header_is_its_own_address() -> None:
    environ = {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "10.0.0.7, 198.51.100.9"}
    assert client_address(environ, PROXIES, 2) == "192.0.2.1"


def test_the_walk_goes_no_further_than_the_proxy_count() -> None:
    environ = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9, 10.0.0.7"}
    assert client_address(environ, PROXIES, 1) == "10.0.0.7"
    assert client_address(environ, PROXIES, 2) == "198.51.100.9"
    assert client_address(environ, PROXIES, 0) == "10.0.0.1"


@override_settings(WHITELIST_TRUSTED_PROXIES=["127.0.0.1", " 10.0.0.0/8 ", "::1"])
def test_the_setting_lists_addresses_and_networks() -> None:
    assert [str(network) for network in conf.WHITELIST_TRUSTED_PROXIES.networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]


@override_settings(WHITELIST_TRUSTED_PROXIES=["127.0.0.1", "10.0.0.300", 7])
def test_an_unusable_entry_is_left_out_and_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="whitelist.conf"):
        trusted = conf.WHITELIST_TRUSTED_PROXIES
    assert [str(network) for network in trusted.networks] == ["127.0.0.1/32"]
    assert "'10.0.0.300'" in caplog.text and "7" in caplog.text
    errors = [message for message in check_settings() if message.id == "whitelist.E009"]
    assert len(errors) == 2
    assert "'10.0.0.300'" in errors[0].msg


@pytest.mark.parametrize("value", ["127.0.0.1", None, 7])
def test_a_setting_that_is_no_list_trusts_nothing(value: object) -> None:
    with override_settings(WHITELIST_TRUSTED_PROXIES=value):
        assert not conf.WHITELIST_TRUSTED_PROXIES
        assert [message.id for message in check_settings()] == ["whitelist.E009"]


@override_settings(WHITELIST_PROXY_COUNT=1)
def test_a_proxy_count_without_trusted_proxies_is_a_warning() -> None:
    assert check_settings() == []
    warnings = check_forwarded_for()
    assert [message.id for message in warnings] == ["whitelist.W010"]
    assert "X-Forwarded-For is never read" in warnings[0].msg


@override_settings(WHITELIST_TRUSTED_PROXIES=["127.0.0.1"])
def test_trusted_proxies_without_a_count_is_a_warning() -> None:
    assert [message.id for message in check_forwarded_for()] == ["whitelist.W011"]


@override_settings(WHITELIST_PROXY_COUNT=1, WHITELIST_TRUSTED_PROXIES=["127.0.0.1"])
def test_a_count_with_trusted_proxies_passes() -> None:
    assert check_settings() == check_forwarded_for() == []


@pytest.mark.django_db  # check_broad_rules reads the rules
@override_settings(WHITELIST_TRUSTED_PROXIES=["not an address"])
def test_manage_py_check_fails_on_an_unusable_entry() -> None:
    with pytest.raises(SystemCheckError, match="whitelist.E009"):
        call_command("check")


@pytest.mark.parametrize("entry", ["::ffff:10.0.0.0/104", "::ffff:10.1.2.3"])
def test_an_ipv4_mapped_network_trusts_its_ipv4_peers(entry: str) -> None:
    """Peers are compared as IPv4: written mapped, the network never matched one."""
    trusted = TrustedProxies([parse_network(entry)])
    assert "10.1.2.3" in trusted
    assert "::ffff:10.1.2.3" in trusted
    assert "192.0.2.1" not in trusted


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "::/0"])
def test_trusting_every_peer_is_a_warning(everyone: str) -> None:
    """Every client could then write its own address and escape the per-address limits."""
    with override_settings(WHITELIST_PROXY_COUNT=1, WHITELIST_TRUSTED_PROXIES=[everyone]):
        assert [message.id for message in check_forwarded_for()] == ["whitelist.W012"]
