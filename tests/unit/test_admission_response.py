"""What the apiserver gets as warnings (fit_warnings): one per message, within its limits."""

from __future__ import annotations

from webhook.admission.response import MUTATE_WARNINGS, VALIDATE_WARNINGS, WARNING_LONGEST, fit_warnings

SHARE = VALIDATE_WARNINGS


def test_each_message_is_one_warning_escaped_and_said_once() -> None:
    long_line = "x" * 300
    assert fit_warnings([long_line, "a\nb\tc", long_line], SHARE) == [long_line, "a\\x0ab\\x09c"]


def test_a_message_too_long_for_the_apiserver_is_cut_where_it_says_so() -> None:
    (warning,) = fit_warnings(["y" * 5000], SHARE)
    assert len(warning) <= WARNING_LONGEST
    assert warning.startswith("y" * 900)
    assert warning.endswith(f"... ({5000 - WARNING_LONGEST + 40} characters cut)")


def test_warnings_past_the_total_are_counted_not_sent() -> None:
    messages = [f"{i:03d}" + "z" * 496 for i in range(10)]
    fitted = fit_warnings(messages, SHARE)
    assert fitted[:-1] == messages[:SHARE // 500]
    assert fitted[-1] == f"... {10 - SHARE // 500} more warning(s) left out"
    assert sum(map(len, fitted[:-1])) <= SHARE


def test_both_endpoints_warnings_together_stay_under_the_apiserver_total() -> None:
    """A pod's /mutate and /validate warnings land in one recorder, which cuts every warning to 256
    characters once they pass 4096 in all: each endpoint's warnings, "left out" line included, fit
    beside the other's."""
    many = [f"{i:04d}" + "w" * 250 for i in range(100)]
    total = sum(map(len, fit_warnings(many, MUTATE_WARNINGS))) + sum(map(len, fit_warnings(many, VALIDATE_WARNINGS)))
    assert total <= 4096
