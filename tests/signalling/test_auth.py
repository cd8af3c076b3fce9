import time

import jwt
import pytest

from rooms import Grant, Role, ValidationError
from signalling.auth import (
    AuthError,
    ForbiddenError,
    TokenIssuer,
    bearer_token,
    is_api_key,
    require,
)

SECRET = "test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(SECRET, max_ttl=3600)


def test_issued_token_verifies_with_role_grants(issuer: TokenIssuer) -> None:
    token = issuer.issue_link(room="booth-1", identity="alice", name="Alice 李",
                              role=Role.EXHIBITOR, language="zh-CN").token
    claims = issuer.verify(token)
    assert claims.identity == "alice"
    assert claims.name == "Alice 李"
    assert claims.room == "booth-1"
    assert claims.role == Role.EXHIBITOR
    assert claims.grants == {Grant.PUBLISH, Grant.SUBSCRIBE}
    assert claims.language == "zh-CN"


def test_forged_token_is_refused(issuer: TokenIssuer) -> None:
    token = TokenIssuer("another-secret-of-sufficient-length!!", 3600).issue_link(
        room="r", identity="mallory", name="M", role=Role.HOST).token
    with pytest.raises(AuthError) as caught:
        issuer.verify(token)
    assert caught.value.code == "invalid_token"


def test_alg_none_is_refused(issuer: TokenIssuer) -> None:
    token = jwt.encode({"iss": "fairwire", "sub": "x", "room": "r", "role": "host",
                        "grants": ["moderate"], "exp": time.time() + 60}, key=None,
                       algorithm="none")
    with pytest.raises(AuthError):
        issuer.verify(token)


def test_expired_token_is_refused(issuer: TokenIssuer) -> None:
    token = issuer.issue_link(room="r", identity="bob", name="Bob", role=Role.BUYER, ttl=10,
                         now=time.time() - 3600).token
    with pytest.raises(AuthError) as caught:
        issuer.verify(token)
    assert caught.value.code == "token_expired"


def test_grants_in_token_cannot_exceed_role(issuer: TokenIssuer) -> None:
    # A token signed with the right secret but claiming more than the role allows.
    forged = jwt.encode({"iss": "fairwire", "sub": "v", "room": "r", "role": "visitor",
                         "grants": ["publish", "subscribe"], "exp": int(time.time()) + 60},
                        SECRET, algorithm="HS256")
    claims = issuer.verify(forged)
    assert claims.grants == {Grant.SUBSCRIBE}
    with pytest.raises(ForbiddenError):
        require(claims, Grant.PUBLISH)


def test_wrong_room_and_missing_grant_are_forbidden(issuer: TokenIssuer) -> None:
    link = issuer.issue_link(room="a", identity="v", name="V", role=Role.VISITOR)
    claims = issuer.verify(link.token)
    with pytest.raises(ForbiddenError) as caught:
        require(claims, Grant.SUBSCRIBE, room="b")
    assert caught.value.code == "wrong_room"
    with pytest.raises(ForbiddenError) as caught:
        require(claims, Grant.PUBLISH, room="a")
    assert caught.value.code == "missing_grant"
    require(claims, Grant.SUBSCRIBE, room="a")


def test_request_validation(issuer: TokenIssuer) -> None:
    with pytest.raises(ValidationError, match="unknown field"):
        issuer.issue_from_request({"room": "r", "identity": "a", "role": "buyer", "admin": True})
    with pytest.raises(ValidationError, match="ttl"):
        issuer.issue_from_request({"room": "r", "identity": "a", "role": "buyer", "ttl": 99999})
    with pytest.raises(ValidationError, match="role"):
        issuer.issue_from_request({"room": "r", "identity": "a", "role": "king"})
    with pytest.raises(ValidationError, match="may not hold"):
        issuer.issue_from_request({"room": "r", "identity": "a", "role": "visitor",
                                   "grants": ["publish"]})
    issued = issuer.issue_from_request({"room": "r", "identity": "a", "role": "buyer",
                                        "grants": ["subscribe"], "ttl": 60}, now=1000)
    assert issued.ttl == 60 and issued.expires_at == 1060
    claims = issuer.verify(issued.token, now=1010)
    assert claims.grants == {Grant.SUBSCRIBE}
    assert claims.token_id == issued.token_id and claims.use == "link" and not claims.guest
    # Without a ttl: the default week, unless the issuer's maximum is shorter.
    assert issuer.issue_from_request({"room": "r", "identity": "a", "role": "buyer"}).ttl == 3600


def test_session_credential_names_its_link(issuer: TokenIssuer) -> None:
    link = issuer.issue_link(room="r", identity="g", name="Guest 1", role=Role.VISITOR,
                             ttl=60, now=1000, guest=True)
    session = issuer.session_credential(issuer.verify(link.token, now=1000), ttl=10, now=1050)
    assert session.expires_at == 1060 and session.token_id == link.token_id
    claims = issuer.verify(session.token, now=1055)
    assert claims.use == "session" and claims.token_id == link.token_id and claims.guest
    assert (claims.identity, claims.room, claims.role) == ("g", "r", Role.VISITOR)
    # Renewing a session credential keeps naming the link, never itself.
    again = issuer.session_credential(claims, ttl=10, now=1058)
    assert issuer.verify(again.token, now=1060).token_id == link.token_id


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in (None, "", "Basic abc", "Bearer"):
        with pytest.raises(AuthError):
            bearer_token(bad)
    assert is_api_key(bearer_token("Bearer key"), "key")
    assert not is_api_key(bearer_token("Bearer nope"), "key")
