"""Media storage: the local folder, OSS against a signature-checking fake over real sockets,
content sniffing, store selection from the config, and the lazy oss2 import."""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.helpers.oss_server import OssServer, canonical_resource, http_date, sign_v1
from tests.helpers.servers import SilentServer, free_port
from wxcli.config import load_config
from wxcli.errors import ConfigError, StorageError
from wxcli.media.storage import (
    LocalMediaStore,
    OssMediaStore,
    classify,
    extension_for,
    is_transient,
    media_key,
    open_media_store,
)
from wxcli.paths import ProfilePaths

CST = timezone(timedelta(hours=8))
# 00:30 in Shanghai is still the previous day in UTC: keys follow the timestamp's own zone.
WHEN = datetime(2024, 3, 1, 0, 30, tzinfo=CST)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x01" * 64
KEY_ID = "LTAItestkeyid"
SECRET = "s3cr3t-AccessKey-value-42"
BUCKET = "wx-media"
ASCII_KEY = re.compile(r"^[A-Za-z0-9_./-]+$")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- sniffing -------------------------------------------------------------------------------

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@pytest.mark.parametrize(
    ("data", "declared", "ext", "stored_type"),
    [
        (JPEG, "application/octet-stream", "jpg", "image/jpeg"),
        (PNG, "", "png", "image/png"),
        (b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20, "image/gif", "gif", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "", "webp", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20, "", "wav", "audio/wav"),
        (b"BM" + b"\x00" * 12 + (40).to_bytes(4, "little") + b"\x00" * 20, "", "bmp", "image/bmp"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/octet-stream", "pdf", "application/pdf"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 20, "", "mp3", "audio/mpeg"),
        (b"\xff\xfb\x90\x64" + b"\x00" * 20, "", "mp3", "audio/mpeg"),  # bare MPEG-1 layer III
        (b"\xff\xf1\x50\x80" + b"\x00" * 20, "", "aac", "audio/aac"),
        (MP4_HEAD, "application/octet-stream", "mp4", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00", "", "mov", "video/quicktime"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00", "", "m4a", "audio/mp4"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "", "heic", "image/heic"),
        (b"#!AMR\n" + b"\x00" * 20, "", "amr", "audio/amr"),
        (b"\x02#!SILK_V3" + b"\x00" * 20, "", "silk", "audio/silk"),
        (b"OggS\x00\x02" + b"\x00" * 20, "", "ogg", "audio/ogg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "", "webm", "video/webm"),
        (b"PK\x03\x04\x14\x00" + b"\x00" * 20, "", "zip", "application/zip"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "", "gz", "application/gzip"),
    ],
)
def test_sniffing_trusts_the_bytes(data, declared, ext, stored_type):
    assert classify(declared, data) == (ext, stored_type)
    assert extension_for(declared, data) == ext


def test_sniffed_type_wins_over_a_wrong_declared_type():
    assert classify("image/jpeg", PNG) == ("png", "image/png")


def test_container_formats_are_refined_by_the_declared_type():
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    zipped = b"PK\x03\x04" + b"\x00" * 40
    assert classify(docx, zipped) == ("docx", docx)
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40
    assert classify("application/vnd.ms-excel", ole) == ("xls", "application/vnd.ms-excel")
    assert classify("", ole) == ("doc", "application/msword")
    # A declared type outside the family does not override the bytes.
    assert classify("image/png", zipped) == ("zip", "application/zip")


def test_unknown_bytes_fall_back_to_the_declared_type():
    data = b"just some bytes nobody recognises"
    assert classify("Image/JPEG; charset=binary", data) == ("jpg", "image/jpeg")
    assert classify("text/plain", data) == ("txt", "text/plain")
    assert classify("application/x-unheard-of", data) == ("bin", "application/x-unheard-of")
    assert classify("", data) == ("bin", "application/octet-stream")
    assert classify("", b"") == ("bin", "application/octet-stream")


def test_a_content_type_that_could_inject_headers_is_dropped():
    data = b"plain"
    assert classify("image/png\r\nX-Evil: 1", data) == ("bin", "application/octet-stream")
    assert classify("not a type", data) == ("bin", "application/octet-stream")


def test_media_key_uses_the_timestamps_own_calendar_day():
    digest = "a" * 64
    assert media_key("wxcli", WHEN, digest, "jpg") == f"wxcli/2024/03/01/{digest}.jpg"
    assert media_key("", WHEN.astimezone(UTC), digest, "jpg") == f"2024/02/29/{digest}.jpg"
    with pytest.raises(ValueError, match="timezone-aware"):
        media_key("wxcli", datetime(2024, 3, 1), digest, "jpg")


# --- local store ----------------------------------------------------------------------------


@pytest.fixture
def umask_000():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_local_put_is_private_even_under_umask_000(tmp_path, umask_000):
    root = tmp_path / "media"
    stored = LocalMediaStore(root).put(JPEG, content_type="image/jpeg", when=WHEN)
    path = root / stored.key
    assert path.stat().st_mode & 0o777 == 0o600
    folders = [root, root / "2024", root / "2024/03", root / "2024/03/01"]
    assert [oct(f.stat().st_mode & 0o777) for f in folders] == [oct(0o700)] * 4
    # A later day under an existing year: the new month/day folders are private too.
    later = LocalMediaStore(root).put(PNG, content_type="image/png", when=WHEN.replace(month=4))
    for f in ((root / later.key).parent, (root / later.key).parent.parent):
        assert f.stat().st_mode & 0o777 == 0o700, f


def test_local_put_writes_a_content_addressed_file(tmp_path):
    root = tmp_path / "media"
    store = LocalMediaStore(root)
    stored = store.put(JPEG, content_type="application/octet-stream", when=WHEN)

    assert stored.key == f"2024/03/01/{sha(JPEG)}.jpg"
    assert ASCII_KEY.match(stored.key)
    assert stored.sha256 == sha(JPEG)
    assert stored.size == len(JPEG)
    assert stored.content_type == "image/jpeg"
    assert stored.existed is False
    path = root / stored.key
    assert path.read_bytes() == JPEG
    assert stored.url == path.as_uri()
    assert stored.url.startswith("file:///")
    assert path.stat().st_mode & 0o777 == 0o600
    assert root.stat().st_mode & 0o777 == 0o700  # created by the store: private by default
    assert store.name == "local"


def test_local_identical_content_is_stored_once(tmp_path):
    store = LocalMediaStore(tmp_path / "media")
    first = store.put(PNG, content_type="image/png", when=WHEN)
    mtime = (store.root / first.key).stat().st_mtime_ns
    second = store.put(PNG, content_type="image/jpeg", when=WHEN + timedelta(hours=3))

    assert second.existed is True
    assert second.key == first.key
    assert (store.root / first.key).stat().st_mtime_ns == mtime
    assert all_files(store.root) == [store.root / first.key]
    # Another calendar day is another key: dedupe is per day by design.
    third = store.put(PNG, content_type="image/png", when=WHEN + timedelta(days=1))
    assert third.existed is False
    assert len(all_files(store.root)) == 2


def test_local_truncated_file_is_rewritten(tmp_path):
    store = LocalMediaStore(tmp_path / "media")
    key = store.put(JPEG, content_type="image/jpeg", when=WHEN).key
    (store.root / key).write_bytes(JPEG[:10])
    again = store.put(JPEG, content_type="image/jpeg", when=WHEN)
    assert again.existed is False
    assert store.get(key) == JPEG


def test_local_write_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    store = LocalMediaStore(tmp_path / "media")

    def disk_full(fd: int) -> None:  # the one fault a test cannot cause for real
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError, match="No space left") as info:
        store.put(JPEG, content_type="image/jpeg", when=WHEN)
    monkeypatch.undo()

    assert all_files(store.root) == []  # neither the target nor a temp file
    assert not store.exists(f"2024/03/01/{sha(JPEG)}.jpg")
    assert is_transient(info.value) is False


def test_local_concurrent_puts_of_the_same_content(tmp_path):
    store = LocalMediaStore(tmp_path / "media")
    results = []
    errors = []

    def put() -> None:
        try:
            results.append(store.put(JPEG, content_type="image/jpeg", when=WHEN))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {r.key for r in results} == {f"2024/03/01/{sha(JPEG)}.jpg"}
    assert all_files(store.root) == [store.root / results[0].key]
    assert store.get(results[0].key) == JPEG


def test_local_get_and_exists(tmp_path):
    store = LocalMediaStore(tmp_path / "媒体")  # a non-ASCII folder is fine; keys stay ASCII
    stored = store.put(PNG, content_type="image/png", when=WHEN)
    assert store.exists(stored.key)
    assert store.get(stored.key) == PNG
    assert ASCII_KEY.match(stored.key)
    assert "%E5%AA%92%E4%BD%93" in stored.url  # percent-encoded in the file:// URL
    missing = f"2024/03/01/{'0' * 64}.png"
    assert not store.exists(missing)
    with pytest.raises(StorageError, match="not found"):
        store.get(missing)


@pytest.mark.parametrize("key", ["../secret", "/etc/passwd", "a/../../b", "a//b", "媒体/x.png", ""])
def test_local_rejects_keys_outside_the_folder(tmp_path, key):
    store = LocalMediaStore(tmp_path / "media")
    with pytest.raises(StorageError, match="invalid media key"):
        store.get(key)
    with pytest.raises(StorageError, match="invalid media key"):
        store.exists(key)


def test_local_prefix_goes_in_front_of_the_date(tmp_path):
    store = LocalMediaStore(tmp_path / "media", prefix="/chats/")
    stored = store.put(PNG, content_type="image/png", when=WHEN)
    assert stored.key == f"chats/2024/03/01/{sha(PNG)}.png"


# --- OSS store against the fake server --------------------------------------------------------


@pytest.fixture
def oss():
    with OssServer(access_key_id=KEY_ID, access_key_secret=SECRET, buckets=[BUCKET]) as server:
        yield server


def oss_store(server_endpoint: str, **overrides) -> OssMediaStore:
    options = {
        "endpoint": server_endpoint,
        "bucket": BUCKET,
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "prefix": "wxcli",
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "secret_env": "WXCLI_OSS_SECRET",
    }
    options.update(overrides)
    return OssMediaStore(**options)


@pytest.fixture
def store(oss):
    s = oss_store(oss.endpoint)
    yield s
    s.close()


def test_oss_put_uploads_with_type_digest_and_sha_metadata(oss, store):
    stored = store.put(JPEG, content_type="application/octet-stream", when=WHEN)

    assert stored.key == f"wxcli/2024/03/01/{sha(JPEG)}.jpg"
    assert stored.url == f"oss://{BUCKET}/{stored.key}"
    assert (stored.size, stored.content_type, stored.existed) == (len(JPEG), "image/jpeg", False)
    obj = oss.object(BUCKET, stored.key)
    assert obj is not None
    assert obj.data == JPEG
    assert obj.content_type == "image/jpeg"
    assert obj.meta == {"sha256": sha(JPEG)}
    head, put = oss.requests
    assert (head.method, head.key, head.query, head.status) == (
        "HEAD",
        stored.key,
        {"objectMeta": ""},
        404,
    )
    assert (put.method, put.key, put.status) == ("PUT", stored.key, 200)
    assert put.headers["content-md5"] == base64.b64encode(hashlib.md5(JPEG).digest()).decode()
    assert put.headers["authorization"].startswith(f"OSS {KEY_ID}:")
    assert store.name == "oss"


def test_oss_identical_content_skips_the_second_upload(oss, store):
    first = store.put(PNG, content_type="image/png", when=WHEN)
    oss.clear_requests()
    second = store.put(PNG, content_type="image/png", when=WHEN + timedelta(hours=5))

    assert second.existed is True
    assert second.key == first.key
    assert [(r.method, r.status) for r in oss.requests] == [("HEAD", 200)]
    assert oss.keys(BUCKET) == [first.key]


def test_oss_object_already_in_the_bucket_is_not_uploaded(oss, store):
    key = f"wxcli/2024/03/01/{sha(PNG)}.png"
    oss.seed(BUCKET, key, PNG, "image/png")
    stored = store.put(PNG, content_type="image/png", when=WHEN)
    assert stored.existed is True
    assert [r.method for r in oss.requests] == ["HEAD"]


def test_oss_exists_and_get(oss, store):
    stored = store.put(JPEG, content_type="image/jpeg", when=WHEN)
    assert store.exists(stored.key) is True
    assert store.exists(f"wxcli/2024/03/01/{'0' * 64}.jpg") is False
    assert store.get(stored.key) == JPEG  # oss2 also checks the CRC64 the server returns
    with pytest.raises(StorageError, match="NoSuchKey"):
        store.get(f"wxcli/2024/03/01/{'0' * 64}.jpg")
    with pytest.raises(StorageError, match="invalid media key"):
        store.get("../x")


def test_oss_public_base_url_names_the_object(oss):
    s = oss_store(oss.endpoint, public_base_url="https://cdn.example.com/media/")
    try:
        stored = s.put(PNG, content_type="image/png", when=WHEN)
    finally:
        s.close()
    assert stored.url == f"https://cdn.example.com/media/{stored.key}"


def test_oss_wrong_secret_is_a_clear_error_without_the_secret(oss, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-right-secret-value"
    s = oss_store(oss.endpoint, access_key_secret=wrong)
    try:
        with pytest.raises(StorageError) as info:
            s.put(JPEG, content_type="image/jpeg", when=WHEN)
    finally:
        s.close()
    text = str(info.value)
    assert "403 SignatureDoesNotMatch" in text
    assert f"bucket {BUCKET}" in text
    assert "check [oss] access_key_id and env var WXCLI_OSS_SECRET" in text
    assert wrong not in text
    assert wrong not in repr(info.value)
    assert wrong not in caplog.text
    assert SECRET not in caplog.text
    assert is_transient(info.value) is False
    assert [r.code for r in oss.requests] == ["SignatureDoesNotMatch"]
    assert oss.keys(BUCKET) == []


def test_oss_secret_is_scrubbed_even_if_a_server_echoes_it(oss, store):
    oss.fail_next(500, "InternalError", f"something broke near {SECRET}")
    with pytest.raises(StorageError) as info:
        store.put(JPEG, content_type="image/jpeg", when=WHEN)
    assert SECRET not in str(info.value)
    assert "***" in str(info.value)


def test_oss_unknown_access_key_id(oss):
    s = oss_store(oss.endpoint, access_key_id="LTAIsomebodyelse")
    try:
        with pytest.raises(StorageError, match=r"403 InvalidAccessKeyId.*access_key_id"):
            s.exists(f"wxcli/2024/03/01/{'0' * 64}.jpg")
    finally:
        s.close()


def test_oss_missing_bucket(oss):
    s = oss_store(oss.endpoint, bucket="no-such-bucket")
    try:
        with pytest.raises(StorageError, match="404 NoSuchBucket for bucket no-such-bucket"):
            s.put(JPEG, content_type="image/jpeg", when=WHEN)
    finally:
        s.close()


def test_oss_clock_skew_is_reported_as_such():
    late_clock = lambda: time.time() + 3600  # noqa: E731 - the server's clock is an hour ahead
    with OssServer(access_key_id=KEY_ID, access_key_secret=SECRET, clock=late_clock) as server:
        s = oss_store(server.endpoint)
        try:
            with pytest.raises(StorageError, match=r"RequestTimeTooSkewed.*clock"):
                s.put(JPEG, content_type="image/jpeg", when=WHEN)
        finally:
            s.close()


def test_oss_server_errors_are_transient(oss, store):
    oss.fail_next(503, "ServiceUnavailable", "Please reduce your request rate.", methods=["PUT"])
    with pytest.raises(StorageError, match="503 ServiceUnavailable") as info:
        store.put(JPEG, content_type="image/jpeg", when=WHEN)
    assert is_transient(info.value) is True
    # The caller's retry then succeeds.
    assert store.put(JPEG, content_type="image/jpeg", when=WHEN).existed is False


def test_oss_server_down_fails_fast():
    s = oss_store(f"http://127.0.0.1:{free_port()}")
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match="could not connect") as info:
            s.put(JPEG, content_type="image/jpeg", when=WHEN)
        assert time.monotonic() - started < 2.0
    finally:
        s.close()
    assert is_transient(info.value) is True
    assert SECRET not in str(info.value)


def test_oss_silent_server_times_out():
    with SilentServer() as silent:
        s = oss_store(f"http://127.0.0.1:{silent.port}", read_timeout=0.3)
        try:
            started = time.monotonic()
            with pytest.raises(StorageError, match="timed out") as info:
                s.put(JPEG, content_type="image/jpeg", when=WHEN)
            assert time.monotonic() - started < 2.0
        finally:
            s.close()
    assert is_transient(info.value) is True


# --- the fake server itself: it must reject what real OSS rejects -------------------------------


def test_signing_matches_the_documented_oss_example():
    # The worked example of the OSS V1 signature documentation.
    signature, to_sign = sign_v1(
        "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV",
        method="PUT",
        content_md5="ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=",
        content_type="text/html",
        date="Thu, 17 Nov 2005 18:49:58 GMT",
        oss_headers=[("X-OSS-Meta-Author", b"foo@bar.com"), ("X-OSS-Magic", b"abracadabra")],
        resource=b"/oss-example/nelson",
    )
    assert signature == "26NBxoKdsyly4EDv6inkoDft/yA="
    assert to_sign.endswith(
        b"x-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n/oss-example/nelson"
    )


def test_canonical_resource_keeps_only_sorted_subresources():
    query = [("objectMeta", ""), ("acl", ""), ("max-keys", "5"), ("partNumber", "2")]
    assert canonical_resource("b", "k/1", query) == b"/b/k/1?acl&objectMeta&partNumber=2"
    assert canonical_resource("", "", []) == b"/"


def hand_signed_put(server: OssServer, key: str, body: bytes, *, signed_type: str, sent_type: str):
    date = http_date()
    signature, _ = sign_v1(
        SECRET,
        method="PUT",
        content_md5="",
        content_type=signed_type,
        date=date,
        oss_headers=[],
        resource=f"/{BUCKET}/{key}".encode(),
    )
    return requests.put(
        f"{server.endpoint}/{BUCKET}/{key}",
        data=body,
        headers={
            "Date": date,
            "Content-Type": sent_type,
            "Authorization": f"OSS {KEY_ID}:{signature}",
        },
        timeout=5,
    )


def test_fake_accepts_an_independently_signed_request_and_rejects_a_tampered_one(oss):
    ok = hand_signed_put(oss, "k.png", PNG, signed_type="image/png", sent_type="image/png")
    assert ok.status_code == 200
    assert oss.object(BUCKET, "k.png").data == PNG

    bad = hand_signed_put(oss, "k2.png", PNG, signed_type="image/png", sent_type="image/jpeg")
    assert bad.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in bad.text
    assert "<StringToSign>PUT\n\nimage/jpeg\n" in bad.text
    assert oss.object(BUCKET, "k2.png") is None


def test_fake_rejects_anonymous_requests(oss):
    reply = requests.get(f"{oss.endpoint}/{BUCKET}/anything", timeout=5)
    assert reply.status_code == 403
    assert "<Code>AccessDenied</Code>" in reply.text


def test_fake_checks_content_md5(oss, store):
    import oss2

    bucket = store._bucket
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("x.bin", b"data", headers={"Content-MD5": wrong_md5})
    assert oss.object(BUCKET, "x.bin") is None
    bucket.put_object(
        "x.bin",
        b"data",
        headers={"Content-MD5": base64.b64encode(hashlib.md5(b"data").digest()).decode()},
    )
    assert oss.object(BUCKET, "x.bin").data == b"data"
    bucket.delete_object("x.bin")
    assert oss.object(BUCKET, "x.bin") is None


# --- choosing a store from the config -------------------------------------------------------------


def write_config(path: Path, text: str):
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.fixture
def paths(wx_home):
    return ProfilePaths(home=wx_home)


def test_default_store_is_the_local_media_folder(paths, tmp_path):
    store = open_media_store(write_config(tmp_path / "c.toml", ""), paths, env={})
    assert isinstance(store, LocalMediaStore)
    assert store.root == paths.media_dir
    stored = store.put(PNG, content_type="image/png", when=WHEN)
    assert (paths.media_dir / stored.key).read_bytes() == PNG


def test_media_dir_setting(paths, tmp_path):
    absolute = tmp_path / "elsewhere"
    store = open_media_store(
        write_config(tmp_path / "c.toml", f'[media]\ndir = "{absolute}"\n'), paths, env={}
    )
    assert store.root == absolute
    relative = open_media_store(
        write_config(tmp_path / "d.toml", '[media]\ndir = "pics"\n'), paths, env={}
    )
    assert relative.root == paths.home / "pics"  # never the working directory


OSS_TOML = """
[oss]
endpoint = "{endpoint}"
bucket = "wx-media"
access_key_id = "LTAItestkeyid"
prefix = "archive/wx"
"""


def test_oss_store_from_config_round_trips(oss, paths, tmp_path):
    cfg = write_config(tmp_path / "c.toml", OSS_TOML.format(endpoint=oss.endpoint))
    store = open_media_store(cfg, paths, env={"WXCLI_OSS_SECRET": SECRET})
    try:
        assert isinstance(store, OssMediaStore)
        stored = store.put(JPEG, content_type="image/jpeg", when=WHEN)
        assert stored.key == f"archive/wx/2024/03/01/{sha(JPEG)}.jpg"
        assert store.get(stored.key) == JPEG
    finally:
        store.close()


def test_oss_secret_env_var_missing_names_the_variable(paths, tmp_path):
    cfg = write_config(
        tmp_path / "c.toml",
        OSS_TOML.format(endpoint="https://oss-cn-hangzhou.aliyuncs.com")
        + 'access_key_secret_env = "MY_OSS_KEY"\n',
    )
    with pytest.raises(ConfigError, match="env var MY_OSS_KEY is not set") as info:
        open_media_store(cfg, paths, env={"WXCLI_OSS_SECRET": SECRET})
    assert info.value.key == "oss.access_key_secret_env"
    assert str(tmp_path / "c.toml") in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("toml", "key", "message"),
    [
        ('[oss]\nbucket = "wx-media"\n', "oss.endpoint", "endpoint is needed"),
        (
            '[oss]\nendpoint = "https://oss-cn-hangzhou.aliyuncs.com"\n',
            "oss.bucket",
            "bucket is needed",
        ),
        (
            '[oss]\nendpoint = "https://oss-cn-hangzhou.aliyuncs.com"\nbucket = "wx-media"\n',
            "oss.access_key_id",
            "AccessKey id",
        ),
        (
            '[oss]\nendpoint = "ftp://oss.example.com"\nbucket = "wx-media"\n',
            "oss.endpoint",
            "expected a URL",
        ),
        (
            '[oss]\nendpoint = "https://oss-cn-hangzhou.aliyuncs.com"\nbucket = "WX_Media"\n'
            'access_key_id = "id"\n',
            "oss.bucket",
            "bucket name",
        ),
        (
            '[oss]\nendpoint = "https://oss-cn-hangzhou.aliyuncs.com"\nbucket = "wx-media"\n'
            'access_key_id = "id"\nprefix = "客服/图片"\n',
            "oss.prefix",
            "invalid key prefix",
        ),
        (
            '[oss]\nendpoint = "https://oss-cn-hangzhou.aliyuncs.com"\nbucket = "wx-media"\n'
            'access_key_id = "id"\nprefix = "a/../b"\n',
            "oss.prefix",
            "invalid key prefix",
        ),
        (
            '[oss]\nendpoint = "https://oss-cn-hangzhou.aliyuncs.com"\nbucket = "wx-media"\n'
            'access_key_id = "id"\naccess_key_secret_env = ""\n',
            "oss.access_key_secret_env",
            "name the env var",
        ),
    ],
)
def test_bad_oss_settings_are_config_errors(paths, tmp_path, toml, key, message):
    cfg = write_config(tmp_path / "c.toml", toml)
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        open_media_store(cfg, paths, env={"WXCLI_OSS_SECRET": SECRET})
    assert info.value.key == key


def test_endpoint_without_scheme_gets_https(paths, tmp_path):
    cfg = write_config(
        tmp_path / "c.toml", OSS_TOML.format(endpoint="oss-cn-hangzhou.aliyuncs.com")
    )
    store = open_media_store(cfg, paths, env={"WXCLI_OSS_SECRET": SECRET})
    try:
        assert store.endpoint == "https://oss-cn-hangzhou.aliyuncs.com"  # no request is made
        assert SECRET not in repr(store)
    finally:
        store.close()


# --- import cost ----------------------------------------------------------------------------------


def test_importing_storage_does_not_import_oss2(tmp_path):
    code = (
        "import sys, datetime\n"
        "import wxcli.media.storage as s\n"
        "store = s.LocalMediaStore(sys.argv[1])\n"
        "store.put(b'x', content_type='text/plain',"
        " when=datetime.datetime.now(datetime.timezone.utc))\n"
        "print('oss2' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.strip() == "False"
