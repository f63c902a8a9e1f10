"""The API hosts the loopback exchange answers for.

A ccxt client pointed at the loopback server (`ExchangeConfig.urls = {"*": server.prefix}`) asks
for `PREFIX/<original host>/<path>`: routes and faults are addressed by these original hosts.
"""

BINANCE_SPOT = "api.binance.com"
BINANCE_FAPI = "fapi.binance.com"
BINANCE_DAPI = "dapi.binance.com"
BYBIT = "api.bybit.com"
OKX = "www.okx.com"
