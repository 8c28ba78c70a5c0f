"""What a file is, what it is called, and how it is served."""

from __future__ import annotations

import pytest

from casedesk.domain.attachments import (
    MAX_FILENAME_BYTES,
    AttachmentLimits,
    RangeNotSatisfiable,
    Refusal,
    byte_range,
    download_headers,
    sanitise_filename,
    sniff_content_type,
)

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG_HEAD, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"PK\x03\x04\x14\x00\x00\x00", "application/zip"),
        (b"  <!DOCTYPE html><html>", "text/html"),
        (b"\xef\xbb\xbf<html><body>hi", "text/html"),
        (b"<script>alert(1)</script>", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">', "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b'<?xml version="1.0"?><order/>', "application/xml"),
        (b"Dear support,\nthe printer is on fire.\n", "text/plain"),
        ("Grüße, 你好".encode(), "text/plain"),
        ("ends inside ä".encode()[:-1], "text/plain"),
        (b"\x00\x01\x02\x03binary", "application/octet-stream"),
        (b"\xff\xfe\xfa not utf-8", "application/octet-stream"),
        (b"", "text/plain"),
    ],
)
def test_the_type_is_sniffed_from_the_bytes(head: bytes, expected: str) -> None:
    assert sniff_content_type(head) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\report.txt", "report.txt"),
        ("/absolute/path/x.png", "x.png"),
        ("bad\x00name\x07\r\n.txt", "badname.txt"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),
        ("..", "attachment"),
        (".htaccess", "htaccess"),
        ("   spaced    out  .txt ", "spaced out .txt"),
        ("", "attachment"),
        (None, "attachment"),
        ("Bericht März.txt", "Bericht März.txt"),
        ("Ma\u0308rz.txt", "März.txt"),
    ],
)
def test_filenames_lose_paths_and_control_characters(name: str | None, expected: str) -> None:
    assert sanitise_filename(name) == expected


def test_a_long_filename_is_shortened_keeping_its_extension() -> None:
    name = sanitise_filename("ä" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert name.removesuffix(".pdf") == "ä" * len(name.removesuffix(".pdf"))


def test_limits_refuse_a_large_file_before_the_quota() -> None:
    limits = AttachmentLimits(max_bytes=100, quota_bytes=250)
    assert limits.refusal(100, 150) is None
    assert limits.refusal(101, 0) is Refusal.TOO_LARGE
    assert limits.refusal(100, 151) is Refusal.OVER_QUOTA
    assert AttachmentLimits(max_bytes=100, quota_bytes=0).refusal(100, 10**12) is None
    detail = limits.describe(Refusal.OVER_QUOTA, "a.bin", 100, 151)
    assert "250" in detail
    assert "151" in detail
    assert "100" in detail


@pytest.mark.parametrize(
    ("content_type", "disposition"),
    [
        ("image/png", "inline"),
        ("image/jpeg", "inline"),
        ("image/gif", "inline"),
        ("image/webp", "inline"),
        ("image/svg+xml", "attachment"),
        ("text/html", "attachment"),
        ("application/javascript", "attachment"),
        ("application/pdf", "attachment"),
        ("text/plain", "attachment"),
    ],
)
def test_only_safe_images_are_served_inline(content_type: str, disposition: str) -> None:
    headers = download_headers(content_type, "f", "ab" * 32, 3)
    assert headers["Content-Disposition"].split(";")[0] == disposition
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "sandbox"
    assert headers["ETag"] == f'"{"ab" * 32}"'


def test_the_download_name_is_quoted_safely() -> None:
    headers = download_headers("text/plain", 'a "quoted"; name%.txt', "ab" * 32, 1)
    assert headers["Content-Disposition"] == (
        'attachment; filename="a _quoted__ name_.txt"; '
        "filename*=UTF-8''a%20%22quoted%22%3B%20name%25.txt"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-3", (0, 3)),
        ("bytes=4-", (4, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-30", (0, 9)),
        ("bytes=5-500", (5, 9)),
        ("bytes=0-1,4-5", None),
        ("bytes=5-2", None),
        ("items=0-3", None),
        ("bytes=-", None),
    ],
)
def test_a_range_names_the_first_and_last_byte(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert byte_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=99-100", "bytes=-0"])
def test_a_range_beyond_the_file_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 10)
