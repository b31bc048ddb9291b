"""One test per catalogue rule: each error is one line with the file, the line and the path.

Every case edits a small valid catalogue; the line marked ``#<`` is where the error must point.
"""

from __future__ import annotations

import pytest

from typed_queues.codegen.catalogue import format_duration, parse_duration
from typed_queues.codegen.errors import CatalogueInvalid
from typed_queues.codegen.generator import generate_files_from_text

BASE = """\
version: 1
defaults:
  retry: {limit: 3, delay: 5s}
domains:
  billing:
    $defs:
      Money:
        type: object
        required: [amount_cents]
        properties:
          amount_cents: {type: integer, minimum: 0}
    queues:
      invoices:
        retry: {limit: 5}
        dead_letter: invoices-dead
        events:
          invoice-created:
            entity_id: invoice_id
            payload:
              type: object
              required: [invoice_id]
              properties:
                invoice_id: {type: string, format: uuid}
                total: {$ref: "#/$defs/Money"}
      invoices-dead: {}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(CatalogueInvalid) as caught:
        generate_files_from_text(text)
    return [str(error) for error in caught.value.errors]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the base catalogue"
    return text.replace(old, new)


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), 1) if "#<" in line]
    assert len(lines) == 1, "mark exactly one line with #<"
    return lines[0]


def assert_single_error(text: str, path: str, message: str) -> None:
    expected = f"queues.yaml:{marked_line(text)}: {path}: {message}"
    assert errors_of(text) == [expected]


Q = "domains.billing.queues.invoices"
E = f"{Q}.events.invoice-created"
P = f"{E}.payload"


def test_base_catalogue_is_valid() -> None:
    files = generate_files_from_text(BASE)
    assert "billing/handlers.py" in files


# -- shape: unknown keys, missing keys, types -------------------------------------------------

CASES = [
    pytest.param(
        "        retry: {limit: 5}\n",
        "        retry: {limit: 5}\n        retires: 3 #<\n",
        f"{Q}.retires",
        'unknown key "retires" (did you mean "retry"?)',
        id="unknown-queue-key",
    ),
    pytest.param(
        "            entity_id: invoice_id\n",
        "            entity_id: invoice_id\n            entityid: x #<\n",
        f"{E}.entityid",
        'unknown key "entityid" (did you mean "entity_id"?)',
        id="unknown-event-key-suggests",
    ),
    pytest.param(
        "  retry: {limit: 3, delay: 5s}\n",
        "  retry: {limit: 3, delay: 5s, backof: fixed} #<\n",
        "defaults.retry.backof",
        'unknown key "backof" (did you mean "backoff"?)',
        id="unknown-retry-key",
    ),
    pytest.param(
        "version: 1\n",
        "version: 2 #<\n",
        "version",
        "unsupported catalogue version; expected 1",
        id="version",
    ),
    pytest.param(
        "          invoice-created:\n            entity_id: invoice_id\n            payload:\n"
        "              type: object\n              required: [invoice_id]\n"
        "              properties:\n"
        "                invoice_id: {type: string, format: uuid}\n"
        '                total: {$ref: "#/$defs/Money"}\n',
        "          invoice-created: {description: no payload} #<\n",
        E + ".payload",
        'missing required key "payload"',
        id="missing-payload",
    ),
    pytest.param(
        "        retry: {limit: 5}\n",
        "        retry: {limit: 500} #<\n",
        f"{Q}.retry.limit",
        "input should be less than or equal to 100",
        id="absurd-retry-limit",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "message"), CASES)
def test_shape_rules(old: str, new: str, path: str, message: str) -> None:
    assert_single_error(edit(old, new), path, message)


# -- durations ----------------------------------------------------------------------------------

HINT = "durations are written like 500ms, 30s, 15m, 2h or 7d"
DURATIONS = [
    pytest.param("30 seconds", f'invalid duration "30 seconds": {HINT}', id="words"),
    pytest.param("-5s", 'negative duration "-5s"', id="negative"),
    pytest.param("30", f'invalid duration "30": {HINT}', id="bare-number"),
    pytest.param("5w", f'invalid duration "5w": {HINT}', id="unknown-unit"),
]


@pytest.mark.parametrize(("value", "message"), DURATIONS)
def test_duration_syntax(value: str, message: str) -> None:
    text = edit("        retry: {limit: 5}\n", f"        retry: {{limit: 5, delay: {value}}} #<\n")
    assert_single_error(text, f"{Q}.retry.delay", message)


def test_absurd_duration() -> None:
    text = edit(
        "        retry: {limit: 5}\n", "        retry: {limit: 5}\n        expire_in: 30d #<\n"
    )
    assert_single_error(text, f"{Q}.expire_in", "30d is out of range: allowed 1s to 1d")


def test_zero_expiry_is_refused() -> None:
    text = edit(
        "        retry: {limit: 5}\n", "        retry: {limit: 5}\n        expire_in: 0s #<\n"
    )
    assert_single_error(text, f"{Q}.expire_in", "0ms is out of range: allowed 1s to 1d")


def test_max_delay_shorter_than_delay() -> None:
    text = edit("        retry: {limit: 5}\n", "        retry: {limit: 5, max_delay: 2s} #<\n")
    assert_single_error(text, f"{Q}.retry", "max_delay (2s) is shorter than delay (5s)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500ms", 0.5), ("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800)],
)
def test_duration_units(text: str, expected: float) -> None:
    value = parse_duration(text)
    assert value.total_seconds() == expected
    assert format_duration(value) == text


# -- YAML ---------------------------------------------------------------------------------------


def test_duplicate_yaml_key() -> None:
    text = edit(
        "        retry: {limit: 5}\n", "        retry: {limit: 5}\n        retry: {limit: 6} #<\n"
    )
    [error] = errors_of(text)
    assert error.startswith(f"queues.yaml:{marked_line(text)}: (yaml): invalid YAML: duplicate key")


def test_yaml_syntax_error() -> None:
    text = edit(
        "        retry: {limit: 5}\n", "        retry: {limit: 5\n        expire_in: 1m #<\n"
    )
    [error] = errors_of(text)
    assert error.startswith(f"queues.yaml:{marked_line(text)}: (yaml): invalid YAML:")


def test_catalogue_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == [
        "queues.yaml:1: (top level): the catalogue must be a mapping"
    ]


# -- names --------------------------------------------------------------------------------------

LETTERS = (
    'use lowercase letters and digits, starting with a letter, words joined by single "-" or "_"'
)


def test_bad_domain_name() -> None:
    text = edit("  billing:\n", "  Billing: #<\n")
    assert_single_error(text, "domains.Billing", f'invalid domain name "Billing": {LETTERS}')


@pytest.mark.parametrize(
    "name",
    ['x"; DROP TABLE job;--', "a b", "tab\\there", "drop;table", "semi--colon", "émoji", "a.b"],
)
def test_queue_names_that_could_inject_are_refused(name: str) -> None:
    quoted = '"' + name.replace('"', '\\"') + '"'
    text = edit("      invoices-dead: {}\n", f"      {quoted}: {{}} #<\n")
    text = text.replace("dead_letter: invoices-dead", f"dead_letter: {quoted}")
    errors = errors_of(text)
    line = marked_line(text)
    assert any(
        e.startswith(f"queues.yaml:{line}: domains.billing.queues.") and "invalid queue name" in e
        for e in errors
    ), errors


def test_event_name_too_long() -> None:
    name = "e" * 41
    text = edit("          invoice-created:\n", f"          {name}: #<\n")
    path = f"{Q}.events.{name}"
    assert_single_error(text, path, f'event name "{name}" is 41 characters long; the limit is 40')


def test_database_queue_name_too_long() -> None:
    domain = "d" * 30
    queue = "q" * 40
    text = edit("  billing:\n", f"  {domain}:\n")
    text = edit(
        "      invoices-dead: {}\n", f"      invoices-dead: {{}}\n      {queue}: {{}} #<\n", text
    )
    assert_single_error(
        text,
        f"domains.{domain}.queues.{queue}",
        f'queue name "{domain}.{queue}" is 71 characters long; the limit is 63 '
        "(domain and queue together)",
    )


def test_domain_named_like_a_python_keyword() -> None:
    text = edit("  billing:\n", "  class: #<\n")
    assert_single_error(text, "domains.class", 'domain name "class" is reserved in Python')


def test_bad_defs_name() -> None:
    text = edit("      Money:\n", "      money: #<\n").replace("#/$defs/Money", "#/$defs/money")
    errors = errors_of(text)
    assert errors[0] == (
        f"queues.yaml:{marked_line(text)}: domains.billing.$defs.money: invalid $defs name "
        '"money": use PascalCase ASCII letters and digits, starting with an uppercase letter'
    )


@pytest.mark.parametrize(
    "name", ["Field", "BaseModel", "Exception", "None", "UUID", "Boss", "Payload"]
)
def test_defs_name_reserved(name: str) -> None:
    text = edit("      Money:\n", f"      {name}: #<\n").replace("#/$defs/Money", f"#/$defs/{name}")
    assert_single_error(
        text,
        f"domains.billing.$defs.{name}",
        f'$defs name "{name}" is reserved in Python or in the generated code',
    )


def test_duplicate_event_within_a_domain() -> None:
    text = edit(
        "      invoices-dead: {}\n",
        "      invoices-dead: {}\n      reminders:\n        events:\n"
        "          invoice-created: #<\n            payload: {type: object}\n",
    )
    assert_single_error(
        text,
        "domains.billing.queues.reminders.events.invoice-created",
        'duplicate event "invoice-created" in domain "billing": already declared in '
        'queue "invoices" (line 17)',
    )


def test_events_mapping_to_one_class() -> None:
    text = edit(
        "      invoices-dead: {}\n",
        "      invoices-dead: {}\n      reminders:\n        events:\n"
        "          invoice_created: #<\n            payload: {type: object}\n",
    )
    errors = errors_of(text)
    line = marked_line(text)
    assert errors[0] == (
        f"queues.yaml:{line}: domains.billing.queues.reminders.events.invoice_created: generated "
        'name class "InvoiceCreated" of event "invoice_created" collides with event '
        '"invoice-created" (line 17)'
    )
    assert len(errors) == 5  # the class and the four enqueue functions


def test_event_class_colliding_with_a_defs_class() -> None:
    text = edit("          invoice-created:\n", "          money: #<\n")
    errors = errors_of(text)
    assert errors[0] == (
        f'queues.yaml:{marked_line(text)}: {Q}.events.money: generated name class "Money" of '
        'event "money" collides with $defs "Money" (line 7)'
    )


def test_event_class_that_is_a_python_keyword() -> None:
    text = edit("          invoice-created:\n", "          none: #<\n")
    assert_single_error(
        text, f"{Q}.events.none", 'event "none" would generate class "None", a reserved name'
    )


def test_event_class_that_is_the_payload_base_class() -> None:
    text = edit("          invoice-created:\n", "          payload: #<\n")
    assert_single_error(
        text,
        f"{Q}.events.payload",
        'event "payload" would generate class "Payload", a reserved name',
    )


def test_batch_function_name_collision() -> None:
    text = edit(
        "      invoices-dead: {}\n",
        "      invoices-dead: {}\n      reminders:\n        events:\n"
        "          invoice-created-many: #<\n            payload: {type: object}\n",
    )
    line = marked_line(text)
    path = "domains.billing.queues.reminders.events.invoice-created-many"
    assert errors_of(text) == [
        f'queues.yaml:{line}: {path}: generated name function "{name}" of event '
        '"invoice-created-many" collides with event "invoice-created" (line 17)'
        for name in ("enqueue_invoice_created_many", "enqueue_invoice_created_many_sync")
    ]


def test_a_queue_named_like_another_queues_sync_protocol() -> None:
    # queue "invoices-sync" would generate InvoicesSyncHandlers, the sync form of "invoices"
    text = edit(
        "      invoices-dead: {}\n",
        "      invoices-dead: {}\n      invoices-sync: #<\n        events:\n"
        "          sync-asked:\n            payload: {type: object}\n",
    )
    assert_single_error(
        text,
        "domains.billing.queues.invoices-sync",
        'generated name "InvoicesSyncHandlers" of queue "invoices-sync" collides with queue '
        '"invoices" (line 13)',
    )


def test_queues_mapping_to_one_name() -> None:
    text = edit(
        "      invoices-dead: {}\n", "      invoices-dead: {}\n      invoices_dead: {} #<\n"
    )
    assert_single_error(
        text,
        "domains.billing.queues.invoices_dead",
        'generated name "INVOICES_DEAD" of queue "invoices_dead" collides with queue '
        '"invoices-dead" (line 25)',
    )


def test_domains_mapping_to_one_package() -> None:
    text = BASE + "  billing_x: {queues: {a: {}}}\n  billing-x: {queues: {b: {}}} #<\n"
    assert_single_error(
        text,
        "domains.billing-x",
        'generated name package "billing_x" of domain "billing-x" collides with domain '
        '"billing_x" (line 26)',
    )


def test_inline_model_colliding_with_a_generated_name() -> None:
    text = edit(
        '                total: {$ref: "#/$defs/Money"}\n',
        '                total: {$ref: "#/$defs/Money"}\n'
        "                handlers: {type: object, properties: {a: {type: string}}}\n",
    )
    text = edit("          invoice-created:\n", "          invoices:\n", text)
    text = edit("  billing:\n", "  billing: #<\n", text)
    assert_single_error(
        text,
        "domains.billing",
        'generated name "InvoicesHandlers" is produced twice in domain "billing" (an inline '
        "object's model collides with another generated name; declare the object in $defs "
        "under another name)",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("first-name", 'invalid property name "first-name": use ASCII letters, digits and "_", '
                       "starting with a letter (it becomes a Python attribute)"),
        ("_private", 'invalid property name "_private": use ASCII letters, digits and "_", '
                     "starting with a letter (it becomes a Python attribute)"),
        ("class", 'property name "class" is a Python keyword'),
        ("model_dump", 'property name "model_dump" shadows an attribute of pydantic\'s BaseModel'),
        ("json", 'property name "json" shadows an attribute of pydantic\'s BaseModel'),
        ("l", 'property name "l" is ambiguous (l, O and I read as 1 and 0)'),
    ],
)  # fmt: skip
def test_bad_property_names(name: str, message: str) -> None:
    text = edit(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid}\n"
        f"                {name}: {{type: string}} #<\n",
    )
    assert_single_error(text, f"{P}.properties.{name}", message)


# -- JSON Schema --------------------------------------------------------------------------------

SCHEMA_CASES = [
    pytest.param(
        '                total: {$ref: "#/$defs/Money"}\n',
        '                total: {$ref: "#/$defs/Mony"} #<\n',
        f"{P}.properties.total.$ref",
        'unresolvable $ref "#/$defs/Mony": no "Mony" in this domain\'s $defs '
        '(did you mean "#/$defs/Money"?)',
        id="unresolvable-ref",
    ),
    pytest.param(
        '                total: {$ref: "#/$defs/Money"}\n',
        '                total: {$ref: "https://example.com/money.json"} #<\n',
        f"{P}.properties.total.$ref",
        'unresolvable $ref "https://example.com/money.json": only references of the form '
        '"#/$defs/Name" to this domain\'s $defs are allowed',
        id="remote-ref",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: phone} #<\n",
        f"{P}.properties.invoice_id.format",
        'unsupported format "phone": it would not be validated at run time; supported: date, '
        "date-time, duration, email, hostname, ipv4, ipv6, time, uri, uuid",
        id="unknown-format",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: integer, format: uuid} #<\n",
        f"{P}.properties.invoice_id.format",
        'format "uuid" needs "type: string"',
        id="format-on-integer",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid, maxLenght: 36} #<\n",
        f"{P}.properties.invoice_id.maxLenght",
        'unknown JSON Schema keyword "maxLenght" (did you mean "maxLength"?)',
        id="unknown-keyword",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid}\n"
        "                tags: {type: array, items: {type: string}, uniqueItems: true} #<\n",
        f"{P}.properties.tags.uniqueItems",
        'unsupported JSON Schema keyword "uniqueItems": the generated models do not enforce it',
        id="unenforced-keyword",
    ),
    pytest.param(
        "              required: [invoice_id]\n",
        "              required: [invoice_id, totl] #<\n",
        f"{P}.required[1]",
        'required property "totl" is not in properties (did you mean "total"?)',
        id="required-not-in-properties",
    ),
    pytest.param(
        "              type: object\n              required: [invoice_id]\n",
        "              type: array #<\n              required: [invoice_id]\n",
        f"{P}.type",
        'a payload must have "type: object"',
        id="payload-not-object",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid}\n"
        '                code: {type: string, pattern: "(?=x)y"} #<\n',
        f"{P}.properties.code.pattern",
        "pattern is not a valid regular expression for pydantic (Rust regex): look-around, "
        "including look-ahead and look-behind, is not supported",
        id="pattern-needs-lookaround",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid}\n"
        "                level: {type: integer, enum: [1, 2]} #<\n",
        f"{P}.properties.level.enum",
        "enum values must be non-empty strings (they become Literal values)",
        id="enum-not-strings",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid}\n"
        "                name: {type: strng} #<\n",
        f"{P}.properties.name.type",
        'unknown type "strng" (did you mean "string"?)',
        id="unknown-type",
    ),
    pytest.param(
        "                invoice_id: {type: string, format: uuid}\n",
        "                invoice_id: {type: string, format: uuid}\n"
        "                name: {type: string, minLength: 5, maxLength: 2} #<\n",
        f"{P}.properties.name.minLength",
        "minLength (5) is greater than maxLength (2)",
        id="min-greater-than-max",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "message"), SCHEMA_CASES)
def test_schema_rules(old: str, new: str, path: str, message: str) -> None:
    assert_single_error(edit(old, new), path, message)


# -- dead letters -------------------------------------------------------------------------------


def test_dead_letter_queue_missing_with_suggestion() -> None:
    text = edit("        dead_letter: invoices-dead\n", "        dead_letter: invoice-dead #<\n")
    assert_single_error(
        text,
        f"{Q}.dead_letter",
        'no queue "invoice-dead" in domain "billing" (did you mean "invoices-dead"?)',
    )


def test_dead_letter_domain_missing() -> None:
    text = edit(
        "        dead_letter: invoices-dead\n", "        dead_letter: biling.invoices-dead #<\n"
    )
    assert_single_error(
        text,
        f"{Q}.dead_letter",
        'no domain "biling" for dead_letter "biling.invoices-dead" (did you mean "billing"?)',
    )


def test_dead_letter_to_itself() -> None:
    text = edit(
        "        dead_letter: invoices-dead\n", "        dead_letter: billing.invoices #<\n"
    )
    assert_single_error(text, f"{Q}.dead_letter", "a queue cannot be its own dead-letter queue")


def test_dead_letter_cycle() -> None:
    text = edit("      invoices-dead: {}\n", "      invoices-dead: {dead_letter: invoices}\n")
    text = edit(
        "        dead_letter: invoices-dead\n", "        dead_letter: invoices-dead #<\n", text
    )
    assert_single_error(
        text,
        f"{Q}.dead_letter",
        "dead-letter cycle: billing.invoices -> billing.invoices-dead -> billing.invoices",
    )


def test_cross_domain_dead_letter_is_fine() -> None:
    text = BASE + "  ops:\n    queues:\n      audit: {dead_letter: billing.invoices-dead}\n"
    assert "ops/queues.py" in generate_files_from_text(text)


# -- entity_id ----------------------------------------------------------------------------------


def test_entity_id_names_a_missing_field() -> None:
    text = edit("            entity_id: invoice_id\n", "            entity_id: invoice_uuid #<\n")
    assert_single_error(
        text,
        f"{E}.entity_id",
        'entity_id "invoice_uuid": the payload has no field "invoice_uuid" '
        '(did you mean "invoice_id"?)',
    )


def test_entity_id_names_an_optional_field() -> None:
    text = edit("              required: [invoice_id]\n", "              required: [total]\n")
    text = edit(
        "            entity_id: invoice_id\n", "            entity_id: invoice_id #<\n", text
    )
    assert_single_error(
        text,
        f"{E}.entity_id",
        'entity_id "invoice_id": the field must be required, so that every job logs an id',
    )


def test_entity_id_names_an_object() -> None:
    text = edit(
        "              required: [invoice_id]\n", "              required: [invoice_id, total]\n"
    )
    text = edit("            entity_id: invoice_id\n", "            entity_id: total #<\n", text)
    assert_single_error(
        text,
        f"{E}.entity_id",
        'entity_id "total": the field must be a string or an integer, not object',
    )


# -- examples -----------------------------------------------------------------------------------


def test_example_must_match_the_payload() -> None:
    text = edit(
        '                total: {$ref: "#/$defs/Money"}\n',
        '                total: {$ref: "#/$defs/Money"}\n'
        "            example:\n"
        "              invoice_id: 7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f\n"
        "              total:\n"
        "                amount_cents: -1 #<\n",
    )
    assert_single_error(
        text,
        f"{E}.example.total.amount_cents",
        "example does not match the payload schema: total.amount_cents: "
        "Input should be greater than or equal to 0",
    )


# -- several errors at once ---------------------------------------------------------------------


def test_all_errors_are_reported_together_in_line_order() -> None:
    text = edit("        dead_letter: invoices-dead\n", "        dead_letter: nowhere\n")
    text = edit(
        "            entity_id: invoice_id\n", "            entity_id: invoice_uuid\n", text
    )
    text = edit("                invoice_id: {type: string, format: uuid}\n",
                "                invoice_id: {type: string, format: guid}\n", text)  # fmt: skip
    text = edit("#/$defs/Money", "#/$defs/Mony", text)
    errors = errors_of(text)
    assert [int(e.split(":")[1]) for e in errors] == [15, 18, 23, 24]
    assert "nowhere" in errors[0] and "invoice_uuid" in errors[1]
    assert '"guid"' in errors[2] and "Mony" in errors[3]


def test_shape_errors_are_reported_together() -> None:
    text = edit("        retry: {limit: 5}\n", "        retry: {limit: 500, delay: soon}\n")
    text = edit("version: 1\n", "version: 1\nextra: true\n", text)
    errors = errors_of(text)
    assert [int(e.split(":")[1]) for e in errors] == [2, 15, 15]


def test_cross_checks_run_beside_shape_errors() -> None:
    """A wrong shape somewhere does not hide the cross-check errors of the well-formed parts."""
    text = edit("version: 1\n", "version: 1\nextra: 1\n")
    text = edit(
        "        retry: {limit: 5}\n", "        retry: {limit: 5}\n        retires: 3\n", text
    )
    text = edit("        dead_letter: invoices-dead\n", "        dead_letter: nowhere\n", text)
    text = edit(
        "            entity_id: invoice_id\n", "            entity_id: invoice_uuid\n", text
    )
    text = edit("#/$defs/Money", "#/$defs/Mony", text)
    text = edit("      invoices-dead: {}\n", "      invoices-dead: {}\n      Bad: []\n", text)
    assert errors_of(text) == [
        'queues.yaml:2: extra: unknown key "extra"',
        f'queues.yaml:16: {Q}.retires: unknown key "retires" (did you mean "retry"?)',
        f'queues.yaml:17: {Q}.dead_letter: no queue "nowhere" in domain "billing"',
        f'queues.yaml:20: {E}.entity_id: entity_id "invoice_uuid": the payload has no field '
        '"invoice_uuid" (did you mean "invoice_id"?)',
        f'queues.yaml:26: {P}.properties.total.$ref: unresolvable $ref "#/$defs/Mony": no "Mony" '
        'in this domain\'s $defs (did you mean "#/$defs/Money"?)',
        "queues.yaml:28: domains.billing.queues.Bad: expected a mapping",
        f'queues.yaml:28: domains.billing.queues.Bad: invalid queue name "Bad": {LETTERS}',
    ]


MONEY = (
    "      Money:\n        type: object\n        required: [amount_cents]\n"
    "        properties:\n          amount_cents: {type: integer, minimum: 0}\n"
)
BROKEN_PARTS = [
    pytest.param(
        BASE + "  ops:\n    queues: [audit] #<\n  crm:\n    queues:\n"
        "      q: {dead_letter: ops.audit}\n",
        "domains.ops.queues",
        "expected a mapping",
        id="queues-unknown-no-dead-letter-or-no-queue-error",
    ),
    pytest.param(
        BASE + "  ops: 3 #<\n  crm:\n    queues:\n      q: {dead_letter: ops.audit}\n",
        "domains.ops",
        "expected a mapping",
        id="domain-unknown-no-dead-letter-error",
    ),
    pytest.param(
        edit(
            "  retry: {limit: 3, delay: 5s}\n",
            "  retry: {limit: 3, delay: soon} #<\n",
            edit("        retry: {limit: 5}\n", "        retry: {limit: 5, max_delay: 2s}\n"),
        ),
        "defaults.retry.delay",
        f'invalid duration "soon": {HINT}',
        id="defaults-unknown-no-retry-check",
    ),
    pytest.param(
        edit(
            MONEY,
            "      Money: 3 #<\n",
            edit(
                "              required: [invoice_id]\n",
                "              required: [invoice_id, total]\n",
                edit("            entity_id: invoice_id\n", "            entity_id: total\n"),
            ),
        ),
        "domains.billing.$defs.Money",
        "expected a mapping",
        id="def-unknown-ref-resolves-entity-type-unjudged",
    ),
    pytest.param(
        edit(MONEY, "", edit("    $defs:\n", "    $defs: [Money] #<\n")),
        "domains.billing.$defs",
        "expected a mapping",
        id="defs-unknown-refs-unjudged",
    ),
    pytest.param(
        edit(
            "            payload:\n              type: object\n",
            "            payload: object #<\n            schema:\n              type: object\n",
        ).replace("            schema:\n", "            description: x\n            x:\n"),
        f"{E}.payload",
        "expected a mapping",
        id="payload-unknown-no-payload-or-entity-check",
    ),
]


@pytest.mark.parametrize(("text", "path", "message"), BROKEN_PARTS)
def test_no_cross_check_verdict_rests_on_a_broken_part(text: str, path: str, message: str) -> None:
    errors = errors_of(text)
    expected = f"queues.yaml:{marked_line(text)}: {path}: {message}"
    assert expected in errors
    assert [e for e in errors if e != expected and "unknown key" not in e] == []
