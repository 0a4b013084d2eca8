"""Content-addressed media storage: Aliyun OSS when ``[oss]`` is configured, else a local folder.

Every object is named ``<prefix>/<yyyy>/<mm>/<dd>/<sha256>.<ext>``, so storing the same bytes twice
on one day is a no-op and a key alone says what a file is. ``oss2`` is imported only when an OSS
store is built: it costs ~0.4 s, which ``wxcli`` commands that never touch media should not pay.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from wxcli.config import Config
from wxcli.errors import ConfigError, StorageError
from wxcli.fileutil import atomic_write_bytes
from wxcli.paths import ProfilePaths

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"

#: Chat images are customer data: files 0600 and every folder wxcli creates (the root and each
#: ``yyyy/mm/dd`` level) 0700, whatever the umask. An operator who serves ``[media] dir`` on
#: purpose opens it up themselves (e.g. a group and ``chmod -R g+rX``).
LOCAL_FILE_MODE = 0o600

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_KEY_RE = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})*$")
# RFC 9110 token characters; anything else (spaces, CR/LF, quotes) never reaches a header.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_MIME_RE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")

# Content type -> extension, for content that sniffing does not recognise.
_EXT_BY_TYPE: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/heic": "heic",
    "image/tiff": "tif",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/amr": "amr",
    "audio/silk": "silk",
    "audio/ogg": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-msvideo": "avi",
    "video/x-matroska": "mkv",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/gzip": "gz",
    "application/x-7z-compressed": "7z",
    "application/vnd.rar": "rar",
    "application/x-rar-compressed": "rar",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/json": "json",
}

# Extension -> the content type stored for sniffed content.
_TYPE_BY_EXT: dict[str, str] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "heic": "image/heic",
    "tif": "image/tiff",
    "mp3": "audio/mpeg",
    "aac": "audio/aac",
    "amr": "audio/amr",
    "silk": "audio/silk",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "gz": "application/gzip",
    "7z": "application/x-7z-compressed",
    "rar": "application/vnd.rar",
    "doc": "application/msword",
}

# Containers whose magic bytes say less than the declared type: a .docx is a zip, a .xls is an
# OLE compound file. When the declared type names a member of the family, it wins.
_FAMILIES: dict[str, frozenset[str]] = {
    "zip": frozenset({"docx", "xlsx", "pptx"}),
    "doc": frozenset({"xls", "ppt"}),
}

_FTYP_BRANDS: dict[bytes, str] = {
    b"qt  ": "mov",
    b"M4A ": "m4a",
    b"M4B ": "m4a",
    b"heic": "heic",
    b"heix": "heic",
    b"mif1": "heic",
    b"msf1": "heic",
}


@dataclass(frozen=True)
class StoredMedia:
    """Where a piece of media ended up, as recorded next to its message."""

    key: str  # '<prefix>/<yyyy>/<mm>/<dd>/<sha256>.<ext>': OSS object key or path under the dir
    url: str  # public_base_url + key, 'oss://<bucket>/<key>', or a 'file://' URL
    sha256: str
    size: int
    content_type: str
    existed: bool  # identical content was already stored under this key; nothing was written


class MediaStore(Protocol):
    """What the download worker and history export need from a storage backend."""

    name: str

    def put(self, data: bytes, *, content_type: str, when: datetime) -> StoredMedia: ...

    def exists(self, key: str) -> bool: ...

    def get(self, key: str) -> bytes: ...

    def close(self) -> None: ...


# --- content sniffing -----------------------------------------------------------------------


def _sniff(data: bytes) -> str | None:
    """The extension that the leading bytes prove, or None."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}.get(head[8:12])
    if head.startswith(b"BM") and len(head) >= 18:
        dib_size = int.from_bytes(head[14:18], "little")
        return "bmp" if dib_size in (12, 40, 52, 56, 64, 108, 124) else None
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "mp4")
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0b11
        if layer == 0b01:
            return "mp3"  # MPEG audio layer III frame sync
        if layer == 0b00:
            return "aac"  # ADTS frame sync
        return None
    if head.startswith(b"#!AMR"):
        return "amr"
    # WeChat voice notes are SILK v3, often behind a 0x02 marker byte.
    if head.startswith((b"#!SILK", b"\x02#!SILK")):
        return "silk"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head else "mkv"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "doc"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tif"
    return None


def _normalize_type(content_type: str) -> str:
    """``'Image/JPEG; charset=x'`` -> ``'image/jpeg'``; '' for anything that is not a MIME type."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return base if _MIME_RE.match(base) else ""


def classify(content_type: str, data: bytes) -> tuple[str, str]:
    """``(extension, content_type)`` to store ``data`` under.

    The bytes are trusted over the declared type (servers often label images
    ``application/octet-stream``); the declared type only refines a container (zip -> docx) or
    names what sniffing does not know.
    """
    declared = _normalize_type(content_type)
    declared_ext = _EXT_BY_TYPE.get(declared)
    sniffed = _sniff(data)
    if sniffed is not None:
        if declared_ext is not None and declared_ext in _FAMILIES.get(sniffed, ()):
            return declared_ext, declared
        return sniffed, _TYPE_BY_EXT.get(sniffed, declared or OCTET_STREAM)
    return declared_ext or "bin", declared or OCTET_STREAM


def extension_for(content_type: str, data: bytes) -> str:
    """File extension for ``data``: sniffed from the content first, then from the content type,
    else ``'bin'``."""
    return classify(content_type, data)[0]


# --- keys -----------------------------------------------------------------------------------


def normalize_prefix(prefix: str) -> str:
    """Strip surrounding slashes and check the prefix is safe in object keys and file paths.

    Keys stay ASCII so they survive URLs, shells and every filesystem unchanged.
    """
    prefix = (prefix or "").strip().strip("/")
    if prefix and (not _KEY_RE.match(prefix) or ".." in prefix.split("/")):
        raise ValueError(
            f"invalid key prefix {prefix!r}: use ASCII letters, digits, '_', '-', '.' and '/'"
        )
    return prefix


def media_key(prefix: str, when: datetime, sha256: str, ext: str) -> str:
    """``<prefix>/<yyyy>/<mm>/<dd>/<sha256>.<ext>``, dated in ``when``'s own time zone."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("media timestamps must be timezone-aware")
    name = f"{when:%Y/%m/%d}/{sha256}.{ext}"
    return f"{prefix}/{name}" if prefix else name


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key) or ".." in key.split("/"):
        raise StorageError(f"invalid media key {key!r}")
    return key


# --- local folder ---------------------------------------------------------------------------


class LocalMediaStore:
    """Media files under one directory, written atomically (temp file + rename)."""

    name = "local"

    def __init__(self, root: Path, *, prefix: str = ""):
        self.root = Path(root).expanduser().absolute()
        self.prefix = normalize_prefix(prefix)

    def __repr__(self) -> str:
        return f"LocalMediaStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, data: bytes, *, content_type: str, when: datetime) -> StoredMedia:
        """Store ``data`` unless a file of the same name and size is already there."""
        sha = hashlib.sha256(data).hexdigest()
        ext, ctype = classify(content_type, data)
        key = media_key(self.prefix, when, sha, ext)
        path = self.root / key
        try:
            # The name is the hash and writes are atomic, so a file of the right size is the
            # content; a wrong size means someone else truncated it, and it is rewritten.
            existed = path.stat().st_size == len(data)
        except FileNotFoundError:
            existed = False
        except OSError as exc:
            raise StorageError(f"cannot read media folder {path.parent}: {exc.strerror}") from exc
        if not existed:
            try:
                # atomic_write_bytes makes every missing folder (yyyy/mm/dd, the root) 0700
                atomic_write_bytes(path, data, mode=LOCAL_FILE_MODE)
            except OSError as exc:
                raise StorageError(f"cannot write media file {path}: {exc.strerror}") from exc
            log.debug("stored %s (%d bytes)", key, len(data))
        return StoredMedia(
            key=key,
            url=path.as_uri(),
            sha256=sha,
            size=len(data),
            content_type=ctype,
            existed=existed,
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"media {key} not found in {self.root}")
        except OSError as exc:
            raise StorageError(f"cannot read media file {path}: {exc.strerror}") from exc

    def close(self) -> None:
        """Nothing to release; present so callers treat both backends alike."""


# --- Aliyun OSS -----------------------------------------------------------------------------

# What to tell the user for OSS error codes that mean "your settings are wrong".
_OSS_HINTS: dict[str, str] = {
    "SignatureDoesNotMatch": "check [oss] access_key_id and {secret_source}",
    "InvalidAccessKeyId": "the AccessKey id is unknown or disabled; check [oss] access_key_id",
    "AccessDenied": "the AccessKey may not use this bucket; check its RAM policy",
    "NoSuchBucket": "check [oss] bucket and that endpoint is the bucket's region",
    "RequestTimeTooSkewed": "this machine's clock is off; sync it (NTP)",
    "InvalidDigest": "the upload was corrupted in transit",
}


class OssMediaStore:
    """Media objects in one Aliyun OSS bucket, uploaded with ``put_object``.

    Each call makes at most two requests (a HEAD to skip known content, then the PUT); retrying
    is the caller's job, guided by :func:`is_transient`.
    """

    name = "oss"

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key_id: str,
        access_key_secret: str,
        prefix: str = "wxcli",
        public_base_url: str = "",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        secret_env: str = "",
    ):
        import oss2  # lazy: see the module docstring

        self._oss2: Any = oss2
        self.endpoint = endpoint
        self.bucket_name = bucket
        self.prefix = normalize_prefix(prefix)
        self.public_base_url = public_base_url
        # Named in error hints so the user knows where the secret came from.
        self._secret_source = f"env var {secret_env}" if secret_env else "the AccessKey secret"
        self._secret = access_key_secret  # kept only to scrub it from error messages
        try:
            self._bucket = oss2.Bucket(
                oss2.Auth(access_key_id, access_key_secret),
                endpoint,
                bucket,
                session=oss2.Session(),
                # oss2 hands this to requests as is, so a (connect, read) pair works.
                connect_timeout=(connect_timeout, read_timeout),
            )
        except oss2.exceptions.ClientError as exc:
            raise ConfigError(f"OSS rejected endpoint {endpoint!r} / bucket {bucket!r}: {exc}")

    def __repr__(self) -> str:
        return f"OssMediaStore(endpoint={self.endpoint!r}, bucket={self.bucket_name!r})"

    def url_for(self, key: str) -> str:
        if self.public_base_url:
            return f"{self.public_base_url.rstrip('/')}/{key}"
        return f"oss://{self.bucket_name}/{key}"

    def put(self, data: bytes, *, content_type: str, when: datetime) -> StoredMedia:
        """Upload ``data`` unless an object with its key is already in the bucket."""
        sha = hashlib.sha256(data).hexdigest()
        ext, ctype = classify(content_type, data)
        key = media_key(self.prefix, when, sha, ext)
        existed = self.exists(key)
        if not existed:
            headers = {
                "Content-Type": ctype,
                "Content-MD5": base64.b64encode(
                    hashlib.md5(data, usedforsecurity=False).digest()
                ).decode("ascii"),
                "x-oss-meta-sha256": sha,
            }
            try:
                self._bucket.put_object(key, data, headers=headers)
            except self._oss2.exceptions.OssError as exc:
                raise self._error(exc, "upload", key) from exc
            log.debug("uploaded %s to bucket %s (%d bytes)", key, self.bucket_name, len(data))
        return StoredMedia(
            key=key,
            url=self.url_for(key),
            sha256=sha,
            size=len(data),
            content_type=ctype,
            existed=existed,
        )

    def exists(self, key: str) -> bool:
        _check_key(key)
        try:
            return bool(self._bucket.object_exists(key))
        except self._oss2.exceptions.OssError as exc:
            raise self._error(exc, "check", key) from exc

    def get(self, key: str) -> bytes:
        _check_key(key)
        try:
            return bytes(self._bucket.get_object(key).read())
        except self._oss2.exceptions.OssError as exc:
            raise self._error(exc, "download", key) from exc

    def close(self) -> None:
        """Close pooled connections (worker threads may share one store until then)."""
        self._bucket.session.session.close()

    def _error(self, exc: Any, action: str, key: str) -> StorageError:
        """One place that turns oss2's exceptions into a message a user can act on."""
        import requests  # already loaded by oss2

        errs = self._oss2.exceptions
        target = f"bucket {self.bucket_name} at {self.endpoint}"
        if isinstance(exc, errs.RequestError):
            inner = getattr(exc, "exception", None)
            if isinstance(inner, requests.exceptions.Timeout):
                problem = "timed out"
            elif isinstance(inner, requests.exceptions.ConnectionError):
                problem = "could not connect"
            else:
                problem = type(inner).__name__ if inner is not None else "request failed"
            message = f"OSS {action} of {key}: {problem} ({target})"
        elif isinstance(exc, errs.InconsistentError):
            message = f"OSS {action} of {key}: CRC64 mismatch, data corrupted in transit ({target})"
        elif isinstance(exc, errs.ServerError):
            code = exc.code or "(no error code)"
            message = f"OSS {exc.status} {code} for {target} ({action} of {key})"
            if exc.message:
                message += f": {exc.message.rstrip('.')}"
            hint = _OSS_HINTS.get(exc.code or "")
            if hint:
                message += f"; {hint.format(secret_source=self._secret_source)}"
        else:
            message = f"OSS {action} of {key} failed ({target}): {type(exc).__name__}"
        if self._secret:
            message = message.replace(self._secret, "***")
        return StorageError(message)


def is_transient(err: BaseException) -> bool:
    """True when a :class:`StorageError` from a store is worth retrying later.

    Network failures, CRC mismatches and OSS 5xx/429 answers pass with time; wrong keys, missing
    buckets and full disks do not.
    """
    cause = err.__cause__
    status = getattr(cause, "status", None)
    if isinstance(status, int):
        # oss2: -2 request error (network), -3 CRC mismatch; HTTP 429 and 5xx.
        return status in (-2, -3, 429) or status >= 500
    if isinstance(cause, OSError):
        return cause.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT)
    return False


# --- selection --------------------------------------------------------------------------------


def open_media_store(
    config: Config, paths: ProfilePaths, env: Mapping[str, str] = os.environ
) -> MediaStore:
    """The store that ``[oss]`` / ``[media]`` ask for.

    OSS when ``[oss] endpoint`` and ``bucket`` are set (setting only one is an error, not a quiet
    fallback to local files); the secret comes from the env var that ``access_key_secret_env``
    names, never from the file. Otherwise the local folder ``[media] dir`` (relative paths are
    under the wxcli home), else ``<home>/media``.
    """
    where = str(config.path) if config.path else None
    oss = config.data.get("oss", {})
    endpoint = str(oss.get("endpoint", "")).strip()
    bucket = str(oss.get("bucket", "")).strip()
    if endpoint or bucket:
        if not endpoint:
            raise ConfigError(
                "[oss] bucket is set, so endpoint is needed", path=where, key="oss.endpoint"
            )
        if not bucket:
            raise ConfigError(
                "[oss] endpoint is set, so bucket is needed", path=where, key="oss.bucket"
            )
        if "://" not in endpoint:
            endpoint = "https://" + endpoint  # oss2 would assume plain http
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"expected a URL like https://oss-cn-hangzhou.aliyuncs.com, got {endpoint!r}",
                path=where,
                key="oss.endpoint",
            )
        access_key_id = str(oss.get("access_key_id", "")).strip()
        if not access_key_id:
            raise ConfigError(
                "the AccessKey id is needed for OSS", path=where, key="oss.access_key_id"
            )
        secret_env = str(oss.get("access_key_secret_env", "")).strip()
        if not secret_env:
            raise ConfigError(
                "name the env var that holds the AccessKey secret",
                path=where,
                key="oss.access_key_secret_env",
            )
        secret = env.get(secret_env, "").strip()
        if not secret:
            raise ConfigError(
                f"env var {secret_env} is not set; export the OSS AccessKey secret in it",
                path=where,
                key="oss.access_key_secret_env",
            )
        if not _BUCKET_RE.match(bucket):
            raise ConfigError(
                "a bucket name is 3-63 lowercase letters, digits and '-'",
                path=where,
                key="oss.bucket",
            )
        try:
            prefix = normalize_prefix(str(oss.get("prefix", "")))
        except ValueError as exc:
            raise ConfigError(str(exc), path=where, key="oss.prefix")
        return OssMediaStore(
            endpoint=endpoint,
            bucket=bucket,
            access_key_id=access_key_id,
            access_key_secret=secret,
            prefix=prefix,
            public_base_url=str(oss.get("public_base_url", "")).strip(),
            secret_env=secret_env,
        )
    configured = str(config.data.get("media", {}).get("dir", "")).strip()
    if configured:
        root = Path(configured).expanduser()
        if not root.is_absolute():
            root = paths.home / root  # never the working directory
    else:
        root = paths.media_dir
    return LocalMediaStore(root)
