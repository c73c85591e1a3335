"""Sign-in that works: MONAI Label's token check, with the signing algorithm named by the server.

MONAI Label 0.8.5 requires PyJWT >= 2.8 but calls ``jwt.decode`` without ``algorithms``, which PyJWT 2 refuses
for every token (``DecodeError``): with ``MONAI_LABEL_AUTH_ENABLE=true`` every request is 401 and nobody can use
the server. `install` replaces MONAI Label's ``from_token`` (its ``get_current_user`` dependency looks it up at
each request) with `user_from_token`: the same verification against the realm's public key
(``MONAI_LABEL_AUTH_REALM_URI``), signature and expiry checked, user and roles read from the claims MONAI
Label's settings name — with the algorithm fixed by the server (`ALGORITHMS`: Keycloak signs with its realm's
RS256 key), never taken from the token, so a token "signed" with HS256 and the public key as secret is refused.
"""

from __future__ import annotations

from typing import Any

import jwt
from monailabel.config import settings
from monailabel.endpoints.user import auth

#: Signing algorithms accepted (Keycloak realm keys).
ALGORITHMS = ["RS256"]


def user_from_token(token: str) -> auth.User:
    """The signed-in user of a bearer token; raises `jwt.InvalidTokenError` (MONAI Label answers 401)."""
    payload = jwt.decode(
        token,
        auth.get_public_key(settings.MONAI_LABEL_AUTH_REALM_URI),
        algorithms=ALGORITHMS,
        options={"verify_signature": True, "verify_aud": False, "verify_exp": True},
    )
    roles: Any = payload
    for key in settings.MONAI_LABEL_AUTH_TOKEN_ROLES.split("#"):  # e.g. realm_access#roles
        roles = roles.get(key) if isinstance(roles, dict) else None
    return auth.User(
        username=str(payload.get(settings.MONAI_LABEL_AUTH_TOKEN_USERNAME) or ""),
        email=payload.get(settings.MONAI_LABEL_AUTH_TOKEN_EMAIL),
        name=payload.get(settings.MONAI_LABEL_AUTH_TOKEN_NAME),
        roles=[str(role) for role in roles] if isinstance(roles, list) else [],
    )


def install() -> None:
    """Make MONAI Label's endpoints verify tokens with `user_from_token`."""
    auth.from_token = user_from_token
