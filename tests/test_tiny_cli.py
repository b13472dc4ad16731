"""CLI surface of the tiny model: help texts and user errors (one line, exit 2)."""

from __future__ import annotations

import pytest

from vniahd.cli import main


def test_help_texts(capsys):
    for cmd in (["train-tiny", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(cmd)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--variant" in out and "--seeds" in out and "Wilson" in out


def test_bad_inputs_are_one_line_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VNIAHD_CACHE", str(tmp_path))
    assert main(["train-tiny", "--variant", "no-such-variant"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert main(["train-tiny", "--variant", "mrope", "--steps", "0"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["demo", "--seeds", "x", "--out", str(tmp_path / "d")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["demo", "--variants", "mrope,bogus", "--out", str(tmp_path / "d")]) == 2
    assert "bogus" in capsys.readouterr().err


def test_backend_spec_errors():
    from vniahd.errors import VniahdError
    from vniahd.models import get_backend

    with pytest.raises(VniahdError, match="unknown tiny-model parameter"):
        get_backend("tiny?colour=red")
    with pytest.raises(VniahdError, match="whole number"):
        get_backend("tiny?seed=abc")
