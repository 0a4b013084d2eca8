"""The OpenAPI 3.0 description of the REST shim, served at ``GET /openapi.json``.

Written by hand next to the routes (a test checks that both list the same operations and that
the document validates), so it states exactly what the server enforces: auth modes, limits and
every status code with its JSON error body.
"""

from __future__ import annotations

from typing import Any

from wxcli import __version__
from wxcli.protocol.content import MESSAGE_KINDS as KINDS

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

ERROR_CODES = {
    400: "Bad request: missing or invalid fields, or an image URL that may not be fetched.",
    401: "Missing, wrong, expired or replayed credentials.",
    403: "This app's scopes do not allow it (see `wxcli apps add --read/--send`).",
    404: "No chat has this name or id (chats outside this app's allow-list count as absent).",
    409: "Several chats have this name; use `to_id`.",
    413: "The request body, text or image is too large.",
    415: "Unsupported Content-Type, or the file is not a JPEG/PNG/GIF/WebP image.",
    422: "The image URL could not be fetched.",
    429: "The send queue is full, or WeChat kept answering 1205; see Retry-After.",
    502: "WeChat refused the message (its error code is in the body).",
    503: "Not logged in, or the WeChat session has ended: run `wxcli login`.",
    504: "WeChat could not be reached in time.",
}


#: The read routes' own meaning of some statuses.
READ_ERRORS = {
    400: "A parameter is malformed or out of range (cursor, limit, wait, since/until, kind…).",
    404: "No chat visible to this app matches `chat`.",
    409: "There is no archive yet, or nothing was analysed yet (stats).",
    429: "Too many long polls are open at once; see Retry-After.",
    503: "The archive database cannot be reached; see Retry-After.",
}


def _error_response(status: int, description: str | None = None) -> dict[str, Any]:
    resp: dict[str, Any] = {
        "description": description or ERROR_CODES[status],
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status in (429, 503):
        resp["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return resp


def _send_responses(*extra: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": "WeChat accepted the message.",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/SendResult"}}},
        }
    }
    for status in sorted({400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504, *extra}):
        out[str(status)] = _error_response(status)
    return out


def _query(
    name: str,
    description: str,
    deprecated: bool = False,
    schema: dict[str, Any] | None = None,
    *,
    repeat: bool = False,
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }
    if repeat:
        p["schema"] = {"type": "array", "items": p["schema"]}
        p["style"] = "form"
        p["explode"] = True
    if deprecated:
        p["deprecated"] = True
    return p


def _read_op(
    op_id: str, summary: str, params: list[dict[str, Any]], schema: str, statuses: tuple[int, ...]
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "The answer.",
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
        "401": _error_response(401),
        "403": _error_response(403),
    }
    for status in statuses:
        responses[str(status)] = _error_response(status, READ_ERRORS[status])
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "parameters": params,
            "responses": dict(sorted(responses.items())),
        }
    }


PERIOD = [
    _query("chat", "Chat name or glob (客服*), current or former; repeatable.", repeat=True),
    _query("since", "Start: 7d, 12h, 2026-11-01 … (whole local days). Default: 30 days."),
    _query("until", "End, same forms (its day included). Default: now."),
]
INT = {"type": "integer", "minimum": 1, "maximum": 1000}
BOOL = {"type": "boolean"}


def _read_paths() -> dict[str, Any]:
    """GET /v1/messages, /v1/chats and /v1/stats/*: the read scope."""
    stats = "Rows as `wxcli stats {0} --format json` prints them (one object per JSON line)."
    return {
        "/v1/messages": _read_op(
            "listMessages",
            "Messages this app may read: newest page, pages back with `before`, pages "
            "forward with `cursor`, and `wait` to long-poll for new ones.",
            [
                _query("chat", "Chat name or glob, current or former; repeatable.", repeat=True),
                _query("from", "Only messages from this person (name or remark)."),
                _query("since", "7d, 12h, 2026-11-01 … or an ISO date-time."),
                _query("until", "Same forms as since."),
                _query(
                    "kind",
                    "Message kind; repeatable.",
                    schema={"type": "string", "enum": list(KINDS)},
                    repeat=True,
                ),
                _query("text", "Only messages containing this text."),
                _query("exclude_self", "Leave out our own messages.", schema=BOOL),
                _query(
                    "limit",
                    "Messages per page (default 100).",
                    schema={"type": "integer", "minimum": 1, "maximum": 500},
                ),
                _query("cursor", "Messages stored after this cursor (from a page's `cursor`)."),
                _query("before", "The page before this cursor (from a page's `previous`)."),
                _query(
                    "wait",
                    "With `cursor`: hold the request up to this many seconds until a "
                    "matching message arrives ([serve] max_wait_seconds at most).",
                    schema={"type": "integer", "minimum": 0, "maximum": 3600},
                ),
            ],
            "MessagePage",
            (400, 409, 429, 503),
        ),
        "/v1/chats": _read_op(
            "listChats",
            "Archived chats this app may read, with former names and member counts.",
            [
                _query("q", "Part of a current or former name (case-insensitive)."),
                _query(
                    "kind",
                    "Chat kind.",
                    schema={
                        "type": "string",
                        "enum": ["group", "friend", "official", "special", "self"],
                    },
                ),
            ],
            "ChatList",
            (400, 409, 503),
        ),
        "/v1/stats/words": _read_op(
            "statsWords",
            stats.format("words"),
            [
                *PERIOD,
                _query("top", "How many words (default 20).", schema=INT),
                _query(
                    "by",
                    "Top words per group.",
                    schema={"type": "string", "enum": ["chat", "day", "week", "sender"]},
                ),
                _query("groups", "With by: how many groups.", schema=INT),
                _query("keywords", "Rank by TF-IDF instead of counts.", schema=BOOL),
            ],
            "StatsRows",
            (400, 404, 409, 503),
        ),
        "/v1/stats/activity": _read_op(
            "statsActivity",
            stats.format("activity"),
            [
                *PERIOD,
                _query("top", "How many chats for view=chats (default 10).", schema=INT),
                _query(
                    "view",
                    "Rows (default days).",
                    schema={"type": "string", "enum": ["days", "hours", "chats"]},
                ),
            ],
            "StatsRows",
            (400, 404, 409, 503),
        ),
        "/v1/stats/speakers": _read_op(
            "statsSpeakers",
            stats.format("speakers"),
            [
                *PERIOD,
                _query("top", "Speakers per chat (default 10).", schema=INT),
                _query("overall", "Rank across all chats.", schema=BOOL),
                _query("no_lurkers", "Leave out members who never spoke.", schema=BOOL),
            ],
            "StatsRows",
            (400, 404, 409, 503),
        ),
        "/v1/stats/sentiment": _read_op(
            "statsSentiment",
            stats.format("sentiment"),
            [
                *PERIOD,
                _query("top", "Negative messages for view=negatives (default 10).", schema=INT),
                _query(
                    "view",
                    "Rows (default days).",
                    schema={"type": "string", "enum": ["days", "chats", "chat-days", "negatives"]},
                ),
            ],
            "StatsRows",
            (400, 404, 409, 503),
        ),
    }


READ_SCHEMAS: dict[str, Any] = {
    "Message": {
        "type": "object",
        "description": "One archived message, the same object the feed delivers.",
        "required": ["type", "seq", "msg_id", "chat", "chat_id", "kind", "created_at"],
        "properties": {
            "type": {"type": "string", "enum": ["message"]},
            "seq": {"type": "integer", "description": "Storage order in the archive."},
            "msg_id": {"type": "string", "description": "WeChat MsgId (the idempotency key)."},
            "chat": {"type": "string"},
            "chat_id": {"type": "integer"},
            "chat_kind": {"type": "string"},
            "sender": {"type": "string"},
            "is_self": {"type": "boolean"},
            "kind": {"type": "string"},
            "text": {"type": "string"},
            "title": {"type": "string"},
            "url": {"type": "string"},
            "media_url": {"type": "string"},
            "media_status": {"type": "string"},
            "sentiment": {"type": "number", "nullable": True},
            "created_at": {"type": "string", "format": "date-time"},
            "revoked": {"type": "boolean"},
            "recall_of": {"type": "string", "nullable": True},
            "mentions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "MessagePage": {
        "type": "object",
        "required": ["messages", "cursor", "previous"],
        "properties": {
            "messages": {
                "type": "array",
                "description": "Oldest first.",
                "items": {"$ref": "#/components/schemas/Message"},
            },
            "cursor": {
                "type": "string",
                "description": "Pass as `cursor` for what comes after this page.",
            },
            "previous": {
                "type": "string",
                "nullable": True,
                "description": "Pass as `before` for the page before; null at the start.",
            },
        },
    },
    "Chat": {
        "type": "object",
        "required": ["id", "name", "former_names", "kind"],
        "properties": {
            "id": {"type": "integer", "description": "Archive chat id (stable across logins)."},
            "name": {"type": "string"},
            "former_names": {"type": "array", "items": {"type": "string"}},
            "kind": {"type": "string"},
            "members": {"type": "integer", "nullable": True},
            "first_seen": {"type": "string", "format": "date-time", "nullable": True},
            "last_seen": {"type": "string", "format": "date-time", "nullable": True},
        },
    },
    "ChatList": {
        "type": "object",
        "required": ["chats"],
        "properties": {"chats": {"type": "array", "items": {"$ref": "#/components/schemas/Chat"}}},
    },
    "StatsRows": {
        "type": "object",
        "required": ["rows", "columns", "period"],
        "properties": {
            "rows": {"type": "array", "items": {"type": "object"}},
            "columns": {"type": "array", "items": {"type": "string"}},
            "period": {
                "type": "object",
                "properties": {
                    "since": {"type": "string", "format": "date-time"},
                    "until": {"type": "string", "format": "date-time"},
                    "timezone": {"type": "string"},
                },
            },
        },
    },
}


def openapi_document(
    *,
    allow_query_key: bool = False,
    max_body_bytes: int = 25 * 1024 * 1024,
    max_image_bytes: int = 20 * 1024 * 1024,
    server_url: str | None = None,
) -> dict[str, Any]:
    """The document for a server with these settings (the legacy key scheme only when on)."""
    security: list[dict[str, list[str]]] = [
        {"bearer": []},
        {"appId": [], "timestamp": [], "nonce": [], "signature": []},
    ]
    schemes: dict[str, Any] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "<appId>:<appKey>",
            "description": "`Authorization: Bearer <appId>:<appKey>` as printed by "
            "`wxcli apps add`.",
        },
        "appId": {
            "type": "apiKey",
            "in": "header",
            "name": "X-App-Id",
            "description": "Request signing, with X-Timestamp, X-Nonce and X-Signature.",
        },
        "timestamp": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Timestamp",
            "description": "Unix seconds; accepted within ±300 s of the server clock.",
        },
        "nonce": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Nonce",
            "description": "16–128 characters of [A-Za-z0-9_-], never reused.",
        },
        "signature": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Signature",
            "description": "Lowercase hex HMAC-SHA256 with key "
            "HMAC-SHA256(appKey, 'wxcli-sign-v1') over "
            "METHOD\\nPATH[?QUERY]\\nX-Timestamp\\nX-Nonce\\nhex(SHA-256(body)).",
        },
    }
    if allow_query_key:
        security.append({"queryKey": []})
        schemes["queryKey"] = {
            "type": "apiKey",
            "in": "query",
            "name": "appkey",
            "description": "Legacy (seed-compatible, insecure): `appkey=<appKey>` or "
            "`appkey=<appId>:<appKey>`. Enabled by [serve] allow_query_key.",
        }
    recipient = {
        "to": {
            "type": "string",
            "maxLength": 256,
            "description": "Exact group name, remark or nickname (or filehelper).",
        },
        "to_id": {
            "type": "string",
            "maxLength": 256,
            "description": "Session UserName (@… / @@…) from GET /v1/contacts.",
        },
    }
    text_props = {
        **recipient,
        "text": {"type": "string", "minLength": 1, "maxLength": 16384},
        "word": {"type": "string", "description": "Seed alias of `text`.", "deprecated": True},
    }
    image_ref = {
        **recipient,
        "image_url": {
            "type": "string",
            "format": "uri",
            "maxLength": 4096,
            "description": "http(s) URL of the image; private/metadata addresses refused.",
        },
        "imgUrl": {"type": "string", "description": "Seed alias of image_url.", "deprecated": True},
    }
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "wxcli REST shim",
            "version": __version__,
            "description": "Post text and images into WeChat chats of the logged-in account "
            "(scope `send`), and read the archive: messages, chats and stats (scope `read`). "
            "An app's allow-list limits both. "
            "Every send goes through the profile's pacer (burst, then a steady rate). "
            f"Request bodies are limited to {max_body_bytes} bytes and images to "
            f"{max_image_bytes} bytes. Errors are JSON: "
            '`{"error": {"code": "...", "message": "..."}}`.',
        },
        "servers": [{"url": server_url or "/"}],
        "security": security,
        "paths": {
            "/v1/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Session, watch and pacer state (no auth).",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The session is alive (or not known to be dead).",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                        "503": {
                            "description": "Not logged in, or the session has ended.",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no auth).",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {JSON: {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/v1/contacts": {
                "get": {
                    "operationId": "listContacts",
                    "summary": "Chats this app may send to (from the session's directory).",
                    "parameters": [
                        _query("q", "Part of a name or remark (case-insensitive)."),
                        {
                            "name": "kind",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": ["group", "friend", "official", "special"],
                            },
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "Matching chats.",
                            "content": {
                                JSON: {"schema": {"$ref": "#/components/schemas/ContactList"}}
                            },
                        },
                        "400": _error_response(400),
                        "401": _error_response(401),
                        "503": _error_response(503),
                    },
                }
            },
            "/v1/msg/text": {
                "post": {
                    "operationId": "sendText",
                    "summary": "Send a text message (JSON or form body).",
                    "parameters": [
                        _query("to", "Recipient name (seed style; body fields win)."),
                        _query("to_id", "Recipient id (seed style)."),
                        _query("text", "The text (seed style)."),
                        _query("word", "The text (seed name).", deprecated=True),
                    ],
                    "requestBody": {
                        "required": False,
                        "description": "Optional when the fields come as query parameters.",
                        "content": {
                            JSON: {"schema": {"$ref": "#/components/schemas/TextMessage"}},
                            FORM: {"schema": {"$ref": "#/components/schemas/TextMessage"}},
                        },
                    },
                    "responses": _send_responses(),
                },
                "get": {
                    "operationId": "sendTextSeed",
                    "summary": "Seed-compatible text send: GET /v1/msg/text?to=..&word=..",
                    "deprecated": True,
                    "parameters": [
                        _query("to", "Recipient name."),
                        _query("to_id", "Recipient id."),
                        _query("word", "The text (seed name)."),
                        _query("text", "The text."),
                    ],
                    "responses": _send_responses(),
                },
            },
            "/v1/msg/image": {
                "post": {
                    "operationId": "sendImage",
                    "summary": "Send an image: multipart `file`, or `image_url` to fetch.",
                    "parameters": [
                        _query("to", "Recipient name (seed style)."),
                        _query("to_id", "Recipient id."),
                        _query("imgUrl", "Image URL (seed name).", deprecated=True),
                        _query("image_url", "Image URL."),
                    ],
                    "requestBody": {
                        "required": False,
                        "description": "Optional when the seed query parameters are used.",
                        "content": {
                            MULTIPART: {"schema": {"$ref": "#/components/schemas/ImageUpload"}},
                            JSON: {"schema": {"$ref": "#/components/schemas/ImageByUrl"}},
                            FORM: {"schema": {"$ref": "#/components/schemas/ImageByUrl"}},
                        },
                    },
                    "responses": _send_responses(422),
                }
            },
            **_read_paths(),
        },
        "components": {
            "securitySchemes": schemes,
            "schemas": {
                **READ_SCHEMAS,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "matches": {"type": "array", "items": {"type": "string"}},
                                "near": {"type": "array", "items": {"type": "string"}},
                                "wechat_code": {
                                    "type": "string",
                                    "description": "WeChat's own error code, when it gave one.",
                                },
                            },
                        }
                    },
                },
                "SendResult": {
                    "type": "object",
                    "required": ["msg_id", "to", "to_name", "kind"],
                    "properties": {
                        "msg_id": {"type": "string", "description": "WeChat MsgID."},
                        "local_id": {"type": "string"},
                        "to": {"type": "string", "description": "Session UserName."},
                        "to_name": {"type": "string"},
                        "kind": {"type": "string", "enum": ["text", "image"]},
                        "sent_at": {"type": "string", "format": "date-time"},
                    },
                },
                "TextMessage": {
                    "type": "object",
                    "description": "Give `to` or `to_id`, and `text` (or the seed's `word`).",
                    "properties": text_props,
                },
                "ImageByUrl": {
                    "type": "object",
                    "description": "Give `to` or `to_id`, and `image_url` (or `imgUrl`).",
                    "properties": image_ref,
                },
                "ImageUpload": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        **recipient,
                        "file": {"type": "string", "format": "binary"},
                    },
                },
                "Contact": {
                    "type": "object",
                    "required": ["id", "name", "kind"],
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "nickname": {"type": "string"},
                        "remark": {"type": "string"},
                        "kind": {"type": "string"},
                        "members": {"type": "integer", "nullable": True},
                    },
                },
                "ContactList": {
                    "type": "object",
                    "required": ["contacts"],
                    "properties": {
                        "contacts": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Contact"},
                        }
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "session", "watch", "pacer"],
                    "properties": {
                        "status": {
                            "type": "string",
                            "enum": ["ok", "not_logged_in", "session_expired"],
                        },
                        "version": {"type": "string"},
                        "session": {"type": "object"},
                        "watch": {"type": "object"},
                        "pacer": {"type": "object"},
                    },
                },
            },
        },
    }
    return doc


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) pairs the document describes."""
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    return {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in methods}
