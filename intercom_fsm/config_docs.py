"""The settings as the README's configuration table and ``.envrc.example``
show them, drawn from the rows of :mod:`intercom_fsm.config` (a test keeps the
README and the committed example in step).
"""

from __future__ import annotations

from intercom_fsm.config import ENVIRONMENT_VARIABLES


def environment_table_markdown() -> str:
    """The table for the README."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for setting in ENVIRONMENT_VARIABLES:
        default = "(required)" if setting.required else (setting.default or "(unset)")
        lines.append(f"| `{setting.name}` | {default} | {setting.doc} |")
    return "\n".join(lines) + "\n"


_PLACEHOLDERS = {
    "HTTP_API_BASE_URL": "https://api.example.com",
    "WEBSOCKET_API_BASE_URL": "wss://api.example.com",
    "OAUTH_CLIENT_ID": "your-client-id",
}


def envrc_example() -> str:
    """An ``.envrc.example``: required variables with placeholders, the others
    commented out at their defaults."""
    lines = ["# intercom-fsm settings (copy to .envrc and edit)."]
    for setting in ENVIRONMENT_VARIABLES:
        lines.append(f"# {setting.doc}")
        if setting.name in _PLACEHOLDERS:
            lines.append(f"export {setting.name}={_PLACEHOLDERS[setting.name]}")
        else:
            lines.append(f"# export {setting.name}={setting.default or ''}")
    return "\n".join(lines) + "\n"
