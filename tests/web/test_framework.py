"""web/framework.py: the app and response classes take short ways that must answer exactly as Flask's."""

from __future__ import annotations

import asyncio
import functools

import pytest
from flask import Flask, redirect
from flask.wrappers import Response
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.urls import iri_to_uri

from zgw_identificatie.web.framework import _PLAIN_LOCATION, ServiceFlask, ServiceResponse

ENVIRON = EnvironBuilder(path="/x", base_url="https://id.gemeente.example/").get_environ()


def both(build: object) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The WSGI headers werkzeug's Response and ours give for the same answer."""
    theirs = build(Response).get_wsgi_headers(ENVIRON).to_wsgi_list()  # type: ignore[operator]
    ours = build(ServiceResponse).get_wsgi_headers(ENVIRON).to_wsgi_list()  # type: ignore[operator]
    return theirs, ours


@pytest.mark.parametrize(
    "status, headers",
    [
        (200, {}),
        (201, {"Location": "https://id.gemeente.example/api/v1/sessions/abc_-DEF"}),
        (303, {"Location": "/i/abc/klaar?lang=en&x=1"}),
        (302, {"Location": "https://ID.gemeente.example/p"}),  # upper-case host: werkzeug lowers it
        (302, {"Location": "/p a"}),  # a space to quote
        (302, {"Location": "/på"}),  # not ASCII
        (302, {"Location": "//elsewhere.example/p"}),  # scheme-relative
        (302, {"Location": "https://h.example/p#frag"}),
        (302, {"Location": "https://user@h.example/p"}),
        (302, {"Location": "https://h.example:0080/p"}),
        (302, {"Location": "https://h.example:59999/p"}),
        (200, {"Content-Location": "/a b"}),
        (204, {}),
        (304, {"ETag": '"x"'}),
        (400, {"X-Request-Id": "r1"}),
    ],
)
def test_answers_carry_the_headers_werkzeug_gives(status: int, headers: dict[str, str]) -> None:
    def build(cls: type[Response]) -> Response:
        resp = cls("body", status=status)
        for name, value in headers.items():
            resp.headers[name] = value
        return resp

    theirs, ours = both(build)
    assert ours == theirs


def test_an_answer_without_a_known_length_gets_werkzeug_s() -> None:
    def build(cls: type[Response]) -> Response:
        resp = cls(["a", "bc"])
        del resp.headers["Content-Length"]
        return resp

    theirs, ours = both(build)
    assert ours == theirs
    assert ("Content-Length", "3") in ours


def test_the_copy_is_a_copy() -> None:
    resp = ServiceResponse("x")
    copy = resp.get_wsgi_headers(ENVIRON)
    copy["X-Later"] = "1"
    assert "X-Later" not in resp.headers


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="abcXYZ019./:?#@%&=+ -_~!$'()*,;[]å", max_size=40).map(lambda s: "/" + s)
    | st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
        st.sampled_from(["http", "https", "HTTP", "ftp"]),
        st.text(alphabet="abAB09.-", min_size=1, max_size=12),
        st.sampled_from(["", ":8080", ":0", ":080", ":99999"]),
        st.text(alphabet="ab9/?=&%# å", max_size=20),
    )
)
def test_every_location_taken_the_short_way_is_one_iri_to_uri_leaves_alone(location: str) -> None:
    if _PLAIN_LOCATION.fullmatch(location):
        assert iri_to_uri(location) == location


def test_the_pattern_takes_the_service_s_own_locations() -> None:
    for location in (
        "http://127.0.0.1:8000/api/v1/sessions/Zx_9-a",
        "/i/Zx_9-a/klaar",
        "/staff/login?next=/staff/sessions/abc",
        "https://id.gemeente.example/digid/acs?SAMLart=AAQ%2Bxyz&RelayState=abc",
    ):
        assert _PLAIN_LOCATION.fullmatch(location), location
        assert iri_to_uri(location) == location


def test_a_redirect_from_a_view_answers_as_flask_s() -> None:
    def make(cls: type[Flask]) -> list[tuple[str, str]]:
        app = cls(__name__)

        @app.get("/")
        def index() -> Response:
            return redirect("/elders?a=1")  # type: ignore[return-value]

        resp = app.test_client().get("/")
        return [(k, v) for k, v in resp.headers.items()]

    assert make(ServiceFlask) == make(Flask)


def test_plain_functions_are_used_as_they_are_and_anything_else_goes_through_flask() -> None:
    app = ServiceFlask(__name__)

    def plain() -> int:
        return 1

    async def coroutine() -> int:
        return 2

    assert app.ensure_sync(plain) is plain
    assert asyncio.iscoroutinefunction(coroutine)
    try:
        wrapped = app.ensure_sync(coroutine)
    except RuntimeError:  # Flask without its async extra refuses async views: as Flask itself would
        pass
    else:
        assert wrapped is not coroutine and wrapped() == 2
    partial = functools.partial(plain)
    assert app.ensure_sync(partial) is partial  # not a plain function: Flask decides, and keeps it


def test_a_line_break_is_still_refused_where_a_header_is_set() -> None:
    """The short copy relies on werkzeug checking each value when it is set, not again when it is sent."""
    resp = ServiceResponse("x")
    with pytest.raises(ValueError):
        resp.headers["X-Injected"] = "a\r\nSet-Cookie: evil=1"
    with pytest.raises(ValueError):
        resp.headers.add("X-Injected", "a\nb")
