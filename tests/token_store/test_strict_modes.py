"""Who may have written the token file (ssh's StrictModes), its expiry's
bounds, and the lock that keeps a second process off it. The tests run as
root: "another user" is the nobody account, given the files with chown."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_fsm import cli
from intercom_fsm.adapters.token_lock import TokenFileLocked, TokenLock
from intercom_fsm.adapters.token_store import TokenStore, TokenStoreError
from intercom_fsm.daemon.app import load_tokens
from intercom_fsm.events import StoredTokens

NOBODY = 65534
TOKENS = StoredTokens("access-token-MODE-1111", "refresh-token-MODE-2222", 1.9e9, "device-code-M")


def stored(tmp_path: Path) -> TokenStore:
    store = TokenStore(tmp_path / "config" / "tokens.json")
    store.save(TOKENS)
    return store


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_file_another_user_owns_is_not_used(tmp_path: Path) -> None:
    store = stored(tmp_path)
    os.chown(store.path, NOBODY, NOBODY)
    load = store.load()
    assert load.tokens is None
    assert f"owned by uid {NOBODY}, not by this user (uid {os.geteuid()})" in str(load.problem)


def test_a_directory_another_user_owns_is_not_trusted(tmp_path: Path) -> None:
    store = stored(tmp_path)
    os.chown(store.path.parent, NOBODY, NOBODY)
    load = store.load()
    assert load.tokens is None
    assert f"directory {store.path.parent} is owned by uid {NOBODY}" in str(load.problem)
    with pytest.raises(TokenStoreError, match="owned by uid"):
        store.save(TOKENS)


def test_a_directory_of_ours_others_can_write_is_tightened_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = stored(tmp_path)
    store.path.parent.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="intercom_fsm.adapters.token_store"):
        load = store.load()
    assert load.tokens == TOKENS
    assert mode_of(store.path.parent) == 0o755
    assert any("had mode 0777: others could write" in r.getMessage() for r in caplog.records)


def test_a_symlinked_directory_is_followed_only_when_the_link_is_ours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = stored(tmp_path)
    link = tmp_path / "linked"
    link.symlink_to(store.path.parent, target_is_directory=True)
    through_link = TokenStore(link / "tokens.json")
    with caplog.at_level(logging.WARNING, logger="intercom_fsm.adapters.token_store"):
        assert through_link.load().tokens == TOKENS
    assert any("is a symbolic link to" in r.getMessage() for r in caplog.records)
    os.lchown(link, NOBODY, NOBODY)
    load = through_link.load()
    assert load.tokens is None
    assert f"symbolic link owned by uid {NOBODY}" in str(load.problem)


@pytest.fixture
def immutable_file(tmp_path: Path) -> Iterator[Path]:
    """A token file with loose permissions that cannot be changed, even by root."""
    store = stored(tmp_path)
    store.path.chmod(0o644)
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run([chattr, "+i", str(store.path)], capture_output=True, timeout=10)
    if done.returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    yield store.path
    subprocess.run([chattr, "-i", str(store.path)], check=True, timeout=10)


@pytest.mark.asyncio
async def test_not_usable_means_not_used(immutable_file: Path) -> None:
    # The daemon says "not usable, starting a new device flow": so it must not
    # go on with the tokens.
    store = TokenStore(immutable_file)
    load = store.load()
    assert load.tokens is None
    assert "could not be set to 0600" in str(load.problem)
    assert await load_tokens(store) is None


def test_an_expiry_that_is_not_a_date_is_refused(tmp_path: Path) -> None:
    store = stored(tmp_path)
    document = json.loads(store.path.read_text())
    document["expires_at"] = 1e300
    store.path.write_text(json.dumps(document))
    load = store.load()
    assert load.tokens is None
    assert "'expires_at' is not a date" in str(load.problem)
    with pytest.raises(TokenStoreError, match="expires_at"):
        store.save(StoredTokens("a-token", "r-token", 1e300, "d-code"))


def test_status_survives_any_stored_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = stored(tmp_path)
    document = json.loads(store.path.read_text())
    document["expires_at"] = 1e300
    store.path.write_text(json.dumps(document))
    for name, value in {
        "HTTP_API_BASE_URL": "https://api.example.com",
        "WEBSOCKET_API_BASE_URL": "wss://api.example.com",
        "OAUTH_CLIENT_ID": "intercom-device",
        "TOKEN_FILE_PATH": str(store.path),
        "VIDEO_SOURCE": "testsrc",
        "HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HEALTH_ADDRESS", raising=False)
    assert cli.main(["status"]) == 1
    assert "not a date" in capsys.readouterr().out


def test_a_second_holder_of_the_lock_is_told_who_has_it(tmp_path: Path) -> None:
    token_file = tmp_path / "config" / "tokens.json"
    with TokenLock(token_file) as first:
        assert mode_of(first.path) == 0o600
        with pytest.raises(TokenFileLocked) as caught:
            TokenLock(token_file).acquire()
        assert caught.value.holder == os.getpid()
        assert f"process {os.getpid()} already uses the token file {token_file}" in str(
            caught.value
        )
    with TokenLock(token_file):  # released: free again
        pass
