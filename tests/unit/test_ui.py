"""Prompts never block without a TTY: they fail naming the flag that answers them."""

import pytest

from deployer import ui


def test_choose_without_tty_names_the_flag_and_existing_options():
    with pytest.raises(ui.MissingAnswer, match=r"pass --application \(existing: a, b\)"):
        ui.choose("Which Elastic Beanstalk application?", ["a", "b"], "--application", interactive=False)


def test_confirm_without_tty_names_yes():
    with pytest.raises(ui.MissingAnswer, match="pass --yes"):
        ui.confirm("Create environment?", interactive=False)
    assert ui.confirm("Create environment?", assume_yes=True, interactive=False)


def test_choose_on_a_terminal_accepts_number_name_and_default(monkeypatch):
    answers = iter(["9", "2", "", "new-app"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert ui.choose("Pick", ["a", "b"], "--x", interactive=True) == "b"
    assert ui.choose("Pick", ["a", "b"], "--x", default="a", interactive=True) == "a"
    assert ui.choose("Pick", ["a", "b"], "--x", allow_new=True, interactive=True) == "new-app"


def test_redact_masks_registered_secrets(capsys):
    ui.register_secret("tok-1234567890")
    ui.say("pushing with tok-1234567890 now")
    assert capsys.readouterr().out == "pushing with ******** now\n"
