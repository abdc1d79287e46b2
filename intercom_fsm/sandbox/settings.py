"""Django settings for one sandbox process, built from its options (no settings module on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intercom_fsm.sandbox.options import DEMO_USERNAME, SandboxOptions


def build_settings(options: SandboxOptions, *, state_dir: Path, secret_key: str) -> dict[str, Any]:
    return {
        "DEBUG": False,
        "SECRET_KEY": secret_key,
        # The sandbox answers on whatever name reaches it (loopback, a LAN address).
        "ALLOWED_HOSTS": ["*"],
        "USE_TZ": True,
        "INSTALLED_APPS": [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
            "channels",
            "intercom_fsm.sandbox.backend",
        ],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "ROOT_URLCONF": "intercom_fsm.sandbox.backend.urls",
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(state_dir / "sandbox.sqlite3"),
                # The auto-approval timer writes from its own thread.
                "OPTIONS": {"timeout": 20},
            }
        },
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.template.context_processors.csrf",
                        "django.contrib.auth.context_processors.auth",
                    ]
                },
            }
        ],
        "PASSWORD_HASHERS": ["intercom_fsm.sandbox.backend.hashers.SandboxPBKDF2PasswordHasher"],
        "LOGIN_URL": "/accounts/login/",
        "LOGIN_REDIRECT_URL": "/",
        "LOGOUT_REDIRECT_URL": "/accounts/login/",
        "CHANNEL_LAYERS": {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        "OAUTH2_PROVIDER": {
            "DEVICE_FLOW_INTERVAL": options.device_interval,
            # The verification URIs depend on the bound port: see oauth_views.SandboxDeviceServer.
            "ACCESS_TOKEN_EXPIRE_SECONDS": options.access_token_lifetime,
            "ROTATE_REFRESH_TOKEN": True,
            "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
        },
        "SANDBOX_DEVICE_INTERVAL": options.device_interval,
        "SANDBOX_DEVICE_EXPIRES_IN": options.device_expires_in,
        "SANDBOX_AUTO_APPROVE": options.auto_approve,
        "SANDBOX_TEST_CONTROLS": options.test_controls,
        "SANDBOX_DEMO_USERNAME": DEMO_USERNAME,
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "loggers": {
                "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
                "intercom_fsm.sandbox": {
                    "handlers": ["stderr"],
                    "level": "INFO",
                    "propagate": False,
                },
            },
        },
    }


def configure_django(options: SandboxOptions, *, state_dir: Path, secret_key: str) -> None:
    import django
    from django.conf import settings

    settings.configure(**build_settings(options, state_dir=state_dir, secret_key=secret_key))
    django.setup()
