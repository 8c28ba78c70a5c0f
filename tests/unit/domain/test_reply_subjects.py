"""Reply subjects: one ``Re:`` and one case token, whatever prefixes a mailer wrote."""

from __future__ import annotations

import pytest

from casedesk.domain.channels import ChannelMessage, base_subject, reply_subject


@pytest.mark.parametrize(
    "subject",
    [
        "Invoice wrong",
        "Re: Invoice wrong",
        "RE: re: Invoice wrong",
        "AW: Invoice wrong",
        "SV: Invoice wrong",
        "VS: Invoice wrong",
        "Fwd: Invoice wrong",
        "WG: AW: Invoice wrong",
        "回复: Invoice wrong",
        "答复\uff1aInvoice wrong",  # a full-width colon
        "回复: 答复: Re: Invoice wrong [#42]",
        "Re: Invoice wrong [#42]",
    ],
)
def test_reply_prefixes_are_dropped_and_re_written_once(subject: str) -> None:
    assert base_subject(subject) == "Invoice wrong"
    assert reply_subject(subject, 42) == "Re: Invoice wrong [#42]"


def test_a_word_that_only_starts_like_a_prefix_is_kept() -> None:
    assert base_subject("Reset my password") == "Reset my password"
    assert base_subject("Swedish: hello") == "Swedish: hello"
    assert reply_subject(None, 7) == "[#7]"


@pytest.mark.parametrize("prefix", ["Re:", "AW:", "SV:", "VS:", "回复:", "答复:", "Fwd:"])
def test_the_case_token_is_found_behind_any_prefix(prefix: str) -> None:
    message = ChannelMessage(id="x", subject=f"{prefix} Invoice wrong [#1234]")
    assert message.case_number() == 1234
