"""A local SMTP server that keeps every mail where a person (or a test) can read it.

Each message is saved as ``<MAILBOX_DIR>/<stamp>-<id>.eml`` (the raw bytes as received)
and described by one JSON line in ``<MAILBOX_DIR>/index.jsonl``::

    {"received_at": "...", "mail_from": "...", "rcpt_tos": [...], "subject": "...",
     "file": "<name>.eml", "x_escrow_event_id": "...", "x_escrow_step": "...",
     "x_escrow_order_id": "..."}

(the last three only when the message has the ``X-Escrow-Event-Id`` / ``X-Escrow-Step`` /
``X-Escrow-Order-Id`` headers). A tiny read-only HTTP inbox is served next to it:

    /                  the mails, newest first
    /mail/<file>       one mail: its headers and its text part
    /raw/<file>        one mail as the raw .eml
    /api/messages      the index as a JSON list (oldest first); optional filters
                       ?event_id=...&step=...&to=...

While a file named ``.refuse`` exists in the mail folder, every mail is answered
``451 4.3.0`` and not kept: a mail server that is up but refuses mail for a while (the chaos
run makes it do so), so senders must retry.

Run with the project's venv (deploy/local/infra.sh does this)::

    .venv/bin/python deploy/local/mailbox.py --dir .run/mail --smtp-port 1025 --http-port 8025

Every option has an environment default: MAILBOX_DIR, MAILBOX_HOST, SMTP_PORT, MAIL_HTTP_PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import html
import json
import logging
import os
import re
import signal
import threading
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("mailbox")

INDEX_NAME = "index.jsonl"
REFUSE_NAME = ".refuse"
REFUSED = "451 4.3.0 Mail server refusing mail for now: try again later"
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.eml$")
ESCROW_HEADERS = {"X-Escrow-Event-Id": "x_escrow_event_id", "X-Escrow-Step": "x_escrow_step",
                  "X-Escrow-Order-Id": "x_escrow_order_id"}


# --------------------------------------------------------------------------- storage


class Mailbox:
    """Writes messages and their index lines; reads them back for the HTTP side."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index = self.dir / INDEX_NAME
        self._lock = threading.Lock()

    def store(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> dict[str, Any]:
        now = datetime.now(UTC)
        name = f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}.eml"
        msg = email.message_from_bytes(data, policy=email.policy.default)
        entry: dict[str, Any] = {
            "received_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "mail_from": mail_from,
            "rcpt_tos": list(rcpt_tos),
            "subject": _header(msg, "Subject"),
            "file": name,
        }
        for header, key in ESCROW_HEADERS.items():
            value = _header(msg, header)
            if value is not None:
                entry[key] = value
        tmp = self.dir / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.dir / name)
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, open(self.index, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def entries(self) -> list[dict[str, Any]]:
        try:
            text = self.index.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written right now
                continue
        return out

    def path_of(self, name: str) -> Path | None:
        if not FILE_RE.match(name):
            return None
        path = self.dir / name
        return path if path.is_file() else None


def _header(msg: EmailMessage, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a malformed header must not lose the mail: fall back to its raw text
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    return None if value is None else " ".join(str(value).split())  # unfolded, trimmed


def text_of(msg: EmailMessage) -> str:
    """The plain-text body; failing that, the HTML body with its tags stripped."""
    part = msg.get_body(preferencelist=("plain",))
    if part is not None:
        return part.get_content()
    part = msg.get_body(preferencelist=("html",))
    if part is not None:
        body = re.sub(r"(?is)<(script|style).*?</\1>", "", part.get_content())
        body = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</h\d>", "\n", body)
        return html.unescape(re.sub(r"<[^>]+>", "", body))
    return "(no text part)"


# --------------------------------------------------------------------------- SMTP


class SaveHandler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (self.box.dir / REFUSE_NAME).exists():
            log.info("refused a mail from=%s to=%s (%s exists)", envelope.mail_from,
                     ",".join(envelope.rcpt_tos), REFUSE_NAME)
            return REFUSED
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        entry = self.box.store(envelope.mail_from or "", list(envelope.rcpt_tos), data)
        log.info("saved %s from=%s to=%s subject=%r", entry["file"], entry["mail_from"],
                 ",".join(entry["rcpt_tos"]), entry["subject"])
        return "250 Message accepted for delivery"


# --------------------------------------------------------------------------- HTTP

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}}
table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}
th{{background:#f4f4f4}} pre{{white-space:pre-wrap;background:#fafafa;padding:1rem;border:1px solid #eee}}
.muted{{color:#777;font-size:.9em}}
</style></head><body>{body}</body></html>"""


def make_http_handler(box: Mailbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "escrow-mailbox/1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("http %s - " + fmt, self.address_string(), *args)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _page(self, status: int, title: str, body: str) -> None:
            page = PAGE.format(title=html.escape(title), body=body)
            self._send(status, page.encode("utf-8"), "text/html; charset=utf-8")

        def _not_found(self) -> None:
            self._page(HTTPStatus.NOT_FOUND, "not found", "<p>Not found. <a href='/'>Inbox</a></p>")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            if path == "/":
                self._index()
            elif path == "/api/messages":
                self._api(parse_qs(url.query))
            elif path.startswith("/mail/"):
                self._mail(path[len("/mail/"):])
            elif path.startswith("/raw/"):
                file = box.path_of(path[len("/raw/"):])
                if file is None:
                    return self._not_found()
                self._send(HTTPStatus.OK, file.read_bytes(), "message/rfc822")
            else:
                self._not_found()

        def _api(self, query: dict[str, list[str]]) -> None:
            entries = box.entries()
            filters = {"event_id": "x_escrow_event_id", "step": "x_escrow_step"}
            for param, key in filters.items():
                if param in query:
                    entries = [e for e in entries if e.get(key) in query[param]]
            if "to" in query:
                wanted = {t.lower() for t in query["to"]}
                entries = [e for e in entries if wanted & {r.lower() for r in e.get("rcpt_tos", [])}]
            body = json.dumps(entries, ensure_ascii=False).encode("utf-8")
            self._send(HTTPStatus.OK, body, "application/json")

        def _index(self) -> None:
            entries = list(reversed(box.entries()))
            rows = []
            for e in entries:
                name = html.escape(e.get("file", ""), quote=True)
                subject = html.escape(e.get("subject") or "(no subject)")
                step = e.get("x_escrow_step")
                step_html = f" <span class='muted'>[{html.escape(step)}]</span>" if step else ""
                rows.append(
                    "<tr>"
                    f"<td>{html.escape(e.get('received_at', ''))}</td>"
                    f"<td>{html.escape(', '.join(e.get('rcpt_tos', [])))}</td>"
                    f"<td><a href='/mail/{name}'>{subject}</a>{step_html}</td>"
                    f"<td>{html.escape(e.get('mail_from', ''))}</td>"
                    "</tr>"
                )
            table = (
                "<table><tr><th>received (UTC)</th><th>to</th><th>subject</th><th>from</th></tr>"
                + "".join(rows)
                + "</table>"
                if rows
                else "<p>No mail yet.</p>"
            )
            body = (
                f"<h1>Inbox</h1><p class='muted'>{len(entries)} message(s) in "
                f"{html.escape(str(box.dir))} &middot; <a href='/api/messages'>JSON</a></p>{table}"
            )
            self._page(HTTPStatus.OK, "Inbox", body)

        def _mail(self, name: str) -> None:
            file = box.path_of(name)
            if file is None:
                return self._not_found()
            msg = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
            try:
                text = text_of(msg)
            except Exception as exc:  # undecodable part: show the raw message instead
                text = f"(could not decode the body: {exc})\n\n" + file.read_bytes().decode("utf-8", "replace")
            shown = ["From", "To", "Cc", "Subject", "Date", "Message-ID", *ESCROW_HEADERS]
            head = "".join(
                f"<tr><th>{html.escape(h)}</th><td>{html.escape(v)}</td></tr>"
                for h in shown
                if (v := _header(msg, h)) is not None
            )
            qname = html.escape(name, quote=True)
            body = (
                f"<p><a href='/'>&larr; Inbox</a> &middot; <a href='/raw/{qname}'>raw .eml</a></p>"
                f"<table>{head}</table><pre>{html.escape(text)}</pre>"
            )
            self._page(HTTPStatus.OK, _header(msg, "Subject") or name, body)

    return Handler


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(description="Local SMTP server that keeps every mail (+ HTTP inbox).")
    p.add_argument("--dir", default=env.get("MAILBOX_DIR", ".run/mail"), help="folder for .eml files and index.jsonl")
    p.add_argument("--host", default=env.get("MAILBOX_HOST", "127.0.0.1"), help="address to bind both servers to")
    p.add_argument("--smtp-port", type=int, default=int(env.get("SMTP_PORT", "1025")))
    p.add_argument("--http-port", type=int, default=int(env.get("MAIL_HTTP_PORT", "8025")))
    p.add_argument("--log-level", default=env.get("MAILBOX_LOG_LEVEL", "INFO"))
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    box = Mailbox(Path(args.dir).resolve())
    loop = asyncio.get_running_loop()

    httpd = ThreadingHTTPServer((args.host, args.http_port), make_http_handler(box))
    httpd.daemon_threads = True
    http_thread = threading.Thread(target=httpd.serve_forever, name="mailbox-http", daemon=True)

    handler = SaveHandler(box)
    smtp_server = await loop.create_server(
        lambda: SMTP(handler, hostname="mailbox.local", ident="escrow-mailbox", data_size_limit=50 * 1024 * 1024),
        host=args.host,
        port=args.smtp_port,
    )
    http_thread.start()
    log.info("SMTP on %s:%d, inbox on http://%s:%d/, mail in %s",
             args.host, args.smtp_port, args.host, args.http_port, box.dir)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    log.info("stopping")
    smtp_server.close()
    try:
        await asyncio.wait_for(smtp_server.wait_closed(), timeout=5)
    except TimeoutError:
        log.warning("an SMTP client kept its connection open; stopping anyway")
    httpd.shutdown()
    httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logging.getLogger().level > logging.DEBUG:
        # aiosmtpd logs every SMTP command at INFO; one line per saved mail is enough here
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
