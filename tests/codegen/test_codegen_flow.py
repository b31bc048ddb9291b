"""Flow control in the catalogue: ``limits: {active, rate}`` and ``group: {active, fifo}`` per
queue, rendered into the generated ``QueueSpec`` only when set, validated with file:line errors;
the generated ``enqueue_*`` functions take the flow options of a send."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import pytest

from typed_queues.codegen.errors import CatalogueInvalid
from typed_queues.codegen.generator import generate_files_from_text
from typed_queues.runtime import GroupPolicy, Limits, QueueSpec, Rate

CATALOGUE = """\
version: 1
domains:
  shop:
    queues:
      orders:
        limits: {active: 5, rate: 100/1s} #limits
        events:
          order-placed:
            payload: {type: object, properties: {id: {type: string}}}
      tenants:
        group: {active: 1, fifo: true} #group
        events:
          import-started:
            payload: {type: object, properties: {id: {type: string}}}
      plain:
        events:
          thing-done:
            payload: {type: object, properties: {id: {type: string}}}
"""


def _specs(text: str) -> dict[str, QueueSpec]:
    """The generated ``QueueSpec`` constants of domain ``shop``, by queue name."""
    source = generate_files_from_text(text)["shop/queues.py"]
    namespace: dict[str, Any] = {}
    exec(compile(source, "shop/queues.py", "exec"), namespace)
    return {v.name: v for v in namespace.values() if isinstance(v, QueueSpec)}


def _errors(text: str) -> list[str]:
    with pytest.raises(CatalogueInvalid) as caught:
        generate_files_from_text(text)
    return [str(error) for error in caught.value.errors]


def _line(text: str, mark: str) -> int:
    [line] = [n for n, row in enumerate(text.splitlines(), 1) if row.endswith(mark)]
    return line


def test_limits_and_groups_reach_the_generated_specs() -> None:
    specs = _specs(CATALOGUE)
    assert specs["shop.orders"].limits == Limits(active=5, rate=Rate(100, timedelta(seconds=1)))
    assert specs["shop.orders"].group is None
    assert specs["shop.tenants"].group == GroupPolicy(active=1, fifo=True)
    assert specs["shop.tenants"].limits == Limits()
    assert specs["shop.plain"].limits == Limits() and specs["shop.plain"].group is None


def test_a_catalogue_without_flow_control_renders_as_before() -> None:
    text = CATALOGUE.replace("        limits: {active: 5, rate: 100/1s} #limits\n", "").replace(
        "        group: {active: 1, fifo: true} #group\n", ""
    )
    source = generate_files_from_text(text)["shop/queues.py"]
    assert "limits=" not in source and "group=" not in source
    assert "from typed_queues.runtime import QueueSpec, RetryPolicy\n" in source


@pytest.mark.parametrize(
    ("rate", "per"),
    [
        ("10/1m", timedelta(minutes=1)),
        ("5/500ms", timedelta(milliseconds=500)),
        ("3/h", timedelta(hours=1)),
    ],
)
def test_rates_are_written_count_slash_duration(rate: str, per: timedelta) -> None:
    text = CATALOGUE.replace("rate: 100/1s", f"rate: {rate}")
    limits = _specs(text)["shop.orders"].limits
    assert limits.rate == Rate(int(rate.split("/")[0]), per)


@pytest.mark.parametrize(
    ("mark", "old", "new", "path", "message"),
    [
        (
            "#limits",
            "active: 5",
            "active: 0",
            "limits.active",
            "input should be greater than or equal to 1",
        ),
        (
            "#limits",
            "active: 5",
            "active: five",
            "limits.active",
            "input should be a valid integer",
        ),
        (
            "#limits",
            "rate: 100/1s",
            "rate: 100",
            "limits.rate",
            'invalid rate "100": write count/duration',
        ),
        ("#limits", "rate: 100/1s", "rate: 100/1w", "limits.rate", 'invalid rate "100/1w"'),
        (
            "#limits",
            "rate: 100/1s",
            "rate: 0/1s",
            "limits.rate",
            'rate "0/1s": the count must be 1',
        ),
        (
            "#limits",
            "rate: 100/1s",
            "rate: 5/10ms",
            "limits.rate",
            'rate "5/10ms": the period must be 100ms to 7d',
        ),
        ("#limits", "{active: 5, rate: 100/1s}", "{}", "limits", "limits sets nothing"),
        (
            "#limits",
            "active: 5",
            "actve: 5",
            "limits.actve",
            'unknown key "actve" (did you mean "active"?)',
        ),
        (
            "#group",
            "active: 1",
            "active: 0",
            "group.active",
            "input should be greater than or equal to 1",
        ),
        ("#group", "fifo: true", "fifo: 1", "group.fifo", "input should be a valid boolean"),
        (
            "#group",
            "fifo: true",
            "fifi: true",
            "group.fifi",
            'unknown key "fifi" (did you mean "fifo"?)',
        ),
        ("#group", "{active: 1, fifo: true}", "5", "group", "expected a mapping"),
    ],
)
def test_a_bad_flow_key_is_one_error_naming_file_line_and_path(
    mark: str, old: str, new: str, path: str, message: str
) -> None:
    queue = "orders" if mark == "#limits" else "tenants"
    line_old = next(row for row in CATALOGUE.splitlines() if row.endswith(mark))
    text = CATALOGUE.replace(line_old, line_old.replace(old, new))
    [error] = _errors(text)
    assert error.startswith(
        f"queues.yaml:{_line(text, mark)}: domains.shop.queues.{queue}.{path}: {message}"
    ), error


def test_a_misspelt_queue_key_suggests_limits() -> None:
    text = CATALOGUE.replace("        limits: {active", "        limit: {active")
    assert _errors(text) == [
        f"queues.yaml:{_line(text, '#limits')}: domains.shop.queues.orders.limit: "
        'unknown key "limit" (did you mean "limits"?)'
    ]


def test_the_enqueue_functions_take_the_flow_options() -> None:
    source = generate_files_from_text(CATALOGUE)["shop/enqueue.py"]
    single = ["group_key", "throttle", "debounce", "retry_limit", "expire_in"]
    batch = ["group_key", "retry_limit", "expire_in"]
    for name, options in (
        ("enqueue_order_placed", single),
        ("enqueue_order_placed_sync", single),
        ("enqueue_order_placed_many", batch),
        ("enqueue_order_placed_many_sync", batch),
    ):
        head = source[source.index(f"def {name}(") :]
        head = head[: head.index(") -> ")]
        for option in options:
            assert f"    {option}: " in head, (name, option)
        if name.endswith(("_many", "_many_sync")):
            assert "throttle" not in head and "debounce" not in head
    events = 3  # each with its four enqueue functions
    assert source.count("group_key=group_key,") == 4 * events
    assert source.count("throttle=throttle,") == 2 * events


def test_the_runtime_send_helpers_take_the_same_options() -> None:
    from typed_queues.runtime import typed

    single = {"group_key", "throttle", "debounce", "retry_limit", "expire_in"}
    batch = {"group_key", "retry_limit", "expire_in"}
    assert single <= set(inspect.signature(typed.send_event).parameters)
    assert single <= set(inspect.signature(typed.send_event_sync).parameters)
    for params in (
        inspect.signature(typed.send_events).parameters,
        inspect.signature(typed.send_events_sync).parameters,
    ):
        assert batch <= set(params) and "throttle" not in params
