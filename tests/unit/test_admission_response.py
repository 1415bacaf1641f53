"""What the apiserver gets as warnings (fit_warnings): one per message, within its limits."""

from __future__ import annotations

from webhook.admission.response import WARNING_LONGEST, WARNINGS_TOTAL, fit_warnings


def test_each_message_is_one_warning_escaped_and_said_once() -> None:
    long_line = "x" * 300
    assert fit_warnings([long_line, "a\nb\tc", long_line]) == [long_line, "a\\x0ab\\x09c"]


def test_a_message_too_long_for_the_apiserver_is_cut_where_it_says_so() -> None:
    (warning,) = fit_warnings(["y" * 5000])
    assert len(warning) <= WARNING_LONGEST
    assert warning.startswith("y" * 900)
    assert warning.endswith(f"... ({5000 - WARNING_LONGEST + 40} characters cut)")


def test_warnings_past_the_total_are_counted_not_sent() -> None:
    messages = [f"{i:03d}" + "z" * 496 for i in range(10)]
    fitted = fit_warnings(messages)
    assert fitted[:-1] == messages[:WARNINGS_TOTAL // 500]
    assert fitted[-1] == f"... {10 - WARNINGS_TOTAL // 500} more warning(s) left out"
    assert sum(map(len, fitted[:-1])) <= WARNINGS_TOTAL
