#!/usr/bin/env python3
"""Unmodified Python clients against a running tokend: Authlib's client_credentials (Basic
and POST client authentication) and PyJWT verifying the access token offline with the JWKS.

    pip install 'pyjwt[crypto]' authlib requests
    TOKEND_AUDIENCES=https://metrics.example TOKEND_BOOTSTRAP_PASSWORD=... cargo run --release &
    python3 examples/python_clients.py http://127.0.0.1:8080 admin@localhost PASSWORD https://metrics.example
"""
import sys

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session

B, EMAIL, PASSWORD, AUD = (sys.argv[1:] + [None] * 4)[:4]
B = B or "http://127.0.0.1:8080"
AUD = AUD or "https://metrics.example"
at = requests.post(B + "/api/v1/login", json={"email": EMAIL, "password": PASSWORD}).json()["access_token"]
app = requests.post(B + "/api/v1/apps", json={"name": "python-clients", "roles": ["org:member"]},
                    headers={"Authorization": "Bearer " + at}).json()
meta = requests.get(B + "/.well-known/oauth-authorization-server").json()
jwks = jwt.PyJWKClient(meta["jwks_uri"])
failed = 0
for method in ["client_secret_basic", "client_secret_post"]:
    s = OAuth2Session(app["client_id"], app["client_secret"], token_endpoint_auth_method=method)
    tok = s.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    key = jwks.get_signing_key_from_jwt(tok["access_token"])
    c = jwt.decode(tok["access_token"], key.key, algorithms=["ES256", "EdDSA", "RS256"], audience=AUD,
                   issuer=meta["issuer"], options={"require": ["exp", "iat", "nbf", "sub", "jti"]})
    ok = jwt.get_unverified_header(tok["access_token"])["typ"] == "at+jwt" and c["roles"] == ["org:member"]
    failed += not ok
    print(method, "ok" if ok else "FAILED", c["roles"], tok["expires_in"])
try:
    OAuth2Session(app["client_id"], "tkd_cs_wrong").fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    print("wrong secret accepted: FAILED"); failed += 1
except Exception as e:  # Authlib raises OAuthError with the RFC 6749 code
    print("wrong secret refused:", str(e)[:60])
try:
    jwt.decode(at, jwks.get_signing_key_from_jwt(at).key, algorithms=["ES256", "EdDSA", "RS256"], audience=AUD)
    print("management token accepted for the resource audience: FAILED"); failed += 1
except jwt.InvalidAudienceError:
    print("management token refused for the resource audience: ok")
print("failed:", failed)
sys.exit(1 if failed else 0)
