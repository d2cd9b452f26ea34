"""The pieces of the response-cache hit path (issue 15) that make it cheap, each held to
what it replaced: the request read straight from ASGI, the operation line written without
structlog's chain, histograms counted in plain integers, and STRATA_METRICS=false."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry, Histogram
from starlette.requests import ClientDisconnect

from cache.observation import Observation
from graph.observability.counting import PlainHistogram
from graph.observability.exposition import Scrape
from graph.observability.logs import MAX_TIMED_LINES, JsonLines, configure_logging, json_lines
from graph.observability.metrics import LATENCY_BUCKETS
from graph.observability.operations import OperationLines, OperationStats
from graph.settings import Settings
from graph.web.exchange import Exchange, Reply
from graph.web.memo import BoundedMemo
from tests.support.api import running_api

BOOK = 'query OneBook { book(id: "2") { title } }'


def _receiver(*messages: dict[str, Any]) -> Any:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return receive


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "query_string": b"a=1", "headers": headers}


def test_the_first_of_a_repeated_header_wins_as_in_starlette() -> None:
    headers = [
        (b"accept", b"text/html"),
        (b"x-other", b"1"),
        (b"accept", b"application/json"),
        (b"authorization", b"Bearer abc"),
        (b"content-length", b"12"),
    ]
    exchange = Exchange.of(_scope(headers), _receiver())
    assert exchange.accept == "text/html"
    assert exchange.authorization == "Bearer abc"
    assert exchange.content_length == "12"
    assert exchange.if_none_match is None
    assert exchange.content_type == ""
    assert exchange.query_string == b"a=1"


async def test_a_body_is_read_whole_and_stops_past_the_limit() -> None:
    one = Exchange.of(_scope([]), _receiver({"type": "http.request", "body": b"abc"}))
    assert await one.body(3) == b"abc"
    chunks = [{"type": "http.request", "body": b"ab", "more_body": True}] * 3
    chunked = Exchange.of(_scope([]), _receiver(*chunks, {"type": "http.request", "body": b""}))
    assert await chunked.body(6) == b"ababab"
    endless = Exchange.of(_scope([]), _receiver(*chunks))
    assert await endless.body(3) is None  # stopped after the second chunk
    gone = Exchange.of(_scope([]), _receiver(chunks[0], {"type": "http.disconnect"}))
    with pytest.raises(ClientDisconnect):
        await gone.body(100)


def test_a_reply_carries_the_headers_starlette_would_send() -> None:
    from starlette.responses import Response

    for status, body, media_type in (
        (200, b"{}", "application/json"),
        (304, b"", None),
        (200, b"<p>", "text/html"),
        (401, b"x", "application/json"),
    ):
        headers = {"Cache-Control": "no-store", "ETag": '"e"'}
        ours = Reply(status, body, media_type, headers).raw_headers()
        theirs = Response(body, status, headers, media_type).raw_headers
        assert ours == theirs


def test_the_operation_line_is_the_line_structlog_rendered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(log_level="INFO", log_format="json")
    configure_logging(settings)
    fields = {
        "operation": "OneBook",
        "type": "query",
        "cache": {"l1_hits": 1},
        "sql": {"ms": 0.5},
        "dataloaders": {},
        "tags_invalidated": 0,
        "duration_ms": 0.04,
        "response": "hit",
    }
    capsys.readouterr()
    structlog.get_logger("strata.operation").info("operation", **fields)
    lines = json_lines(settings)
    assert lines is not None
    lines.emit(dict(fields), "operation", "info")
    lines.flush()
    before, ours = capsys.readouterr().err.splitlines()
    rendered, written = json.loads(before), json.loads(ours)
    assert list(written) == list(rendered)  # the same members in the same order
    assert {**written, "timestamp": None} == {**rendered, "timestamp": None}
    assert written["timestamp"].endswith("Z")
    assert written["timestamp"][:16] == rendered["timestamp"][:16]
    logging.getLogger().setLevel(logging.WARNING)


def test_console_logs_keep_structlog() -> None:
    assert json_lines(Settings(log_format="console")) is None


def test_lines_reach_the_stream_in_order_with_its_other_text() -> None:
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, write_through=True)
    lines = JsonLines(stream)
    stream.write("before\n")
    lines.emit({"n": 1}, "operation", "info")
    stream.write("after\n")
    lines.flush()
    text = buffer.getvalue().decode().splitlines()
    assert text[0] == "before"
    assert json.loads(text[1])["n"] == 1
    assert text[2] == "after"


def test_plain_counting_exports_what_prometheus_would_have_counted() -> None:
    registry = CollectorRegistry()
    direct = Histogram("direct", "d", buckets=LATENCY_BUCKETS, registry=registry)
    folded = Histogram("folded", "f", buckets=LATENCY_BUCKETS, registry=registry)
    plain = PlainHistogram(folded)
    values = [0.0, 0.0001, 0.00011, 0.003, 0.25, 2.5, 7.0, 1e-9, 0.05]
    for value in values:
        direct.observe(value)
        plain.observe(value)
    assert registry.get_sample_value("folded_count") == 0  # nothing until folded
    plain.fold()
    plain.fold()  # a second fold adds nothing
    for suffix in ("_count", "_sum"):
        assert registry.get_sample_value(f"folded{suffix}") == pytest.approx(
            registry.get_sample_value(f"direct{suffix}")
        )
    for bound in (*LATENCY_BUCKETS, float("inf")):
        le = {"le": str(float(bound)) if bound != float("inf") else "+Inf"}
        assert registry.get_sample_value("folded_bucket", le) == registry.get_sample_value(
            "direct_bucket", le
        ), le


async def test_metrics_off_leaves_the_operation_series_at_zero(cached_settings: Settings) -> None:
    settings = cached_settings.model_copy(update={"metrics": False})
    async with running_api(settings) as api:
        for _ in range(3):
            assert (await api.post(BOOK)).status_code == 200
        text = (await api.client.get("/metrics")).text
    scrape = Scrape.of(text)
    assert not scrape.total("strata_request_seconds_count", method="POST")
    assert not scrape.total("strata_operation_seconds_count")
    assert not scrape.total("strata_response_cache_total", result="hit")
    # The engine's counters still reach /metrics.
    assert (scrape.total("strata_cache_hits_total", tier="l1") or 0) >= 2


async def test_timed_lines_wait_for_the_flush_and_stay_in_order_with_other_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(log_level="INFO", log_format="json")
    configure_logging(settings)
    lines = json_lines(settings)
    assert lines is not None
    capsys.readouterr()
    lines.write_timed((b'{"n":1,"duration_ms":', b',"timestamp":"'), 0.0012346)
    lines.write_timed((b'{"n":2,"duration_ms":', b',"timestamp":"'), 1.5)
    assert capsys.readouterr().err == ""  # noted, not rendered
    lines.write_timed((b'{"n":3,"duration_ms":', b',"timestamp":"'), 0.0)
    structlog.get_logger("strata.other").warning("later")  # its handler renders them first
    lines.write_timed((b'{"n":4,"duration_ms":', b',"timestamp":"'), 0.25)
    lines.flush()
    written = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line.get("n", line.get("event")) for line in written] == [1, 2, 3, "later", 4]
    assert [line.get("duration_ms") for line in written] == [1.235, 1500.0, 0.0, None, 250.0]
    assert all(line["timestamp"].endswith("Z") for line in written)
    logging.getLogger().setLevel(logging.WARNING)


async def test_timed_lines_waiting_are_bounded() -> None:
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, write_through=True)  # kept: closing it closes buffer
    lines = JsonLines(stream)
    for n in range(MAX_TIMED_LINES + 10):
        lines.write_timed((b'{"duration_ms":', b',"timestamp":"'), n / 1000)
    assert len(buffer.getvalue().splitlines()) == MAX_TIMED_LINES  # before any flush
    lines.flush()
    durations = [json.loads(line)["duration_ms"] for line in buffer.getvalue().splitlines()]
    assert durations == [float(n) for n in range(MAX_TIMED_LINES + 10)]


async def test_an_unbuffered_stream_gets_a_buffer_of_its_own(tmp_path: Path) -> None:
    """stderr under PYTHONUNBUFFERED has no buffer: a write per line would be a system
    call per request. The lines wait in a buffer on the same descriptor instead."""
    path = tmp_path / "err.log"
    with path.open("wb", buffering=0) as raw:
        stream = io.TextIOWrapper(raw, write_through=True)  # type: ignore[type-var]
        assert isinstance(stream.buffer, io.RawIOBase)
        lines = JsonLines(stream)
        for n in range(3):
            lines.emit({"n": n}, "operation", "info")
        assert path.read_bytes() == b""
        lines.flush()
        del lines
        stream.write("still open\n")
    written = path.read_text().splitlines()
    assert [json.loads(line)["n"] for line in written[:3]] == [0, 1, 2]
    assert written[3] == "still open"


def test_the_hot_path_memo_holds_its_bound_dropping_the_oldest() -> None:
    memo: BoundedMemo[str, bytes] = BoundedMemo(100, lambda key, value: len(key) + len(value))
    for n in range(10):
        memo.put(f"k{n}", b"x" * 18)  # 20 bytes each
    assert memo.bytes == 100
    assert len(memo) == 5
    assert memo.get("k4") is None
    assert memo.get("k5") == b"x" * 18
    memo.put("k9", b"")  # replacing an entry counts only the new one
    assert memo.bytes == 82
    memo.put("huge", b"x" * 200)  # over the whole bound: not kept, nothing dropped
    assert memo.get("huge") is None
    assert len(memo) == 5


def test_a_templated_operation_line_is_the_line_emit_writes() -> None:
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, write_through=True)  # kept: closing it closes buffer
    lines = JsonLines(stream)
    writer = OperationLines(lines)
    observation = Observation()
    observation.add("l1_hits", 1)
    hit = OperationStats(cache=observation, name='Odd "name"', response="hit")
    for _ in range(2):  # rendered, then from its template
        writer.write(hit)
    lines.emit(hit.report(), "operation", "info")
    executed = OperationStats(cache=Observation(), name=None, response="miss", sql_statements=2)
    writer.write(executed)
    lines.flush()
    first, second, emitted, miss = buffer.getvalue().splitlines()

    def shape(line: bytes) -> bytes:  # the line's bytes with its duration and time blanked
        line = re.sub(rb'"duration_ms":[-+.e0-9]+,', b'"duration_ms":0,', line)
        return re.sub(rb'"timestamp":"[^"]*"', b'"timestamp":""', line)

    assert shape(first) == shape(second) == shape(emitted)
    assert shape(first) != first
    assert json.loads(first)["cache"]["l1_hits"] == 1
    assert json.loads(second)["operation"] == 'Odd "name"'
    assert json.loads(miss)["sql"]["statements"] == 2
