"""Reading the config file: every unreadable file is named with the problem, exit 2, no traceback."""

from __future__ import annotations

import os
import tomllib

import pytest

from chatbot.cli import main
from core.config import load_presets, load_settings
from core.errors import ConfigError


def check_config_error(capsys, path) -> str:
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("premia check-config:") and "Traceback" not in err
    return err


def test_a_config_that_is_not_utf8_is_named_and_explained(tmp_path, capsys):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('quote = "USDT" # café\n'.encode("latin-1"))
    err = check_config_error(capsys, cfg)
    assert f"config file {cfg} is not UTF-8 text" in err


def test_a_folder_given_as_the_config_is_named_and_explained(tmp_path, capsys):
    err = check_config_error(capsys, tmp_path)
    assert f"config path {tmp_path} is a folder" in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_config_is_named_with_the_reason(tmp_path, capsys):
    cfg = tmp_path / "locked.toml"
    cfg.write_text('quote = "USDT"\n')
    cfg.chmod(0)
    err = check_config_error(capsys, cfg)
    assert f"cannot read config file {cfg}: Permission denied" in err


def test_load_settings_raises_config_error_not_unicode_error(tmp_path):
    cfg = tmp_path / "binary.toml"
    cfg.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(cfg)


def test_a_broken_presets_file_asks_for_a_reinstall(tmp_path):
    presets = tmp_path / "presets.toml"
    presets.write_text("[broken\n")
    with pytest.raises(ConfigError, match="reinstall Premia"):
        load_presets(presets)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(presets.read_text())  # the file really is broken TOML
