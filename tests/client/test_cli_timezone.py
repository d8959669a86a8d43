"""The CLI's 'today' is the services' business day: a flag or CAIXA_TIMEZONE says
which zone that is, and an unknown zone is a usage error naming it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from caixa.cli.dates import business_today
from caixa.cli.parser import build_parser


def test_the_zone_defaults_to_the_services_and_follows_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CAIXA_TIMEZONE", raising=False)
    assert build_parser().parse_args(["balance", "--merchant", "m"]).timezone == (
        "America/Sao_Paulo"
    )
    monkeypatch.setenv("CAIXA_TIMEZONE", "Asia/Tokyo")
    assert build_parser().parse_args(["balance", "--merchant", "m"]).timezone == "Asia/Tokyo"
    args = build_parser().parse_args(["balance", "--merchant", "m", "--timezone", "UTC"])
    assert args.timezone == "UTC"


def test_an_unknown_zone_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--timezone", "Mars/Base", "balance", "--merchant", "m"])
    assert exit_.value.code == 2
    assert "unknown time zone 'Mars/Base'" in capsys.readouterr().err


def test_today_is_the_zones_day() -> None:
    # Kiritimati (UTC+14) and Pago Pago (UTC-11) are never on the same day.
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        assert business_today(zone) == datetime.now(ZoneInfo(zone)).date()
    assert business_today("Pacific/Kiritimati") != business_today("Pacific/Pago_Pago")
