"""The token file: round trip, permissions, corruption, failed writes, SIGKILL."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercom_fsm.adapters.token_store import TokenStore, TokenStoreError
from intercom_fsm.events import StoredTokens

TOKENS = StoredTokens(
    access_token="access-token-AAAA-1111",
    refresh_token="refresh-token-RRRR-2222",
    expires_at=1_900_000_000.5,
    device_code="device-code-DDDD-3333",
)
NEWER = StoredTokens(
    access_token="access-token-BBBB-4444",
    refresh_token="refresh-token-SSSS-5555",
    expires_at=1_900_003_600.0,
    device_code="device-code-DDDD-3333",
)
SECRETS = (TOKENS.access_token, TOKENS.refresh_token, TOKENS.device_code)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_file_is_no_problem(tmp_path: Path) -> None:
    load = TokenStore(tmp_path / "tokens.json").load()
    assert load.tokens is None
    assert load.problem is None
    assert not load.tightened


def test_round_trip_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "config" / "intercomclient" / "tokens.json"
    store = TokenStore(path)
    store.save(TOKENS)

    assert store.load().tokens == TOKENS
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert json.loads(path.read_text()) == {
        "access_token": TOKENS.access_token,
        "refresh_token": TOKENS.refresh_token,
        "expires_at": TOKENS.expires_at,
        "device_code": TOKENS.device_code,
        "version": 1,
    }
    store.save(NEWER)
    assert store.load().tokens == NEWER
    assert [p.name for p in path.parent.iterdir()] == ["tokens.json"]  # no temp files left


def test_directory_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        TokenStore(tmp_path / "new" / "tokens.json").save(TOKENS)
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "new") == 0o700
    assert mode_of(tmp_path / "new" / "tokens.json") == 0o600


def test_clear(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    assert store.clear() is False
    store.save(TOKENS)
    assert store.clear() is True
    assert store.load().tokens is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not valid JSON"),
        (b'{"access_token": "abc", "refre', "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[]", "does not hold a JSON object"),
        (b'{"version": 2}', "unsupported format version"),
        (b'{"version": true}', "unsupported format version"),
        (
            b'{"version": 1, "access_token": "a", "refresh_token": "r", "expires_at": 1}',
            "missing field 'device_code'",
        ),
        (
            b'{"version": 1, "access_token": 5, "refresh_token": "r", "expires_at": 1,'
            b' "device_code": "d"}',
            "field 'access_token' is not a string",
        ),
        (
            b'{"version": 1, "access_token": "a", "refresh_token": "r", "expires_at": "soon",'
            b' "device_code": "d"}',
            "field 'expires_at' is not a number",
        ),
        (b" " * 70_000, "larger than"),
    ],
)
def test_corrupt_file_is_reported_and_kept(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    path.chmod(0o600)

    load = TokenStore(path).load()

    assert load.tokens is None
    assert load.problem is not None
    assert expected in load.problem
    assert str(path) in load.problem
    assert path.read_bytes() == content  # the evidence stays for the operator


def test_problem_never_quotes_a_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    document = {"version": 1, "access_token": TOKENS.access_token, "expires_at": -1}
    document |= {"refresh_token": [TOKENS.refresh_token], "device_code": TOKENS.device_code}
    path.write_text(json.dumps(document))
    problem = TokenStore(path).load().problem
    assert problem is not None
    for secret in SECRETS:
        assert secret not in problem


@pytest.mark.parametrize("loose_mode", [0o644, 0o666, 0o640, 0o604, 0o700])
def test_looser_permissions_are_tightened_and_reported(tmp_path: Path, loose_mode: int) -> None:
    path = tmp_path / "tokens.json"
    store = TokenStore(path)
    store.save(TOKENS)
    path.chmod(loose_mode)

    load = store.load()

    assert load.tokens == TOKENS
    assert load.tightened
    assert mode_of(path) == 0o600
    assert not store.load().tightened


def test_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    TokenStore(target).save(TOKENS)
    target.chmod(0o644)
    link = tmp_path / "tokens.json"
    link.symlink_to(target)

    load = TokenStore(link).load()

    assert load.tokens is None
    assert load.problem is not None
    assert "symbolic link" in load.problem
    assert mode_of(target) == 0o644


def test_a_directory_in_place_of_the_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").mkdir()
    load = TokenStore(tmp_path / "tokens.json").load()
    assert load.tokens is None
    assert load.problem is not None


def test_stale_temp_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.save(TOKENS)
    stale = tmp_path / ".tokens.json.abc123.tmp"
    fresh = tmp_path / ".tokens.json.def456.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    assert store.load().tokens == TOKENS
    assert not stale.exists()
    assert fresh.exists()  # may belong to a save in progress elsewhere


# --- Failed writes keep the old tokens ------------------------------------------------------


def assert_old_tokens_kept(store: TokenStore, error: TokenStoreError) -> None:
    message = str(error)
    assert str(store.path) in message
    assert "previous tokens are kept" in message
    for secret in (*SECRETS, NEWER.access_token, NEWER.refresh_token):
        assert secret not in message
    assert store.load().tokens == TOKENS
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name != store.path.name]
    assert leftovers == []


def test_disk_full_during_fsync_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.save(TOKENS)

    def no_space(_descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(TokenStoreError, match="No space left on device") as caught:
        store.save(NEWER)
    monkeypatch.undo()
    assert_old_tokens_kept(store, caught.value)


_SAVE_UNDER_FILE_SIZE_LIMIT = """
import resource, signal, sys
from pathlib import Path
from intercom_fsm.adapters.token_store import TokenStore, TokenStoreError
from intercom_fsm.events import StoredTokens
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the kernel answers EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
try:
    TokenStore(Path(sys.argv[1])).save(StoredTokens("a" * 100, "r" * 100, 1.0, "d" * 40))
except TokenStoreError as error:
    print(error)
    sys.exit(3)
"""


def test_file_size_limit_hit_by_the_kernel_keeps_the_old_file(tmp_path: Path) -> None:
    """A real short write: RLIMIT_FSIZE makes the kernel refuse the bytes
    (EFBIG), the closest honest stand-in for a full disk."""
    store = TokenStore(tmp_path / "tokens.json")
    store.save(TOKENS)
    done = subprocess.run(
        [sys.executable, "-c", _SAVE_UNDER_FILE_SIZE_LIMIT, str(store.path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 3, done.stderr
    assert "File too large" in done.stdout
    assert_old_tokens_kept(store, TokenStoreError(done.stdout.strip()))


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory no one may write into: mode 0500 for ordinary users; for
    root (which ignores modes) the immutable attribute, when the file system
    and the container allow it."""
    directory = tmp_path / "locked"
    directory.mkdir(mode=0o700)
    TokenStore(directory / "tokens.json").save(TOKENS)
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield directory
        finally:
            directory.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a directory read-only")
    locked = subprocess.run([chattr, "+i", str(directory)], capture_output=True, timeout=10)
    if locked.returncode != 0:
        pytest.skip("running as root and chattr +i is not permitted here")
    try:
        yield directory
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True, timeout=10)


def test_read_only_directory_keeps_the_old_file(read_only_directory: Path) -> None:
    store = TokenStore(read_only_directory / "tokens.json")
    with pytest.raises(TokenStoreError) as caught:
        store.save(NEWER)
    assert_old_tokens_kept(store, caught.value)


def test_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the directory should be")
    store = TokenStore(blocker / "intercomclient" / "tokens.json")
    with pytest.raises(TokenStoreError, match="cannot create the directory"):
        store.save(TOKENS)


def test_non_finite_expiry_is_refused_before_writing(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    with pytest.raises(TokenStoreError, match="expires_at"):
        store.save(StoredTokens("a-token", "r-token", float("nan"), "d-code"))
    assert not store.path.exists()


# --- SIGKILL in the middle of saves ---------------------------------------------------------

_SAVE_LOOP = """
import sys
from pathlib import Path
from intercom_fsm.adapters.token_store import TokenStore
from intercom_fsm.events import StoredTokens
store = TokenStore(Path(sys.argv[1]))
serial = 0
while True:
    serial += 1
    store.save(StoredTokens(f"access-{serial}" * 50, f"refresh-{serial}", serial, "device-code"))
    if serial == 1:
        print("ready", flush=True)
"""


def test_sigkill_during_saves_never_leaves_an_invalid_file(tmp_path: Path) -> None:
    writers, rounds = 5, 4  # 20 kills, five at a time to keep the test short
    paths = [tmp_path / f"writer-{index}" / "tokens.json" for index in range(writers)]
    chooser = random.Random(8628)
    for _round in range(rounds):
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _SAVE_LOOP, str(path)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for path in paths
        ]
        try:
            for child in children:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == "ready"
            for child in children:
                time.sleep(chooser.uniform(0.0, 0.03))
                child.send_signal(signal.SIGKILL)
        finally:
            for child in children:
                child.kill()
                child.wait(timeout=10)
                if child.stdout is not None:
                    child.stdout.close()
        for path in paths:
            load = TokenStore(path).load()
            assert load.problem is None, load.problem
            assert load.tokens is not None
            serial = int(load.tokens.expires_at)
            assert load.tokens.access_token == f"access-{serial}" * 50
            assert load.tokens.refresh_token == f"refresh-{serial}"
            assert mode_of(path) == 0o600
