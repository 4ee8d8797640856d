"""Constants shared by the account tests (a module of its own: `conftest` names collide)."""

from __future__ import annotations

CLIENT_ID = "app-client-id"
CLIENT_SECRET = "s3cr3t-client-secret-value"
REDIRECT_URI = "https://example.com/callback"
AMT = "amt-management-token-value"
