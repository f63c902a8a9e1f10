"""Where history comes from: --data, the store, history_dir, shared data, else a simulated market."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from core.backtest import run_backtest
from core.backtest_data import find_history
from core.errors import FeedError
from core.store import Store
from tests.backtest.helpers import make_settings

START, END = date(2024, 1, 1), date(2024, 3, 31)


def _fill_store(path, days: int = 91) -> None:
    with Store.open(path) as store:
        for asset, price in (("BTC", 40_000), ("ETH", 2_000)):
            store.upsert_closes([(asset, START + timedelta(days=i), D(price + 10 * i)) for i in range(days)])
            t0 = datetime(2024, 1, 1, tzinfo=UTC)
            store.upsert_funding([("binance", f"{asset}/USDT:USDT", t0 + timedelta(hours=8 * k), D("0.0001"))
                                  for k in range(days * 3)])
        store.upsert_fear_greed([(START + timedelta(days=i), 50) for i in range(days)])


def test_the_store_comes_first_when_it_has_history_for_every_asset(tmp_path, monkeypatch):
    monkeypatch.setenv("PREMIA_SHARED_DATA", str(tmp_path / "nothing"))
    db = tmp_path / "premia.db"
    _fill_store(db)
    settings = make_settings(store_path=str(db))
    history = find_history(settings, ["BTC", "ETH"], START, END)
    assert history.description.startswith("history from the store")
    frame = history.frame
    assert frame.days[0] == START and len(frame.days) == 91
    assert len(frame.funding["BTC/USDT:USDT"]) == 273
    # Aggressive growth holds 7.5% net long futures per asset (band ±3): it pays the funding.
    result = run_backtest(frame, settings, "aggressive-growth", None, None)
    assert result.strategy.days == 91 and result.strategy.funding < 0


def test_without_store_or_files_it_refuses_unless_a_simulation_is_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("PREMIA_SHARED_DATA", str(tmp_path / "nothing"))
    settings = make_settings(store_path=str(tmp_path / "absent.db"))
    with pytest.raises(FeedError, match="no market history found"):
        find_history(settings, ["BTC", "ETH"], START, END)
    history = find_history(settings, ["BTC", "ETH"], START, END, allow_simulated=True)
    assert "simulated market" in history.description and "not real prices" in history.description
    assert history.frame.days[0] == START and history.frame.days[-1] == END


def test_an_explicit_data_folder_wins(shared_data, tmp_path):
    settings = make_settings(store_path=str(tmp_path / "absent.db"))
    history = find_history(settings, ["BTC", "ETH"], START, END, shared_data)
    assert history.description.startswith("CSV history in")
    assert history.perp_closes and history.perp_closes["BTC"]
