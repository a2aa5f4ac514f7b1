from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance._core.pii import (
    DEFAULT_MAX_CHARS,
    FieldReport,
    PiiAction,
    PiiFinding,
    PiiKind,
    PiiPolicy,
    apply_policy,
    check_fields,
    find_personal_data,
)
from provenance.errors import KeyConfigError, PersonalDataError, RecordError

KEY = b"k" * 32


def found(text: str, *, names: tuple[str, ...] = ()) -> list[tuple[PiiKind, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_personal_data(text, names=names)]


def kinds(text: str) -> set[PiiKind]:
    return {f.kind for f in find_personal_data(text)}


# --- e-mail -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "jane@example.com",
        "Jane.Doe@Example.COM",
        "jane.doe+shop@mail.example.co.uk",
        "j_d-1%x@sub-domain.example.org",
        "müller@beispiel.de",
    ],
)
def test_email_is_found_exactly(address: str) -> None:
    assert found(f"contact: {address}, please") == [(PiiKind.EMAIL, address)]


@pytest.mark.parametrize(
    "text",
    ["user@localhost", "a@b.c", "@example.com", "x@.com", "jane at example dot com", "a@b"],
)
def test_not_an_email(text: str) -> None:
    assert PiiKind.EMAIL not in kinds(text)


def test_email_at_end_of_sentence_excludes_the_full_stop() -> None:
    assert found("write to jane@example.com.") == [(PiiKind.EMAIL, "jane@example.com")]


# --- phone --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "+49 30 1234567",
        "+4930123456",
        "+1 (555) 123-4567",
        "+33 6 12 34 56 78",
        "+44 20 7946 0958",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "1-800-555-1234",
        "030 1234567",
        "030/1234567",
        "0151-23456789",
        "06 12 34 56 78",
        "07700 900123",
        "0049 30 123456",
        "612 34 56 78",
        "555-1234",
    ],
)
def test_phone_formats_are_found(number: str) -> None:
    assert found(f"call {number} today") == [(PiiKind.PHONE, number)]


@pytest.mark.parametrize(
    "text",
    [
        "seed 1234567890123",  # a bare digit run: seeds, SKUs, order numbers
        "order 20240115103000",
        "shot on 2024-01-15 at 12:30",
        "on 15.01.2024",
        "on 01/02/2024",
        "1 234 567 units",
        "123.456.789",
        "sizes 1024 768 512",
        "0.5 0.25 0.125",
        "1 2 3 4 5 6 7 8 9",
        "prices 199.99 299.99",
        "+12345",  # too short
        "+1 234 567 890 123 456 7",  # more than 15 digits
    ],
)
def test_not_a_phone(text: str) -> None:
    assert PiiKind.PHONE not in kinds(text)


# --- payment cards ------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555 5555 5555 4444",
        "378282246310005",
        "6011111111111117",
        "4222222222222",  # 13 digits
    ],
)
def test_card_is_found(card: str) -> None:
    assert found(f"card {card} exp") == [(PiiKind.PAYMENT_CARD, card)]


@pytest.mark.parametrize(
    "card",
    ["4111111111111112", "4111 1111 1111 1121", "5555 5555 5555 4445", "378282246310006"],
)
def test_card_with_one_digit_changed_fails_luhn(card: str) -> None:
    assert PiiKind.PAYMENT_CARD not in kinds(f"card {card}")


def test_card_followed_by_security_code_is_found() -> None:
    assert found("4111 1111 1111 1111 123") == [(PiiKind.PAYMENT_CARD, "4111 1111 1111 1111")]


def test_card_inside_a_longer_digit_run_is_not_a_card() -> None:
    assert PiiKind.PAYMENT_CARD not in kinds("41111111111111110")
    assert PiiKind.PAYMENT_CARD not in kinds("x4111111111111111")


def test_luhn_valid_number_without_card_prefix_is_not_a_card() -> None:
    # 1 and 7..9 are not the major-industry digits of payment cards.
    assert PiiKind.PAYMENT_CARD not in kinds("seed 1234567890128")


# --- IBAN ---------------------------------------------------------------------------

VALID_IBANS = {
    "DE": "DE89370400440532013000",
    "FR": "FR1420041010050500013M02606",
    "GB": "GB29NWBK60161331926819",
    "NL": "NL91ABNA0417164300",
    "CH": "CH9300762011623852957",
}


@pytest.mark.parametrize("iban", VALID_IBANS.values(), ids=VALID_IBANS.keys())
def test_iban_is_found_compact_and_grouped(iban: str) -> None:
    grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    assert found(f"pay to {iban} now") == [(PiiKind.IBAN, iban)]
    assert found(f"pay to {grouped}.") == [(PiiKind.IBAN, grouped)]
    assert found(iban.lower()) == [(PiiKind.IBAN, iban.lower())]


@pytest.mark.parametrize("iban", VALID_IBANS.values(), ids=VALID_IBANS.keys())
def test_iban_with_bad_check_digits_is_not_found(iban: str) -> None:
    check = int(iban[2:4])
    bad = f"{iban[:2]}{(check % 97) + 1:02d}{iban[4:]}"
    assert PiiKind.IBAN not in kinds(bad)


def test_iban_with_wrong_length_or_unknown_country_is_not_found() -> None:
    assert PiiKind.IBAN not in kinds("DE8937040044053201300")  # one character short
    assert PiiKind.IBAN not in kinds("DE893704004405320130001")  # glued to a digit
    assert PiiKind.IBAN not in kinds("QQ89370400440532013000")


# --- IP addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.1",
        "10.0.0.1",
        "255.255.255.255",
        "2001:db8::8a2e:370:7334",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "fe80::1",
        "::1",
        "::ffff:192.0.2.1",
    ],
)
def test_ip_address_is_found(address: str) -> None:
    assert found(f"from {address}.") == [(PiiKind.IP_ADDRESS, address)]


@pytest.mark.parametrize(
    "text", ["999.1.1.1", "1.2.3", "1.2.3.4.5", "12:30:45", "std::vector", "2001:db8:::1"]
)
def test_not_an_ip_address(text: str) -> None:
    assert PiiKind.IP_ADDRESS not in kinds(text)


def test_bracketed_ipv6_with_port() -> None:
    assert found("[2001:db8::1]:8080") == [(PiiKind.IP_ADDRESS, "2001:db8::1")]


# --- names --------------------------------------------------------------------------


def test_names_are_whole_word_and_case_insensitive() -> None:
    text = "Alice met ALICE and Malice; jane   doe and Alicea"
    assert found(text, names=("alice", "Jane Doe")) == [
        (PiiKind.NAME, "Alice"),
        (PiiKind.NAME, "ALICE"),
        (PiiKind.NAME, "jane   doe"),
    ]


def test_customer_id_with_punctuation_is_matched_literally() -> None:
    text = "order for CUST-0042 (not CUST-00421 or CUSTX0042)"
    assert found(text, names=("cust-0042",)) == [(PiiKind.NAME, "CUST-0042")]


def test_no_names_no_name_findings() -> None:
    assert kinds("Alice") == set()
    assert found("Alice", names=("", "  ")) == []


def test_a_single_string_is_one_name_not_its_letters() -> None:
    assert found("a b c Bob", names="Bob") == [(PiiKind.NAME, "Bob")]  # type: ignore[arg-type]


# --- findings -----------------------------------------------------------------------


def test_findings_are_sorted_and_hold_no_text() -> None:
    text = "mail jane@example.com or call +49 30 1234567, IBAN DE89370400440532013000"
    findings = find_personal_data(text)
    assert [f.kind for f in findings] == [PiiKind.EMAIL, PiiKind.PHONE, PiiKind.IBAN]
    assert not hasattr(findings[0], "__dict__")
    for finding in findings:
        rendered = repr(finding)
        assert text[finding.start : finding.end] not in rendered


def test_overlapping_findings_are_merged_and_named_after_the_longest() -> None:
    text = "jane.doe@example.com"
    assert find_personal_data(text, names=("jane",)) == (PiiFinding(PiiKind.EMAIL, 0, len(text)),)


def test_ip_wins_a_tie_with_phone() -> None:
    assert found("192.168.10.20") == [(PiiKind.IP_ADDRESS, "192.168.10.20")]


def test_text_over_the_limit_is_refused_without_echoing_it() -> None:
    text = "jane@example.com " * (DEFAULT_MAX_CHARS // 10)
    with pytest.raises(RecordError) as info:
        find_personal_data(text)
    assert "jane" not in str(info.value)
    assert find_personal_data("jane@example.com", max_chars=16)
    with pytest.raises(RecordError):
        find_personal_data("jane@example.com", max_chars=15)


@pytest.mark.parametrize(
    "text",
    [
        "a" * DEFAULT_MAX_CHARS,
        "1 " * (DEFAULT_MAX_CHARS // 2),
        "1." * (DEFAULT_MAX_CHARS // 2),
        "a@" * (DEFAULT_MAX_CHARS // 2),
        "a." * (DEFAULT_MAX_CHARS // 2),
        ":" * DEFAULT_MAX_CHARS,
        "DE89 " * (DEFAULT_MAX_CHARS // 5),
        "(1)" * (DEFAULT_MAX_CHARS // 3),
        ("x" * 63 + "@" + "a." * 8 + "1 ") * (DEFAULT_MAX_CHARS // 82),
    ],
    ids=["letters", "digits", "dots", "ats", "labels", "colons", "iban", "parens", "email"],
)
def test_adversarial_text_scans_in_bounded_time(text: str) -> None:
    # Catastrophic backtracking would take minutes here; linear scans take ~0.1 s.
    start = time.perf_counter()
    find_personal_data(text, names=("alice",))
    assert time.perf_counter() - start < 2.0


# --- policy -------------------------------------------------------------------------

PERSONAL_TEXT = "mail jane.doe@example.com or +49 30 1234567, card 4111 1111 1111 1111"
PERSONAL = ("jane.doe@example.com", "+49 30 1234567", "4111 1111 1111 1111")


def test_redact_replaces_every_finding() -> None:
    out = apply_policy("prompt", PERSONAL_TEXT, PiiPolicy.redact_all())
    assert out == "mail [redacted:email] or [redacted:phone], card [redacted:payment_card]"
    assert not any(item in out for item in PERSONAL)


def test_hash_replaces_with_keyed_hash_tokens() -> None:
    out = apply_policy("prompt", "mail Jane.Doe@Example.com", PiiPolicy.hash_all(KEY))
    digest = hmac.new(KEY, b"email\x00jane.doe@example.com", hashlib.sha256).hexdigest()
    assert out == f"mail [email:hmac-sha256:{digest[:16]}]"


def test_hash_is_stable_across_formatting_and_depends_on_the_key() -> None:
    policy = PiiPolicy.hash_all(KEY)
    a = apply_policy("f", "4111 1111 1111 1111", policy)
    b = apply_policy("f", "4111-1111-1111-1111", policy)
    c = apply_policy("f", "4111 1111 1111 1111", PiiPolicy.hash_all(b"other key, 16+ bytes"))
    assert a == b
    assert a != c
    assert a.startswith("[payment_card:hmac-sha256:")
    assert "4111" not in a


def test_refuse_names_field_and_kinds_but_never_the_data() -> None:
    with pytest.raises(PersonalDataError) as info:
        apply_policy("prompt", PERSONAL_TEXT, PiiPolicy())
    message = str(info.value)
    assert message == (
        "field 'prompt' contains personal data (email, phone, payment_card); refusing to embed it"
    )
    assert not any(item in message for item in PERSONAL)
    assert isinstance(info.value, RecordError)


def test_redaction_rescans_what_a_replaced_neighbour_was_hiding() -> None:
    # Glued to the e-mail address, the phone number is not a finding on its own; once
    # the address is a token it is, and it must not be embedded either.
    assert found("x@y.de+4930123456") == [(PiiKind.EMAIL, "x@y.de")]
    out = apply_policy("prompt", "x@y.de+4930123456", PiiPolicy.redact_all())
    assert out == "[redacted:email][redacted:phone]"


def test_a_name_matching_the_token_text_cannot_loop_for_ever() -> None:
    with pytest.raises(RecordError, match="passes") as info:
        apply_policy("prompt", "Jane Redacted", PiiPolicy.redact_all(names=("redacted",)))
    assert "Jane" not in str(info.value)


def test_allow_returns_the_text_unchanged() -> None:
    assert apply_policy("prompt", PERSONAL_TEXT, PiiPolicy.allow_all()) == PERSONAL_TEXT


@pytest.mark.parametrize(
    "policy",
    [PiiPolicy(), PiiPolicy.redact_all(), PiiPolicy.hash_all(KEY), PiiPolicy.allow_all()],
    ids=["refuse", "redact", "hash", "allow"],
)
def test_clean_text_is_unchanged_for_every_action(policy: PiiPolicy) -> None:
    text = "a red running shoe, seed 1234567890123, 1024 x 768, 2024-01-15"
    assert apply_policy("prompt", text, policy) == text


def test_names_in_policy_are_detected() -> None:
    policy = PiiPolicy.redact_all(names=["Jane Doe"])
    assert apply_policy("prompt", "portrait of jane doe", policy) == "portrait of [redacted:name]"


def test_hash_needs_a_key() -> None:
    with pytest.raises(KeyConfigError):
        PiiPolicy(default=PiiAction.HASH)
    with pytest.raises(KeyConfigError):
        PiiPolicy(per_field={"prompt": PiiAction.HASH})
    with pytest.raises(KeyConfigError):
        PiiPolicy.hash_all(b"short")


def test_per_field_override() -> None:
    policy = PiiPolicy(per_field={"parameters.negative_prompt": PiiAction.REDACT})
    assert policy.action_for("prompt") is PiiAction.REFUSE
    assert policy.action_for("parameters.negative_prompt") is PiiAction.REDACT
    assert apply_policy("parameters.negative_prompt", "no jane@x.org", policy) == (
        "no [redacted:email]"
    )
    with pytest.raises(PersonalDataError, match="'prompt'"):
        apply_policy("prompt", "no jane@x.org", policy)


def test_policy_is_immutable_hashable_and_keeps_secrets_out_of_repr() -> None:
    overrides = {"prompt": PiiAction.REDACT}
    policy = PiiPolicy(per_field=overrides, names=("Jane Doe",), hash_key=KEY)
    overrides["prompt"] = PiiAction.ALLOW
    assert policy.action_for("prompt") is PiiAction.REDACT
    with pytest.raises(TypeError):
        policy.per_field["prompt"] = PiiAction.ALLOW  # type: ignore[index]
    assert hash(policy) == hash(
        PiiPolicy(per_field={"prompt": PiiAction.REDACT}, names=("Jane Doe",), hash_key=KEY)
    )
    assert "Jane" not in repr(policy)
    assert repr(KEY) not in repr(policy)


def test_refuse_on_over_long_text_is_a_record_error() -> None:
    with pytest.raises(RecordError):
        apply_policy("prompt", "x" * (DEFAULT_MAX_CHARS + 1), PiiPolicy.redact_all())


# --- check_fields -------------------------------------------------------------------


def test_check_fields_reports_without_raising() -> None:
    policy = PiiPolicy(per_field={"notes": PiiAction.REDACT})
    reports = check_fields(
        {
            "prompt": "mail jane@example.com or +49 30 1234567",
            "notes": "mail jane@example.com",
            "style": "studio light",
            "huge": "x" * (DEFAULT_MAX_CHARS + 1),
        },
        policy,
    )
    assert reports == (
        FieldReport("prompt", PiiAction.REFUSE, (PiiKind.EMAIL, PiiKind.PHONE), 2),
        FieldReport("notes", PiiAction.REDACT, (PiiKind.EMAIL,), 1),
        FieldReport("style", PiiAction.REFUSE),
        FieldReport("huge", PiiAction.REFUSE, too_long=True),
    )
    assert [r.refused for r in reports] == [True, False, False, True]
    assert reports[0].to_dict() == {
        "field": "prompt",
        "action": "refuse",
        "kinds": ["email", "phone"],
        "findings": 2,
        "too_long": False,
        "refused": True,
    }
    assert "jane" not in repr(reports)


# --- properties ---------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "jane@example.com",
        "+49 30 1234567",
        "(555) 123-4567",
        "4111 1111 1111 1111",
        "DE89 3704 0044 0532 0130 00",
        "192.0.2.1",
        "fe80::1",
        "Alice",
        "seed 42",
        " ",
        ".",
        "-",
        "0",
        "1",
        "@",
        ":",
        "a",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="0123456789 +-./()@:abcdefDEGBFR_", max_size=300),
    st.lists(FRAGMENTS, max_size=25).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_find_never_raises_and_findings_are_sorted_in_bounds(text: str) -> None:
    findings = find_personal_data(text, names=("Alice",))
    previous_end = 0
    for finding in findings:
        assert previous_end <= finding.start < finding.end <= len(text)
        previous_end = finding.end


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_redacted_text_holds_no_finding(text: str) -> None:
    policy = PiiPolicy.redact_all(names=("Alice",))
    out = apply_policy("prompt", text, policy)
    assert find_personal_data(out, names=("Alice",)) == ()
