"""A lighter PBKDF2 for the sandbox.

django-oauth-toolkit hashes the client secret and checks it on every token
request, and Django's default PBKDF2 (a million rounds) costs most of a second
per check on a small machine: with a device polling every second and a test
suite signing in, that would dominate. The sandbox holds no real secrets.
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class SandboxPBKDF2PasswordHasher(PBKDF2PasswordHasher):  # type: ignore[misc]
    iterations = 10_000
