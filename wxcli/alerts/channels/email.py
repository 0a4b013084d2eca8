"""Email over SMTP (``type = "email"``): multipart text + HTML, attachments, UTF-8 headers,
plain / STARTTLS / implicit TLS, and AUTH that also works with non-ASCII passwords.

Every failure becomes one AlertError naming the server and the SMTP reply or network reason;
the password never appears in it (nor in a log line).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import ClassVar, Self

from wxcli.alerts.channels.base import (
    DEFAULT_TIMEOUT,
    BuildContext,
    Channel,
    ChannelTable,
    b64,
    log,
)
from wxcli.alerts.channels.render import one_line, render_html, render_text
from wxcli.alerts.model import Alert
from wxcli.errors import AlertError

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


class EmailChannel(Channel):
    """Email over SMTP: multipart/alternative text + HTML, attachments, UTF-8 headers."""

    kind = "email"
    config_keys: ClassVar[frozenset[str]] = frozenset(
        {
            "type",
            "host",
            "port",
            "security",
            "username",
            "password_env",
            "sender",
            "to",
            "timeout",
            "verify_tls",
            "ca_file",
        }
    )
    secret_env_keys: ClassVar[tuple[str, ...]] = ("password_env",)

    def __init__(
        self,
        name: str,
        *,
        host: str,
        sender: str,
        to: list[str],
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify_tls: bool = True,
        ca_file: str | None = None,
        local_hostname: str | None = None,
    ) -> None:
        super().__init__(name)
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {SECURITY_MODES}")
        self.host = host
        self.security = security
        self.port = port or DEFAULT_PORTS[security]
        self.sender = sender
        # "wxcli alerts <alerts@example.com>" is a fine From header; SMTP wants the address.
        self.sender_address = parseaddr(sender)[1] or sender
        self.to = list(to)
        self.username = username
        self._password = password
        self.timeout = float(timeout)
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self.local_hostname = local_hostname

    @classmethod
    def from_config(cls, table: ChannelTable, ctx: BuildContext) -> Self:
        spec = table.spec
        table.no_literal_secret("password", "password_env", "WXCLI_SMTP_PASSWORD", "password")
        table.check_keys(set(cls.config_keys))
        host = table.required("host", 'host = "smtp.example.com"')
        security = table.choice("security", SECURITY_MODES, "starttls")
        port = spec.get("port", DEFAULT_PORTS[security])
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise table.error("port", f"must be a port number 1-65535, not {port!r}")
        sender = table.required("sender", 'sender = "wxcli@example.com"')
        if not _is_address(parseaddr(sender)[1]) or "\n" in sender:
            raise table.error("sender", f"{sender!r} is not an email address")
        to_value = spec.get("to")
        if to_value is None:
            raise table.error("to", 'missing; e.g. to = ["ops@example.com"]')
        to = [to_value] if isinstance(to_value, str) else to_value
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(a, str) and _is_address(a) for a in to)
        ):
            raise table.error("to", f"must be a list of email addresses, not {to_value!r}")
        username = table.string("username")
        password = table.secret("password_env", ctx.env)
        if username and password is None:
            raise table.error(
                "password_env",
                f"username {username!r} is set but no password_env names its password",
            )
        if password is not None and not username:
            raise table.error("username", "password_env is set, so username is needed too")
        ca_file = table.string("ca_file")
        if ca_file is not None and not Path(ca_file).expanduser().is_file():
            raise table.error("ca_file", f"no such file: {ca_file}")
        verify_tls = table.boolean("verify_tls", True)
        if security == "none" and username:
            log.warning(
                'channel %s sends its SMTP password unencrypted (security = "none")', table.name
            )
        if security != "none" and not verify_tls:
            log.warning("channel %s does not verify the SMTP server's TLS certificate", table.name)
        return cls(
            table.name,
            host=host,
            port=port,
            security=security,
            sender=sender,
            to=to,
            username=username,
            password=password,
            timeout=table.number("timeout", DEFAULT_TIMEOUT),
            verify_tls=verify_tls,
            ca_file=str(Path(ca_file).expanduser()) if ca_file else None,
        )

    @property
    def target(self) -> str:
        return f"email to {', '.join(self.to)} via {self.host}:{self.port} ({self.security})"

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def build_message(self, alert: Alert) -> EmailMessage:
        """The complete message for ``alert`` (public so callers can preview or save it)."""
        msg = EmailMessage()
        msg["Subject"] = one_line(alert.title)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = format_datetime(datetime.now(UTC))
        # An explicit domain keeps make_msgid from resolving this host's FQDN (slow offline).
        domain = self.sender_address.rpartition("@")[2] or "wxcli.invalid"
        msg["Message-ID"] = make_msgid(idstring="wxcli", domain=domain)
        msg["X-Wxcli-Kind"] = alert.kind
        msg["X-Wxcli-Severity"] = alert.severity
        if alert.severity == "critical":
            msg["Importance"] = "high"
        msg.set_content(render_text(alert, attachments_note=True))
        msg.add_alternative(render_html(alert), subtype="html")
        for att in alert.attachments:
            maintype, _, subtype = att.mime_type.partition("/")
            if not maintype or not subtype:
                maintype, subtype = "application", "octet-stream"
            msg.add_attachment(
                att.content, maintype=maintype, subtype=subtype, filename=att.filename
            )
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        if not self.verify_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, alert: Alert) -> None:
        msg = self.build_message(alert)
        try:
            self._deliver(msg)
        except AlertError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise AlertError(
                f"SMTP {exc.smtp_code} authentication failed for user {self.username!r} "
                f"at {self._where}: {_smtp_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(
                f"{addr} ({code} {_smtp_text(text)})"
                for addr, (code, text) in exc.recipients.items()
            )
            raise AlertError(
                f"SMTP server {self._where} refused every recipient: {refused}"
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise AlertError(
                f"SMTP {exc.smtp_code}: {self._where} refused sender {self.sender_address}: "
                f"{_smtp_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise AlertError(
                f"SMTP {exc.smtp_code} from {self._where}: {_smtp_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise AlertError(f"SMTP server {self._where}: {exc}") from exc
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib wraps read timeouts
                raise AlertError(
                    f"timed out after {self.timeout:g} s talking to {self._where}"
                ) from exc
            raise AlertError(f"SMTP server {self._where} closed the connection: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise AlertError(
                f"TLS certificate of {self._where} failed verification: "
                f"{exc.verify_message or exc.reason} (set ca_file to trust a private CA)"
            ) from exc
        except ssl.SSLError as exc:
            raise AlertError(
                f"TLS error with {self._where}: {exc.reason or exc}; check security "
                f'("ssl" is usually port 465, "starttls" port 587)'
            ) from exc
        except TimeoutError as exc:
            raise AlertError(
                f"timed out after {self.timeout:g} s talking to {self._where}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise AlertError(f"connection refused to {self._where}") from exc
        except socket.gaierror as exc:
            raise AlertError(f"cannot resolve SMTP host {self.host!r}: {exc.strerror}") from exc
        except smtplib.SMTPException as exc:  # before OSError: SMTPException subclasses it
            raise AlertError(f"SMTP error with {self._where}: {exc}") from exc
        except OSError as exc:
            raise AlertError(f"cannot reach {self._where}: {exc.strerror or exc}") from exc

    def _login(self, smtp: smtplib.SMTP) -> None:
        user, password = self.username or "", self._password or ""
        if user.isascii() and password.isascii():
            smtp.login(user, password)
            return
        # smtplib encodes credentials as ASCII and would crash on "pässword"; RFC 4954 SASL
        # takes UTF-8, so speak PLAIN or LOGIN ourselves for such credentials.
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in mechanisms:
            blob = b"\0" + user.encode() + b"\0" + password.encode()
            code, reply = smtp.docmd("AUTH", "PLAIN " + b64(blob))
        elif "LOGIN" in mechanisms:
            code, reply = smtp.docmd("AUTH", "LOGIN")
            if code == 334:
                code, reply = smtp.docmd(b64(user.encode()))
            if code == 334:
                code, reply = smtp.docmd(b64(password.encode()))
        else:
            raise AlertError(
                f"SMTP server {self._where} offers no AUTH mechanism for a non-ASCII password "
                f"(offered: {' '.join(mechanisms) or 'none'}; wxcli speaks PLAIN and LOGIN)"
            )
        if code not in (235, 503):  # 503: already authenticated
            raise smtplib.SMTPAuthenticationError(code, reply)

    def _deliver(self, msg: EmailMessage) -> None:
        ctx = self._tls_context() if self.security != "none" else None
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=ctx,
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        with smtp:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise AlertError(
                        f"SMTP server {self._where} does not offer STARTTLS; "
                        'use security = "ssl" (port 465) or, on a trusted network only, "none"'
                    )
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if self.username:
                if not smtp.has_extn("auth"):
                    raise AlertError(
                        f"SMTP server {self._where} does not offer AUTH"
                        + (
                            ' (it may require STARTTLS first: security = "starttls")'
                            if self.security == "none"
                            else ""
                        )
                    )
                self._login(smtp)
            refused = smtp.send_message(msg, from_addr=self.sender_address, to_addrs=self.to)
        if refused:
            # Some recipients got it: failing would make the dispatcher resend to them too.
            log.warning(
                "channel %s: SMTP server %s refused %s",
                self.name,
                self._where,
                ", ".join(f"{a} ({c})" for a, (c, _t) in refused.items()),
            )


def _smtp_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def _is_address(value: str) -> bool:
    """A bare mailbox like ops@example.com (a rough check; the SMTP server has the last word)."""
    return bool(_ADDRESS.fullmatch(value))
