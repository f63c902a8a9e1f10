"""Secrets planted in config addresses and ccxt options reach no log, store row, chat reply or screen."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.cli import main
from core.config import redacted, settings_from_dict
from core.redact import describe, is_secret_key, mask_secrets, scrub_text
from core.store import Store
from tests.chatbot.test_commands_world import TRADER, make_world, settings_for
from tests.engine import loopback_config, write_toml

MARKER = "hunter2-MARKER-7f3k"
ROOT = Path(__file__).resolve().parents[2]
CLOSED = "127.0.0.1:9"  # the discard port on the loopback: nothing listens, connections are refused


def planted_config(tmp_path: Path) -> dict:
    """A config whose every address and ccxt option carries the marker password."""
    cfg = loopback_config(f"http://user:{MARKER}@{CLOSED}", f"http://fng:{MARKER}@{CLOSED}/fng/?key={MARKER}",
                          tmp_path / "premia.db", retries=1, timeout_seconds=2.0)
    cfg["exchanges"]["binance"]["options"] = {"secret": MARKER, "apiKey": MARKER, "password": MARKER,
                                              "uid": MARKER, "adjustForTimeDifference": True}
    cfg["chat"] = {"telegram": {"base_url": f"https://bot:{MARKER}@telegram.example/bot",
                                "traders": [1001]}}
    return cfg


@pytest.mark.parametrize("text", [
    f"binance GET http://user:{MARKER}@{CLOSED}/api/v3/exchangeInfo",
    f"binance GET https://api.binance.com/sapi/v1/account?timestamp=1&signature={MARKER} 401",
    f"wss://{MARKER}@stream.example:9443/ws",
    f"http://user:pa@ss{MARKER}@host.example/x",
    f"http://user:pa?ss{MARKER}@host.example/x",
    f"https://host.example/cb#access_token={MARKER}",
    f"BasicAuth(login='user', password='{MARKER}', encoding='latin1')",
    f'{{"secret": "{MARKER}", "apiKey": "{MARKER}"}}',
])
def test_free_text_loses_url_credentials_query_strings_and_secret_pairs(text):
    assert MARKER not in scrub_text(text)


def test_scrubbed_urls_keep_the_host_and_path_so_the_message_still_helps():
    out = scrub_text(f"GET http://user:{MARKER}@{CLOSED}/api/v3/time?x=1 refused")
    assert out == f"GET http://<redacted>@{CLOSED}/api/v3/time?… refused"


def test_telegram_bot_tokens_in_free_text_become_a_placeholder():
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    assert scrub_text(f"POST https://api.telegram.org/bot{token}/sendMessage") == (
        "POST https://api.telegram.org/bot<token>/sendMessage")


def test_describe_keeps_the_class_and_drops_the_password_of_a_url():
    exc = ConnectionError(f"binance GET http://user:{MARKER}@{CLOSED}/api\nsecond line")
    assert describe(exc) == f"ConnectionError: binance GET http://<redacted>@{CLOSED}/api"


@pytest.mark.parametrize("name", ["apiKey", "api_key", "secret", "SECRET", "password", "passphrase",
                                  "token", "uid", "privateKey", "walletPrivateKey", "accessToken"])
def test_secret_named_keys_are_recognised(name):
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["secret_env", "api_key_env", "token_env", "fluid", "keys", "defaultType",
                                  "adjustForTimeDifference", "recvWindow", "ccxt_id", "base_url"])
def test_ordinary_keys_and_environment_variable_names_are_not_secret(name):
    assert not is_secret_key(name)


def test_mask_secrets_reaches_nested_tables_and_lists():
    data = {"options": {"nested": {"Password": MARKER}, "list": [f"http://a:{MARKER}@h"]}, "n": 3}
    masked = mask_secrets(data)
    assert MARKER not in json.dumps(masked)
    assert masked["options"]["nested"]["Password"] == "<redacted>" and masked["n"] == 3


def test_redacted_settings_hide_url_credentials_and_option_secrets(tmp_path):
    data = redacted(settings_from_dict(planted_config(tmp_path)))
    assert MARKER not in json.dumps(data)
    binance = data["exchanges"]["binance"]
    assert binance["urls"]["*"] == f"http://<redacted>@{CLOSED}"
    assert binance["options"]["apiKey"] == "<redacted>" and binance["options"]["adjustForTimeDifference"]
    assert data["chat"]["telegram"]["base_url"] == "https://<redacted>@telegram.example/bot"


def test_a_delivery_failure_quoting_a_base_url_with_credentials_is_stored_without_them(tmp_path):
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with Store.open(tmp_path / "s.db") as store:
        alert = store.enqueue_alert("k", "rule", {}, now, timedelta(minutes=1))
        store.mark_failed(alert, "telegram", f"POST https://bot:{MARKER}@telegram.example/bot/send", now)
        [pending] = store.pending_alerts("telegram", now)
    assert MARKER not in pending["last_error"] and "telegram.example" in pending["last_error"]


def every_text_value(db_path: Path) -> list[str]:
    """Every text and blob value of every table of a SQLite file."""
    db = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        values = []
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                values += [v.decode(errors="replace") if isinstance(v, bytes) else v
                           for v in row if isinstance(v, str | bytes)]
        return values
    finally:
        db.close()


def test_poll_once_against_a_dead_address_with_a_password_leaks_it_nowhere(tmp_path):
    cfg = write_toml(tmp_path / "premia.toml", planted_config(tmp_path))
    env = {**os.environ, "PREMIA_CONFIG": ""}
    outputs = []
    for extra in ([], ["--json"], ["-v"]):
        run = subprocess.run([sys.executable, "-m", "chatbot.cli", *extra, "poll-once", "--config", str(cfg)],
                             capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
        assert run.returncode == 2, run.stderr
        outputs += [run.stdout, run.stderr]
    assert "no market data" in outputs[1] and f"<redacted>@{CLOSED}" in outputs[1]  # the leak path ran
    assert "retrying after" in outputs[5]  # the retry log line, another leak path, ran too
    for text in outputs:
        assert MARKER not in text
    stored = every_text_value(tmp_path / "premia.db")
    assert any(f"<redacted>@{CLOSED}" in v for v in stored)  # flags, job_runs and alerts name the URL
    assert [v for v in stored if MARKER in v] == []


def test_check_config_masks_addresses_and_secret_named_options(tmp_path, capsys):
    cfg = write_toml(tmp_path / "premia.toml", planted_config(tmp_path))
    assert main(["check-config", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert main(["check-config", "--config", str(cfg), "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert MARKER not in text and MARKER not in json.dumps(as_json)
    assert 'apiKey: "<redacted>"' in text and f'*: "http://<redacted>@{CLOSED}"' in text
    assert as_json["exchanges"]["binance"]["options"]["password"] == "<redacted>"


async def test_settings_reply_masks_addresses_and_secret_named_options(tmp_path):
    raw = planted_config(tmp_path)
    settings = settings_for(exchanges=raw["exchanges"], feeds=raw["feeds"], chat=raw["chat"])
    world = make_world(tmp_path, settings=settings)
    try:
        short = (await world.dispatcher.handle_text(TRADER, "/settings")).as_plain_text()
        full = (await world.dispatcher.handle_text(TRADER, "/settings full")).as_plain_text()
    finally:
        world.store.close()
    assert "Exchange binance" in short and MARKER not in short
    assert f"exchanges.binance.urls.* = http://<redacted>@{CLOSED}" in full
    assert "exchanges.binance.options.secret = <redacted>" in full
    assert "chat.telegram.base_url = https://<redacted>@telegram.example/bot" in full
    assert MARKER not in full


def test_a_logged_traceback_of_an_exchange_error_is_scrubbed_too():
    import io
    import logging

    from core.redact import ScrubFilter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("premia.test.scrub")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("binance GET https://bot:LOGMARK1@api.example/x?signature=LOGMARK2 503")
        except RuntimeError:
            logger.exception("cycle failed at %s", "https://u:LOGMARK3@h.example/p")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "LOGMARK" not in text
    assert "cycle failed at https://<redacted>@h.example/p" in text
    assert "Traceback" in text and "RuntimeError: binance GET https://<redacted>@api.example/x?…" in text
