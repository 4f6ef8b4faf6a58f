//! The token attack suite: hostile tokens and `Authorization` headers, each with the one answer
//! it must get. A refused token gets 401 with a problem body and a `Bearer` challenge from the
//! gateway, and UNAUTHENTICATED from books-service called directly over gRPC; a few well-formed
//! variants are listed too, so the suite also pins down what is accepted.

use std::net::TcpListener;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use proto::books::v1 as pb;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::Backend;
use tonic::metadata::MetadataValue;

use crate::helpers::{Stack, eventually, problem, spawn_stack};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accepted,
    Refused,
}
use Expect::{Accepted, Refused};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// A signed compact JWS of exactly these header and payload texts.
fn sign_raw(header: &str, payload: &str, key: &EncodingKey, algorithm: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, algorithm).unwrap();
    format!("{message}.{signature}")
}

/// Makes tokens that look like the stack's own, signed with any key.
struct Forger {
    genuine: String,
    header: Value,
    claims: Value,
    key: EncodingKey,
    attacker: EncodingKey,
    attacker_jwk: Jwk,
    leeway: i64,
}

impl Forger {
    fn new(stack: &Stack, genuine: &str) -> Self {
        let segments: Vec<&str> = genuine.split('.').collect();
        let pem = auth_service::keys::generate_pem(auth_service::keys::KeyKind::Ed25519).unwrap();
        let attacker = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
        let mut attacker_jwk = Jwk::from_encoding_key(&attacker, Algorithm::EdDSA).unwrap();
        attacker_jwk.common.key_id = Some("attacker".to_owned());
        Self {
            genuine: genuine.to_owned(),
            header: decode_segment(segments[0]),
            claims: decode_segment(segments[1]),
            key: stack.signing_key.encoding_key().clone(),
            attacker,
            attacker_jwk,
            leeway: i64::try_from(stack.gateway_settings.tokens.leeway_secs).unwrap(),
        }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        sign_raw(
            &header.to_string(),
            &claims.to_string(),
            &self.key,
            Algorithm::EdDSA,
        )
    }

    /// The genuine header, changed by `edit`, signed with the real key.
    fn header_edit(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut header = self.header.clone();
        edit(header.as_object_mut().unwrap());
        self.sign(&header, &self.claims)
    }

    /// The genuine claims, changed by `edit`, signed with the real key.
    fn claims_edit(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.claims.clone();
        edit(claims.as_object_mut().unwrap());
        self.sign(&self.header, &claims)
    }

    /// Header and claims as given, with no signature.
    fn unsigned(&self, alg: &str) -> String {
        let header = json!({"typ": "JWT", "alg": alg, "kid": self.header["kid"]});
        format!(
            "{}.{}.",
            b64(header.to_string()),
            b64(self.claims.to_string())
        )
    }

    /// Signed with HS256, the secret being something public.
    fn hmac_with(&self, secret: &[u8]) -> String {
        let header = json!({"typ": "JWT", "alg": "HS256", "kid": self.header["kid"]});
        sign_raw(
            &header.to_string(),
            &self.claims.to_string(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
    }

    /// Signed with the attacker's own key, the header carrying `extra`.
    fn attacker_signed(&self, extra: Value) -> String {
        let mut header = json!({"typ": "JWT", "alg": "EdDSA", "kid": "attacker"});
        for (name, value) in extra.as_object().unwrap() {
            header[name] = value.clone();
        }
        sign_raw(
            &header.to_string(),
            &self.claims.to_string(),
            &self.attacker,
            Algorithm::EdDSA,
        )
    }

    fn segments(&self) -> [&str; 3] {
        let mut parts = self.genuine.splitn(3, '.');
        [(); 3].map(|()| parts.next().unwrap())
    }

    fn now() -> i64 {
        token_verifier::unix_now()
    }
}

/// Every hostile (and a few friendly) tokens built from a genuine access token. `jwks` is the
/// published key set; `elsewhere` an address whose listener must never be contacted.
fn token_cases(forger: &Forger, jwks: &Value, elsewhere: &str) -> Vec<(String, String, Expect)> {
    let [header, payload, signature] = forger.segments();
    let now = Forger::now();
    let leeway = forger.leeway;
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap();
    flipped[10] ^= 0x01;
    let mut escalated = forger.claims.clone();
    escalated["roles"] = json!(["user", "admin"]);
    let kid = forger.header["kid"].as_str().unwrap().to_owned();
    let claims_text = forger.claims.to_string();
    let duplicate_sub = format!(
        "{},\"sub\":\"someone-else\"}}",
        &claims_text[..claims_text.len() - 1]
    );

    let cases: Vec<(&str, String, Expect)> = vec![
        ("the genuine token", forger.genuine.clone(), Accepted),
        ("re-signed unchanged", forger.claims_edit(|_| ()), Accepted),
        ("alg none", forger.unsigned("none"), Refused),
        ("alg None", forger.unsigned("None"), Refused),
        ("alg NONE", forger.unsigned("NONE"), Refused),
        ("alg nOnE", forger.unsigned("nOnE"), Refused),
        (
            "alg none keeping the signature",
            format!("{}{signature}", forger.unsigned("none")),
            Refused,
        ),
        (
            "HS256 keyed with the public key bytes",
            forger.hmac_with(&URL_SAFE_NO_PAD.decode(&public_x).unwrap()),
            Refused,
        ),
        (
            "HS256 keyed with the JWK's x",
            forger.hmac_with(public_x.as_bytes()),
            Refused,
        ),
        (
            "HS256 keyed with the JWKS document",
            forger.hmac_with(jwks.to_string().as_bytes()),
            Refused,
        ),
        (
            "alg RS256 on the EdDSA key",
            forger.header_edit(|h| {
                h.insert("alg".into(), json!("RS256"));
            }),
            Refused,
        ),
        (
            "unknown kid",
            forger.header_edit(|h| {
                h.insert("kid".into(), json!("no-such-key"));
            }),
            Refused,
        ),
        (
            "empty kid",
            forger.header_edit(|h| {
                h.insert("kid".into(), json!(""));
            }),
            Refused,
        ),
        (
            "no kid",
            forger.header_edit(|h| {
                h.remove("kid");
            }),
            Refused,
        ),
        (
            "4,000-character kid",
            forger.header_edit(|h| {
                h.insert("kid".into(), json!("k".repeat(4_000)));
            }),
            Refused,
        ),
        (
            "kid is a path",
            forger.header_edit(|h| {
                h.insert("kid".into(), json!("../../../../../../dev/null"));
            }),
            Refused,
        ),
        (
            "kid is SQL",
            forger.header_edit(|h| {
                h.insert("kid".into(), json!("' OR '1'='1'; DROP TABLE users; --"));
            }),
            Refused,
        ),
        (
            "kid is a number",
            forger.header_edit(|h| {
                h.insert("kid".into(), json!(1));
            }),
            Refused,
        ),
        (
            "jku to the attacker's keys",
            forger.attacker_signed(json!({"jku": format!("http://{elsewhere}/jwks.json")})),
            Refused,
        ),
        (
            "x5u to the attacker's certificate",
            forger.attacker_signed(json!({"x5u": format!("http://{elsewhere}/cert.pem")})),
            Refused,
        ),
        (
            "embedded attacker jwk",
            forger.attacker_signed(json!({"jwk": forger.attacker_jwk})),
            Refused,
        ),
        (
            "attacker key under the real kid",
            forger.attacker_signed(json!({"kid": kid, "jku": format!("http://{elsewhere}/")})),
            Refused,
        ),
        (
            "signature stripped",
            format!("{header}.{payload}."),
            Refused,
        ),
        (
            "signature and its dot stripped",
            format!("{header}.{payload}"),
            Refused,
        ),
        (
            "one signature bit flipped",
            format!("{header}.{payload}.{}", b64(&flipped)),
            Refused,
        ),
        (
            "admin role added, original signature",
            format!("{header}.{}.{signature}", b64(escalated.to_string())),
            Refused,
        ),
        (
            "header extended, original signature",
            format!(
                "{}.{payload}.{signature}",
                b64(json!({"typ": "JWT", "alg": "EdDSA", "kid": kid, "x": 1}).to_string())
            ),
            Refused,
        ),
        (
            "expired one second past the leeway",
            forger.claims_edit(|c| {
                c.insert("exp".into(), json!(now - leeway - 1));
            }),
            Refused,
        ),
        (
            "expired, one second inside the leeway",
            forger.claims_edit(|c| {
                c.insert("exp".into(), json!(now - leeway + 1));
            }),
            Accepted,
        ),
        // The "not before" cases leave one second for the clock to tick during the test.
        (
            "not valid before leeway + 2 s",
            forger.claims_edit(|c| {
                c.insert("nbf".into(), json!(now + leeway + 2));
            }),
            Refused,
        ),
        (
            "not valid before leeway - 1 s",
            forger.claims_edit(|c| {
                c.insert("nbf".into(), json!(now + leeway - 1));
            }),
            Accepted,
        ),
        (
            "issued leeway + 2 s in the future",
            forger.claims_edit(|c| {
                c.insert("iat".into(), json!(now + leeway + 2));
            }),
            Refused,
        ),
        (
            "issued leeway - 1 s in the future",
            forger.claims_edit(|c| {
                c.insert("iat".into(), json!(now + leeway - 1));
            }),
            Accepted,
        ),
        (
            "wrong iss",
            forger.claims_edit(|c| {
                c.insert("iss".into(), json!("https://evil.example"));
            }),
            Refused,
        ),
        (
            "wrong aud",
            forger.claims_edit(|c| {
                c.insert("aud".into(), json!("another-api"));
            }),
            Refused,
        ),
        (
            "aud as a list",
            forger.claims_edit(|c| {
                c.insert("aud".into(), json!(["another-api", "bookstore"]));
            }),
            Refused,
        ),
        (
            "exp as a string",
            forger.claims_edit(|c| {
                c.insert("exp".into(), json!((now + 600).to_string()));
            }),
            Refused,
        ),
        (
            "exp beyond i64",
            forger.claims_edit(|c| {
                c.insert("exp".into(), json!(1e300));
            }),
            Refused,
        ),
        (
            "typ refresh",
            forger.claims_edit(|c| {
                c.insert("typ".into(), json!("refresh"));
            }),
            Refused,
        ),
        (
            "typ unknown",
            forger.claims_edit(|c| {
                c.insert("typ".into(), json!("admin"));
            }),
            Refused,
        ),
        (
            "empty sub",
            forger.claims_edit(|c| {
                c.insert("sub".into(), json!(""));
            }),
            Refused,
        ),
        (
            "duplicate alg in the header",
            sign_raw(
                &format!(r#"{{"typ":"JWT","alg":"none","alg":"EdDSA","kid":"{kid}"}}"#),
                &claims_text,
                &forger.key,
                Algorithm::EdDSA,
            ),
            Refused,
        ),
        (
            "duplicate sub in the payload",
            sign_raw(
                &forger.header.to_string(),
                &duplicate_sub,
                &forger.key,
                Algorithm::EdDSA,
            ),
            Refused,
        ),
        (
            "payload not JSON",
            sign_raw(
                &forger.header.to_string(),
                "not json",
                &forger.key,
                Algorithm::EdDSA,
            ),
            Refused,
        ),
        (
            "standard base64 characters",
            format!("{header}.{}+/.{signature}", &payload[..payload.len() - 2]),
            Refused,
        ),
        (
            "padded segments",
            format!("{header}==.{payload}.{signature}=="),
            Refused,
        ),
        (
            "four segments",
            format!("{}.{signature}", forger.genuine),
            Refused,
        ),
        (
            "five segments (JWE shape)",
            format!("{header}.{payload}..{signature}.{signature}"),
            Refused,
        ),
        ("a single word", "Bearer".to_owned(), Refused),
        ("7 KiB of dots", ".".repeat(7 * 1024), Refused),
        (
            "9 KiB token",
            format!("{}{}", forger.genuine, "A".repeat(9 * 1024)),
            Refused,
        ),
    ];
    let mut all: Vec<(String, String, Expect)> = cases
        .into_iter()
        .map(|(name, token, expect)| (name.to_owned(), token, expect))
        .collect();
    for claim in [
        "sub", "sid", "jti", "exp", "nbf", "iat", "iss", "aud", "typ", "roles",
    ] {
        all.push((
            format!("missing {claim}"),
            forger.claims_edit(|c| {
                c.remove(claim);
            }),
            Refused,
        ));
    }
    all
}

/// Asserts the gateway's and books-service's answers to `token`.
async fn assert_answer(
    stack: &Stack,
    books: &pb::books_service_client::BooksServiceClient<tonic::transport::Channel>,
    name: &str,
    token: &str,
    expect: Expect,
) {
    let response = stack.get("/api/books", token).await;
    match expect {
        Accepted => assert_eq!(response.status(), StatusCode::OK, "{name}"),
        Refused => {
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{name}: {:?}",
                response.headers()
            );
            assert!(
                response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer "),
                "{name}"
            );
            let body = problem(response, StatusCode::UNAUTHORIZED).await;
            assert!(
                token.len() < 16 || !body.to_string().contains(token),
                "{name}: the token is echoed"
            );
        }
    }

    let answer = list_books_as(books, token).await;
    match expect {
        Accepted => assert!(answer.is_ok(), "{name}: {answer:?}"),
        Refused => assert_eq!(
            answer.map(drop).unwrap_err().code(),
            tonic::Code::Unauthenticated,
            "{name}"
        ),
    }
}

async fn list_books_as(
    books: &pb::books_service_client::BooksServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Result<tonic::Response<pb::ListBooksResponse>, tonic::Status> {
    let mut request = tonic::Request::new(pb::ListBooksRequest::default());
    let value = MetadataValue::try_from(format!("Bearer {token}")).unwrap();
    request.metadata_mut().insert("authorization", value);
    books.clone().list_books(request).await
}

/// Waits until the gateway's and books-service's replicas know that `token` is revoked.
async fn revocation_arrived(
    stack: &Stack,
    books: &pb::books_service_client::BooksServiceClient<tonic::transport::Channel>,
    token: &str,
) {
    eventually("the gateway knows", || {
        stack.denies_as_revoked(&stack.gateway, token)
    })
    .await;
    eventually("books-service knows", || async {
        list_books_as(books, token)
            .await
            .is_err_and(|status| status.code() == tonic::Code::Unauthenticated)
    })
    .await;
}

#[tokio::test]
async fn hostile_tokens_are_refused_by_the_gateway_and_by_books_service() {
    let stack = spawn_stack(Backend::Postgres).await;
    let victim = stack.user("victim").await;
    let jwks = stack.jwks().await;
    // Where jku/x5u point: nothing may ever connect to it.
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let forger = Forger::new(&stack, &victim.access);
    let books = pb::books_service_client::BooksServiceClient::connect(stack.books_url.clone())
        .await
        .unwrap();

    let cases = token_cases(&forger, &jwks, &elsewhere.local_addr().unwrap().to_string());
    assert!(cases.iter().filter(|case| case.2 == Refused).count() >= 50);
    for (name, token, expect) in &cases {
        assert_answer(&stack, &books, name, token, *expect).await;
    }
    assert!(
        elsewhere.accept().is_err(),
        "a jku/x5u address was contacted"
    );

    // Tokens that were genuine once: a refresh token as an access token, an access token as a
    // refresh token, a logged-out session, a deactivated user.
    assert_answer(&stack, &books, "refresh token", &victim.refresh, Refused).await;
    let swapped = stack
        .send_json(
            Method::POST,
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": victim.access}),
        )
        .await;
    problem(swapped, StatusCode::UNAUTHORIZED).await;

    let leaving = stack.logged_in("victim").await;
    let logout = stack
        .request(Method::POST, "/api/auth/logout", Some(&leaving.access))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    revocation_arrived(&stack, &books, &leaving.access).await;
    assert_answer(
        &stack,
        &books,
        "logged-out session",
        &leaving.access,
        Refused,
    )
    .await;
    assert_answer(&stack, &books, "another session", &victim.access, Accepted).await;

    let admin = stack.admin("warden").await;
    let me: Value = stack
        .get("/api/me", &victim.access)
        .await
        .json()
        .await
        .unwrap();
    let deactivated = stack
        .send_json(
            Method::PATCH,
            &format!("/api/admin/users/{}", me["id"].as_str().unwrap()),
            Some(&admin.access),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    revocation_arrived(&stack, &books, &victim.access).await;
    assert_answer(&stack, &books, "deactivated user", &victim.access, Refused).await;
    let forged_later = forger.claims_edit(|c| {
        c.insert("jti".into(), json!(uuid::Uuid::now_v7().to_string()));
    });
    assert_answer(
        &stack,
        &books,
        "deactivated user, fresh jti",
        &forged_later,
        Refused,
    )
    .await;
}

type Headers = Vec<(&'static str, HeaderValue)>;

#[tokio::test]
async fn hostile_authorization_headers_are_refused() {
    let stack = spawn_stack(Backend::Postgres).await;
    let token = stack.user("holder").await.access;
    let get = |headers: Headers| {
        let mut request = stack.request(Method::GET, "/api/books", None);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let text = |value: String| HeaderValue::try_from(value).unwrap();

    let cases: Vec<(&str, Headers, Expect)> = vec![
        ("no header", vec![], Refused),
        (
            "scheme only",
            vec![("authorization", text("Bearer".into()))],
            Refused,
        ),
        (
            "scheme and spaces",
            vec![("authorization", text("Bearer    ".into()))],
            Refused,
        ),
        (
            "lower-case bearer",
            vec![("authorization", text(format!("bearer {token}")))],
            Accepted,
        ),
        (
            "upper-case BEARER",
            vec![("authorization", text(format!("BEARER {token}")))],
            Accepted,
        ),
        (
            "extra spaces",
            vec![("authorization", text(format!("Bearer    {token}   ")))],
            Accepted,
        ),
        (
            "tab separator",
            vec![("authorization", text(format!("Bearer\t{token}")))],
            Refused,
        ),
        (
            "no separator",
            vec![("authorization", text(format!("Bearer{token}")))],
            Refused,
        ),
        (
            "two tokens",
            vec![("authorization", text(format!("Bearer {token} {token}")))],
            Refused,
        ),
        (
            "Token scheme",
            vec![("authorization", text(format!("Token {token}")))],
            Refused,
        ),
        (
            "Basic scheme",
            vec![("authorization", text("Basic dXNlcjpwYXNz".into()))],
            Refused,
        ),
        (
            "bare token",
            vec![("authorization", text(token.clone()))],
            Refused,
        ),
        (
            "two Authorization headers",
            vec![
                ("authorization", text(format!("Bearer {token}"))),
                ("authorization", text(format!("Bearer {token}"))),
            ],
            Refused,
        ),
        (
            "64 KiB Authorization header",
            vec![(
                "authorization",
                text(format!("Bearer {}", "a".repeat(64 * 1024))),
            )],
            Refused,
        ),
        (
            "non-ASCII bytes",
            vec![(
                "authorization",
                HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
            )],
            Refused,
        ),
        (
            "x-access-token",
            vec![("x-access-token", text(token.clone()))],
            Accepted,
        ),
        (
            "empty x-access-token",
            vec![("x-access-token", text(String::new()))],
            Refused,
        ),
        (
            "bad Authorization wins over a good x-access-token",
            vec![
                ("authorization", text("Bearer forged".into())),
                ("x-access-token", text(token.clone())),
            ],
            Refused,
        ),
        (
            "token in a cookie",
            vec![("cookie", text(format!("access_token={token}")))],
            Refused,
        ),
    ];
    for (name, headers, expect) in cases {
        let response = get(headers).await.unwrap();
        match expect {
            Accepted => assert_eq!(response.status(), StatusCode::OK, "{name}"),
            Refused => {
                assert!(
                    response.headers().contains_key("www-authenticate"),
                    "{name}: {:?}",
                    response.status()
                );
                problem(response, StatusCode::UNAUTHORIZED).await;
            }
        }
    }

    // Nor may a token come in the query string, where logs and histories keep it.
    let query = stack
        .client
        .get(stack.url(&format!("/api/books?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_ne!(query.status(), StatusCode::OK);
    assert!(query.status().is_client_error(), "{}", query.status());
}
