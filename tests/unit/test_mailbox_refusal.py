"""The local SMTP server (deploy/local/mailbox.py) can refuse mail for a while, as a real one
under maintenance does: the chaos run's SMTP outage."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace

REPO = Path(__file__).resolve().parents[2]


def mailbox_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mailbox_server", REPO / "deploy/local/mailbox.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def envelope() -> SimpleNamespace:
    return SimpleNamespace(mail_from="notifications@escrow.example", rcpt_tos=["buyer@acme.example"],
                           original_content=b"Subject: paid\r\nX-Escrow-Event-Id: e1\r\n\r\nhello\r\n",
                           content=None)


async def test_while_the_refuse_file_exists_mail_is_answered_451_and_not_kept(tmp_path: Path) -> None:
    mailbox = mailbox_module()
    handler = mailbox.SaveHandler(mailbox.Mailbox(tmp_path))
    (tmp_path / ".refuse").touch()

    assert (await handler.handle_DATA(None, None, envelope())).startswith("451 ")
    assert handler.box.entries() == [] and list(tmp_path.glob("*.eml")) == []

    (tmp_path / ".refuse").unlink()
    assert (await handler.handle_DATA(None, None, envelope())).startswith("250 ")
    [entry] = handler.box.entries()
    assert entry["x_escrow_event_id"] == "e1"
