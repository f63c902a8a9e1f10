"""Switches and settings: /pause, /resume, /mute and /settings.

Every switch is a store flag written (and audited) before anything depends on it, so it holds
across restarts and for every transport at once.
"""

from __future__ import annotations

from typing import Any

from chatbot import format as fmt
from chatbot import parsing
from chatbot.handlers import Request, active_mutes, pause_line, rule_names
from chatbot.replies import Reply
from core.config import Settings, redacted


def _audit(req: Request, action: str, subject: str, detail: str = "") -> None:
    req.services.store.audit(req.now, req.actor, req.caller.transport, req.caller.chat_id or None,
                             action, subject, detail)


async def pause(req: Request) -> Reply:
    """Block approvals (and automatic execution) until /resume."""
    req.need_args(0, 0)
    s, now = req.services, req.now
    line = pause_line(s, now)
    if line is not None:
        return Reply(text=f"Already paused. {line}")
    s.store.set_flag("paused", {"by": req.caller.display_name or req.actor, "actor": req.actor,
                                "via": req.caller.transport, "at": now.isoformat()}, now)
    _audit(req, "pause", "trading")
    return Reply(title="⏸ Paused",
                 text="Nothing is approved or executed until /resume, and no new proposal is made. Polls and "
                      "alerts go on, so you still hear when a rule fires; /plan shows what I would propose.")


async def resume(req: Request) -> Reply:
    """Lift /pause."""
    req.need_args(0, 0)
    if not req.services.store.clear_flag("paused"):
        return Reply(text="Trading is not paused.")
    _audit(req, "resume", "trading")
    return Reply(title="▶ Resumed", text="Approvals work again. /plan shows the open proposal.")


async def mute(req: Request) -> Reply:
    """Silence one rule's alerts (or "all") for a while; "off" ends a mute."""
    req.need_args(0, 2)
    s, now = req.services, req.now
    names = rule_names(s.settings)
    choices = [*names, "all"]
    if not req.args:
        running = active_mutes(s, now)
        lines = [f"🔇 {r} until {fmt.clock(u, now)}" for r, u in running.items()] or ["Nothing is muted."]
        lines.append("Rules: " + ", ".join(choices))
        return Reply(text="\n".join(lines) + f"\nUsage: {req.usage}")
    if len(req.args) != 2:
        raise req.usage_error("Say which rule and for how long, e.g. /mute volatility_spike 2h.")
    rule = parsing.choice(req.args[0], choices, "rule")
    if req.args[1].strip().lower() in ("off", "0", "none"):
        if not s.store.clear_flag(f"mute:{rule}"):
            return Reply(text=f"{rule} was not muted.")
        _audit(req, "unmute", rule)
        return Reply(text=f"🔔 {rule} alerts are back on.")
    span = parsing.duration(req.args[1])
    until = now + span
    s.store.set_flag(f"mute:{rule}", {"until": until.isoformat(), "by": req.actor}, now)
    _audit(req, "mute", rule, f"until {until.isoformat()}")
    what = "every alert" if rule == "all" else f"{rule} alerts"
    return Reply(text=f"🔇 Muted {what} for {fmt.span(span)}, until {fmt.clock(until, now)}. "
                      f"/mute {rule} off ends it sooner.")


# ── /settings ───────────────────────────────────────────────────────────────────────────────


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """`key.path = value` pairs of the redacted dump (`redacted()` already masked the secrets)."""
    if isinstance(data, dict):
        out: list[tuple[str, str]] = []
        for k, v in data.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        return [kv for i, x in enumerate(data) for kv in _flatten(x, f"{prefix}[{i}]")]
    return [(prefix, "none" if data is None else str(data))]


def summary(settings: Settings, data: dict[str, Any]) -> list[str]:
    """The settings people ask about, from the redacted dump (secret variables: set / not set)."""
    st = settings.strategy
    enabled = [name for name, rule in data["strategy"]["rules"].items()
               if isinstance(rule, dict) and rule.get("enabled")]
    assets = ", ".join(f"{a} ({c['bucket']} {c['split']})" for a, c in data["assets"].items())
    lines = [
        f"Mode: {settings.mode} · quote {settings.quote} · stables {', '.join(settings.stablecoins)}",
        f"Strategy: {st.name} · band ±{st.band_pp} pp",
        "Rules on: " + (", ".join(enabled) or "none"),
        f"Assets: {assets}",
    ]
    for name, ex in data["exchanges"].items():
        keys = [str(ex[k]) for k in ("api_key_env", "secret_env") if ex.get(k)]
        line = f"Exchange {name}: {ex['ccxt_id']}/{ex['futures_ccxt_id']}"
        line += (f" · keys {', '.join(keys)}" if keys else "") + (" · sandbox" if ex["sandbox"] else "")
        lines.append(line)
    p, sch = settings.proposals, settings.scheduler
    lines += [
        f"Poll every {sch.poll_minutes} min · alert cooldown {sch.alert_cooldown_minutes} min",
        f"Proposals expire after {p.expiry_minutes} min · price tolerance {fmt.pct(p.price_tolerance)}"
        f" · auto-execute {'ON' if p.auto_execute else 'off'}",
        f"Order caps: {fmt.money(settings.orders.max_order_notional, 0)} per order, "
        f"{fmt.money(settings.orders.max_daily_turnover, 0)} a day",
    ]
    chat = data["chat"]
    for t in ("telegram", "discord"):
        c = chat[t]
        where = len(c.get("chat_ids", c.get("channel_ids", [])))
        lines.append(f"{t.title()}: {c['token_env']} · {len(c['traders'])} trader(s), "
                     f"{len(c['viewers'])} viewer(s), {where} alert chat(s)")
    lines.append(f"Console role: {settings.chat.console_role} · store {settings.db_path}")
    return lines


async def settings(req: Request) -> Reply:
    """The effective config with secrets redacted; "/settings full" lists every key."""
    req.need_args(0, 1)
    full = req.arg(0) is not None and parsing.choice(req.arg(0) or "", ("full",), "option") == "full"
    cfg = req.services.settings
    data = redacted(cfg)
    if full:
        text = "\n".join(f"{k} = {v}" for k, v in _flatten(data))
        return Reply(title="Settings (all keys)", text=text)
    return Reply(title="Settings", text="\n".join([*summary(cfg, data), "/settings full lists every key."]))
