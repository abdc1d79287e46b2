"""Answering a camera's 401 (:mod:`intercom_fsm.adapters.camera.rtsp.auth`):
RFC 2617's own Digest example, Digest chosen over Basic, a stale nonce
retried, wrong credentials given up after one answer."""

from __future__ import annotations

import base64
import secrets

import pytest

from intercom_fsm.adapters.camera.rtsp.auth import Authenticator, Credentials, parse_challenges

MUFASA = Credentials("Mufasa", "Circle Of Life")
RFC_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def fields(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Digest"
    return {c.split("=", 1)[0].strip(): c.split("=", 1)[1].strip('"') for c in rest.split(", ")}


def test_rfc_2617s_example_answers_as_the_rfc_says(monkeypatch: pytest.MonkeyPatch) -> None:
    # The authenticator draws its cnonce from ``secrets.token_hex`` at each answer.
    monkeypatch.setattr(secrets, "token_hex", lambda _n: "0a4f113b")
    signer = Authenticator(MUFASA)
    assert signer.challenged([RFC_CHALLENGE])
    answer = fields(signer.header("GET", "/dir/index.html") or "")
    assert answer["response"] == "6629fae49393a05397450978507c4ef1"
    assert answer["nc"] == "00000001" and answer["qop"] == "auth"
    assert answer["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    # The count goes up with every request on the same nonce.
    assert fields(signer.header("GET", "/dir/index.html") or "")["nc"] == "00000002"


def test_md5_sess_hashes_the_nonces_into_the_first_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setattr(secrets, "token_hex", lambda _n: "c0ffee")
    signer = Authenticator(Credentials("admin", "12345"))
    assert signer.challenged(['Digest realm="cam", nonce="n1", qop="auth", algorithm=MD5-sess'])
    answer = fields(signer.header("PLAY", "rtsp://cam/live") or "")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{md5('admin:cam:12345')}:n1:c0ffee")
    expected = md5(f"{ha1}:n1:00000001:c0ffee:auth:{md5('PLAY:rtsp://cam/live')}")
    assert answer["response"] == expected and answer["algorithm"] == "MD5-sess"


def test_a_camera_without_qop_gets_the_rfc_2069_answer() -> None:
    signer = Authenticator(Credentials("admin", "12345"))
    assert signer.challenged(['Digest realm="IP Camera", nonce="n1"'])
    answer = fields(signer.header("DESCRIBE", "rtsp://cam/live") or "")
    assert "qop" not in answer and "nc" not in answer
    import hashlib

    ha1 = hashlib.md5(b"admin:IP Camera:12345").hexdigest()
    ha2 = hashlib.md5(b"DESCRIBE:rtsp://cam/live").hexdigest()
    assert answer["response"] == hashlib.md5(f"{ha1}:n1:{ha2}".encode()).hexdigest()


def test_digest_is_chosen_over_basic_and_basic_when_alone() -> None:
    both = Authenticator(MUFASA)
    assert both.challenged(['Basic realm="cam"', 'Digest realm="cam", nonce="x"'])
    assert both.scheme == "digest"
    alone = Authenticator(MUFASA)
    assert alone.challenged(['Basic realm="cam"'])
    expected = base64.b64encode(b"Mufasa:Circle Of Life").decode()
    assert alone.header("OPTIONS", "rtsp://cam") == f"Basic {expected}"


def test_a_second_401_gives_up_unless_the_nonce_went_stale() -> None:
    signer = Authenticator(MUFASA)
    assert signer.challenged(['Digest realm="cam", nonce="one"'])
    assert not signer.challenged(['Digest realm="cam", nonce="two"'])
    assert signer.challenged(['Digest realm="cam", nonce="three", stale=true'])
    assert fields(signer.header("PLAY", "rtsp://cam") or "")["nonce"] == "three"


def test_without_credentials_or_a_usable_scheme_there_is_nothing_to_answer() -> None:
    assert not Authenticator(None).challenged(['Digest realm="cam", nonce="x"'])
    assert Authenticator(None).header("DESCRIBE", "rtsp://cam") is None
    assert not Authenticator(MUFASA).challenged(['Negotiate realm="cam"'])
    assert not Authenticator(MUFASA).challenged(['Digest realm="cam", nonce="x", qop="auth-int"'])
    assert not Authenticator(MUFASA).challenged(['Digest realm="cam", nonce="x", algorithm=XYZ'])


def test_quoted_parameters_with_commas_and_escapes() -> None:
    (challenge,) = parse_challenges(['Digest realm="a, \\"b\\"", nonce=abc'])
    assert challenge.realm == 'a, "b"'
    assert challenge.parameters["nonce"] == "abc"


def test_the_password_never_shows_in_a_repr() -> None:
    assert "Circle" not in repr(MUFASA)
