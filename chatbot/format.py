"""Pure text formatting for phones: money, percentages, times, and the proposal message.

Short lines, thousands separators, a true minus sign, UTC times said as such. No I/O and no
clock: `now` is always an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from chatbot.replies import Button, Reply, Table
from core.execution_report import ExecutionReport
from core.models import Order, Proposal

MINUS = "−"
STATUS_WORDS = {
    "proposed": "awaiting approval",
    "approved": "approved",
    "executing": "executing",
    "executed": "executed",
    "partially_executed": "partly executed",
    "failed": "failed",
    "rejected": "rejected",
    "expired": "expired",
    "superseded": "superseded",
}


def _signed(text: str, negative: bool, signed: bool) -> str:
    if negative:
        return MINUS + text
    return ("+" if signed else "") + text


def money(x: Decimal | float | int, places: int = 2) -> str:
    """12345.678 → "12,345.68"; large sums drop cents (≥ 100,000)."""
    d = Decimal(str(x))
    if abs(d) >= 100_000:
        places = 0
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return _signed(f"{abs(q):,.{places}f}", q < 0, False)


def amount(x: Decimal | float | int) -> str:
    """A coin quantity with at most 6 significant decimals and no trailing zeros: 0.012345."""
    d = Decimal(str(x))
    if d == 0:
        return "0"
    a = abs(d)
    places = 2 if a >= 1000 else 4 if a >= 1 else min(8, 5 - a.adjusted())
    text = f"{a:,.{places}f}".rstrip("0").rstrip(".")
    return _signed(text, d < 0, False)


def pct(x: Decimal | float | None, places: int = 1, *, signed: bool = False) -> str:
    """A fraction as a percentage: 0.1095 → "11.0%" (signed: "+11.0%", "−2.0%")."""
    if x is None:
        return "n/a"
    v = Decimal(str(x)) * 100
    q = v.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return _signed(f"{abs(q):,.{places}f}%", q < 0, signed)


def pp(x: Decimal | float, places: int = 1) -> str:
    """A drift in percentage points: +1.2, −3.4 (the column header says pp)."""
    q = Decimal(str(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return _signed(f"{abs(q):.{places}f}", q < 0, True)


def span(delta: timedelta) -> str:
    """A duration for people: "45 s", "12 min", "2 h 30 min", "3 d 4 h"."""
    s = int(abs(delta.total_seconds()))
    if s < 60:
        return f"{s} s"
    m = s // 60
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h" + (f" {m} min" if m else "")
    d, h = divmod(h, 24)
    return f"{d} d" + (f" {h} h" if h else "")


def ago(then: datetime, now: datetime) -> str:
    """ "just now", "3 min ago", "2 h ago"."""
    delta = now - then
    if delta < timedelta(seconds=10):
        return "just now" if delta > -timedelta(seconds=10) else "in " + span(delta)
    return span(delta) + " ago"


def clock(t: datetime, now: datetime | None = None) -> str:
    """ "12:05 UTC", with the day when it is not today: "2 Jun 12:05 UTC"."""
    t = t.astimezone(now.tzinfo) if now is not None and now.tzinfo else t
    if now is not None and t.date() == now.date():
        return f"{t:%H:%M} UTC"
    return f"{t.day} {t:%b %H:%M} UTC"


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " "))


# ── proposals ───────────────────────────────────────────────────────────────────────────────


def proposal_buttons(proposal_id: str) -> tuple[Button, ...]:
    return (
        Button("Approve", f"approve:{proposal_id}", "primary"),
        Button("Reject", f"reject:{proposal_id}", "danger"),
    )


def _leg_what(symbol: str, market: str) -> str:
    """`BTC` for spot, `BTC perp` or `BTC future` for the overlay, as the proposal shows them."""
    asset = symbol.split("/")[0]
    return asset if market == "spot" else f"{asset} {market}"


def _order_row(o: Order) -> tuple[str, ...]:
    what = _leg_what(o.symbol, o.market)
    return (str(o.leg + 1), o.side, what, amount(o.amount * o.contract_size), money(o.notional, 0))


def orders_table(orders: Iterable[Order], quote: str) -> Table:
    """One row per leg: #, side, what, amount (base units), notional in the quote currency."""
    return Table(("#", "side", "what", "amount", quote), tuple(_order_row(o) for o in orders))


def _why(p: Proposal) -> list[str]:
    lines = [f"• {t.explanation}" for t in p.triggers[:6]]
    if len(p.triggers) > 6:
        lines.append(f"• and {len(p.triggers) - 6} more")
    return lines


def _costs(p: Proposal, quote: str) -> str:
    traded = sum((o.notional for o in p.orders), Decimal(0))
    total = p.est_fees + p.est_slippage
    share = f" ({pct(total / traded, 2)} of {money(traded, 0)} traded)" if traded else ""
    parts = f"fees {money(p.est_fees)} + slippage {money(p.est_slippage)}"
    return f"Costs ≈ {money(total)} {quote}: {parts}{share}"


def _carry(p: Proposal) -> str | None:
    if p.expected_carry_apr is None:
        return None
    hurdle = p.hurdle_apr
    if hurdle is None:
        return f"Expected carry {pct(p.expected_carry_apr)} a year"
    verdict = "clears" if p.expected_carry_apr >= hurdle else "is BELOW"
    return f"Expected carry {pct(p.expected_carry_apr)} a year {verdict} the {pct(hurdle)} hurdle"


def weights_line(weights: Mapping[str, Decimal], limit: int = 8) -> str:
    """ "BTC 24% · ETH 16% · USDT 20%", largest first."""
    ranked = sorted(weights.items(), key=lambda kv: -kv[1])[:limit]
    return " · ".join(f"{a} {pct(w, 0)}" for a, w in ranked if w)


def proposal_lines(p: Proposal, quote: str) -> list[str]:
    """Why, costs, carry and exposure of a proposal (the orders go in a table)."""
    lines = ["Why:", *_why(p)] if p.triggers else []
    if p.orders:
        lines.append(_costs(p, quote))
    carry = _carry(p)
    if carry:
        lines.append(carry)
    before, after = p.net_futures_exposure_before, p.net_futures_exposure_after
    if before != after:
        lines.append(f"Net futures {pct(before, signed=True)} → {pct(after, signed=True)}")
    if p.orders and p.weights_after:
        lines.append("After: " + weights_line(p.weights_after))
    lines.extend(f"⚠ {w}" for w in p.warnings[:5])
    return lines


def proposal_reply(
    p: Proposal,
    quote: str,
    now: datetime,
    *,
    status: str = "proposed",
    note: str = "",
    with_buttons: bool = True,
) -> Reply:
    """The proposal message: title with its state, why, orders, costs; buttons while it is open."""
    open_ = status == "proposed" and p.expires_at > now
    if open_:
        head = f"Proposal {p.id} · expires in {span(p.expires_at - now)}"
    elif status == "proposed":
        head = f"Proposal {p.id} · expired"
    else:
        head = f"Proposal {p.id} · {status_word(status)}"
    lines = [note] if note else []
    if not p.orders:
        lines.append("No orders: nothing to trade right now.")
    lines.extend(proposal_lines(p, quote))
    if open_ and p.orders:
        lines.append(f"Value {money(p.value, 0)} {quote} · strategy {p.strategy}")
    tables = (orders_table(p.orders, quote),) if p.orders else ()
    buttons = proposal_buttons(p.id) if open_ and with_buttons and p.orders else ()
    extra = {"expires_in_s": str(max(1, int((p.expires_at - now).total_seconds())))} if buttons else {}
    return Reply(text="\n".join(lines), title=head, tables=tables, buttons=buttons, subject=p.id,
                 extra=extra)


def execution_parts(report: ExecutionReport, quote: str) -> tuple[str, Table | None]:
    """An execution report for a phone: a summary, then one table row per leg."""
    done = sum(1 for f in report.fills if f.status == "filled")
    lines = [f"{status_word(report.status).capitalize()}: {done} of {len(report.fills)} legs filled"]
    slips = [(f.slippage, f.filled * (f.avg_price or 0)) for f in report.fills
             if f.slippage is not None and f.filled]
    weight = sum((w for _, w in slips), Decimal(0))
    slip = f" · slippage {pct(sum((s * w for s, w in slips), Decimal(0)) / weight, 2, signed=True)}" \
        if weight else ""
    lines.append(f"Fees {money(report.fees)} {quote}{slip}")
    lines.append(f"Funding at the next settlement {money(report.funding)} {quote}"
                 + (" (received)" if report.funding > 0 else " (paid)" if report.funding < 0 else ""))
    if report.weights_after:
        lines.append("Now: " + weights_line(report.weights_after))
    lines.append(f"Net futures {pct(report.net_futures_exposure_after, signed=True)}")
    lines.extend(f"• {m}" for m in report.messages[:6])
    lines.extend(f"• leg {f.leg + 1}: {f.message}" for f in report.fills if f.message)
    if not report.fills:
        return "\n".join(lines), None
    rows = tuple((str(f.leg + 1), f.side, _leg_what(f.symbol, f.market),
                  f"{amount(f.filled)}/{amount(f.planned)}",
                  money(f.avg_price) if f.avg_price is not None else "—", f.status)
                 for f in report.fills)
    return "\n".join(lines), Table(("#", "side", "market", "filled", "avg", "state"), rows)


def weights_table(rows: Iterable[tuple[str, Decimal, Decimal]]) -> Table:
    """asset, weight now, target, drift (pp)."""
    return Table(("asset", "now", "target", "pp"),
                 tuple((a, pct(w), pct(t), pp((w - t) * 100)) for a, w, t in rows))


def key_values(items: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """ "key: value" lines."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return "\n".join(f"{k}: {v}" for k, v in pairs)
