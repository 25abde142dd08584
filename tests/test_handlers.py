"""Handlers are called in the form they were written, chosen by signature."""

from __future__ import annotations

from typing import Any

import pytest

from whitelist.server.handlers import accepts, fitting


def two(sid: str, environ: dict[str, Any]) -> None: ...


def three(sid: str, environ: dict[str, Any], auth: Any) -> None: ...


def defaulted(sid: str, environ: dict[str, Any], auth: Any = None) -> None: ...


def variadic(*args: Any) -> None: ...


ARGS = ("sid", {"HTTP_ORIGIN": "https://a.test"}, {"token": 1})


@pytest.mark.parametrize(
    ("handler", "count"), [(two, 2), (three, 3), (defaulted, 3), (variadic, 3)]
)
def test_connect_arguments_fit_the_handler(handler: Any, count: int) -> None:
    assert fitting(handler, ARGS, 2) == ARGS[:count]


def test_a_handler_taking_too_few_arguments_gets_them_all_and_fails_loudly() -> None:
    def one(sid: str) -> None: ...

    assert fitting(one, ARGS, 2) == ARGS


def test_bound_methods_are_read_without_self() -> None:
    class Namespace:
        def on_connect(self, sid: str, environ: dict[str, Any]) -> None: ...

    assert fitting(Namespace().on_connect, ARGS, 2) == ARGS[:2]


def test_callables_without_a_signature_are_trusted() -> None:
    assert accepts(print, 3)
