"""oauth.json holds the client secret: it is read only when this user owns it
and nobody else can read or change it (ssh's rules for a private key).
The tests run as root: "another user" is the nobody account."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from intercom_fsm.config import ConfigError, load_config

NOBODY = 65534
SECRET = "client-secret-in-oauth-json-9931"
ENVIRON = {
    "HTTP_API_BASE_URL": "https://api.example.com",
    "WEBSOCKET_API_BASE_URL": "wss://api.example.com",
}


def oauth_file(tmp_path: Path, mode: int = 0o600, secret: bool = True) -> Path:
    directory = tmp_path / "intercom-api"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / "oauth.json"
    document = {"client_id": "from-file", **({"client_secret": SECRET} if secret else {})}
    path.write_text(json.dumps(document))
    path.chmod(mode)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(ENVIRON, oauth_file=path)
    assert str(path) in caught.value.variable
    assert SECRET not in str(caught.value)
    return caught.value.problem


def test_a_private_file_of_ours_is_read(tmp_path: Path) -> None:
    config = load_config(ENVIRON, oauth_file=oauth_file(tmp_path))
    assert (config.oauth.client_id, config.oauth.client_secret) == ("from-file", SECRET)


def test_a_file_others_can_read_is_refused_when_it_holds_the_secret(tmp_path: Path) -> None:
    assert "others can read the client secret; chmod 600 it" in refusal(oauth_file(tmp_path, 0o644))
    # Without a secret there is nothing to keep from them.
    public = oauth_file(tmp_path, 0o644, secret=False)
    assert load_config(ENVIRON, oauth_file=public).oauth.client_id == "from-file"


def test_a_file_others_can_change_is_refused(tmp_path: Path) -> None:
    assert "others can change it" in refusal(oauth_file(tmp_path, 0o622, secret=False))


def test_a_file_another_user_owns_is_refused(tmp_path: Path) -> None:
    path = oauth_file(tmp_path)
    os.chown(path, NOBODY, NOBODY)
    assert f"owned by uid {NOBODY}" in refusal(path)


def test_a_file_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    path = oauth_file(tmp_path)
    path.parent.chmod(0o777)
    assert "others can write to it" in refusal(path)


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    target = oauth_file(tmp_path)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert "symbolic link" in refusal(link)
