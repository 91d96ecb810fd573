//! NATS decentralized authentication, minted here: an operator signs the
//! cluster's account (and the system account JetStream needs), the account
//! signs users. nats-server checks each JWT's ed25519 signature up the
//! chain (`resolver: MEMORY`, the accounts preloaded), so users — a
//! server, later each host — are made without touching its configuration.
//!
//! Wire format (nats-io/jwt v2): `b64url(header).b64url(claims).b64url(sig)`
//! without padding; the header is `{"typ":"JWT","alg":"ed25519-nkey"}`;
//! the signature covers the first two parts; `nats.version` must be 2 (an
//! older version is verified over the claims alone). `jti` is base32 of
//! SHA-512/256 of the standard claims (nsc's way; the server does not
//! check it). Limits left out mean 0 — no connection, no subscription —
//! so every limit is written as -1 (unlimited).

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use nkeys::KeyPair;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha512_256};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// A JWT could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("signing with {key}: {message}")]
    Sign { key: String, message: String },
    #[error("not a NATS JWT: {0}")]
    Malformed(String),
}

/// The standard claims, in the order nats-io/jwt writes them; what `jti`
/// hashes (without `jti`).
#[derive(Serialize)]
struct Standard<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    iss: &'a str,
    name: &'a str,
    sub: &'a str,
}

/// A JWT for `sub`, named `name`, signed by `signer` at `iat` (Unix
/// seconds), with `nats` as its type-specific claims.
pub fn encode(
    signer: &KeyPair,
    sub: &str,
    name: &str,
    iat: i64,
    exp: Option<i64>,
    nats: Value,
) -> Result<String, JwtError> {
    let iss = signer.public_key();
    let standard = Standard {
        exp,
        iat,
        iss: &iss,
        name,
        sub,
    };
    let hashed = serde_json::to_vec(&standard).map_err(|e| JwtError::Malformed(e.to_string()))?;
    let jti = BASE32_NOPAD.encode(&Sha512_256::digest(&hashed));
    let mut claims =
        json!({"jti": jti, "iat": iat, "iss": iss, "name": name, "sub": sub, "nats": nats});
    if let Some(exp) = exp {
        claims["exp"] = json!(exp);
    }
    let body = serde_json::to_vec(&claims).map_err(|e| JwtError::Malformed(e.to_string()))?;
    let input = format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(HEADER.as_bytes()),
        BASE64URL_NOPAD.encode(&body)
    );
    let sig = signer.sign(input.as_bytes()).map_err(|e| JwtError::Sign {
        key: iss.clone(),
        message: e.to_string(),
    })?;
    Ok(format!("{input}.{}", BASE64URL_NOPAD.encode(&sig)))
}

/// The claims of `jwt` if `issuer` (a public key) signed it.
pub fn verify(jwt: &str, issuer: &str) -> Result<Value, JwtError> {
    let bad = |m: &str| JwtError::Malformed(m.to_string());
    let mut parts = jwt.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected three parts"));
    };
    let decode = |s: &str| {
        BASE64URL_NOPAD
            .decode(s.as_bytes())
            .map_err(|e| bad(&e.to_string()))
    };
    let key = KeyPair::from_public_key(issuer).map_err(|e| bad(&e.to_string()))?;
    let input = format!("{head}.{body}");
    (key.verify(input.as_bytes(), &decode(sig)?))
        .map_err(|_| bad("the signature does not verify"))?;
    let claims: Value = serde_json::from_slice(&decode(body)?).map_err(|e| bad(&e.to_string()))?;
    if claims["iss"] != issuer {
        return Err(bad("issued by another key"));
    }
    Ok(claims)
}

/// The operator's claims: self-signed, naming the system account.
pub fn operator_claims(system_account: &str) -> Value {
    json!({"system_account": system_account, "type": "operator", "version": 2})
}

/// An account's claims: unlimited, JetStream on when `jetstream`.
pub fn account_claims(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1
    });
    if jetstream {
        for k in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[k] = json!(-1);
        }
    }
    json!({"limits": limits, "default_permissions": {"pub": {}, "sub": {}}, "type": "account", "version": 2})
}

/// A user's claims: `pub`/`sub` allow lists (none: anything in the
/// account), replies to requests allowed.
pub fn user_claims(publish: Option<&[String]>, subscribe: Option<&[String]>) -> Value {
    let mut nats = json!({"subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2});
    if let Some(allow) = publish {
        nats["pub"] = json!({"allow": allow});
    }
    if let Some(allow) = subscribe {
        nats["sub"] = json!({"allow": allow});
        nats["resp"] = json!({"max": -1, "ttl": 60_000_000_000_i64});
    }
    nats
}

/// A `.creds` file: the user's JWT and seed, framed as nats-io writes
/// them (ending with a newline, which async-nats's reader needs).
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operator JWT nsc made (published with nats-server's tests).
    const NSC_OPERATOR: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOiIyUkc0WjJKVzYzSUtBS1czSFg0SkpMQVhRN1ZSM0NKVlRQU1FHUVRCU0ZFQjVKTkNISUpRIiwiaWF0IjoxNjE2MTg2MjAxLCJpc3MiOiJPRDRNNklBQUtRU000RFFTTFdaSVZCQUNZVFlTMlM2WFFTN1U2N1hYWVhKNDRJTE5FMzVZUEdKSyIsIm5hbWUiOiJqcy10ZXN0Iiwic3ViIjoiT0Q0TTZJQUFLUVNNNERRU0xXWklWQkFDWVRZUzJTNlhRUzdVNjdYWFlYSjQ0SUxORTM1WVBHSksiLCJuYXRzIjp7InR5cGUiOiJvcGVyYXRvciIsInZlcnNpb24iOjJ9fQ.VkjSK2BlMmtYfVJSkC9aZEFvjg4BXzbd0oXkQa3Rlkhh8EuSRU7-Tp1zUm1SveBb6dZXsE51vhIQFQY66fO0Bw";
    const NSC_OPERATOR_KEY: &str = "OD4M6IAAKQSM4DQSLWZIVBACYTYS2S6XQS7U67XXYXJ44ILNE35YPGJK";

    #[test]
    fn an_nsc_jwt_verifies_and_its_jti_is_computed_the_same_way() {
        let claims = verify(NSC_OPERATOR, NSC_OPERATOR_KEY).expect("nsc's JWT verifies");
        assert_eq!(claims["nats"]["type"], "operator");
        let standard = Standard {
            exp: None,
            iat: 1616186201,
            iss: NSC_OPERATOR_KEY,
            name: "js-test",
            sub: NSC_OPERATOR_KEY,
        };
        let hashed = serde_json::to_vec(&standard).expect("json");
        let jti = BASE32_NOPAD.encode(&Sha512_256::digest(&hashed));
        assert_eq!(jti, "2RG4Z2JW63IKAKW3HX4JJLAXQ7VR3CJVTPSQGQTBSFEB5JNCHIJQ");
        assert_eq!(claims["jti"], jti.as_str());
    }

    #[test]
    fn a_chain_verifies_and_a_forgery_does_not() {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let acc = encode(
            &operator,
            &account.public_key(),
            "atoll",
            1_700_000_000,
            None,
            account_claims(true),
        )
        .expect("account");
        let usr = encode(
            &account,
            &user.public_key(),
            "server",
            1_700_000_000,
            None,
            user_claims(None, None),
        )
        .expect("user");
        let claims = verify(&acc, &operator.public_key()).expect("account verifies");
        assert_eq!(claims["nats"]["limits"]["conn"], -1);
        assert_eq!(claims["nats"]["limits"]["disk_storage"], -1);
        assert_eq!(claims["nats"]["version"], 2);
        assert_eq!(
            verify(&usr, &account.public_key()).expect("user")["sub"],
            user.public_key()
        );
        // Signed by the operator, not the account: refused.
        assert!(verify(&usr, &operator.public_key()).is_err());
        // A claim changed after signing: refused.
        let mut parts: Vec<&str> = usr.split('.').collect();
        let forged_body = BASE64URL_NOPAD.encode(br#"{"sub":"UX","nats":{}}"#);
        parts[1] = &forged_body;
        assert!(verify(&parts.join("."), &account.public_key()).is_err());
        assert!(verify("a.b", &account.public_key()).is_err());
    }

    #[test]
    fn header_and_limits_are_what_the_server_needs() {
        let op = KeyPair::new_operator();
        let jwt = encode(&op, &op.public_key(), "o", 1, None, operator_claims("AX")).expect("jwt");
        assert!(
            jwt.starts_with("eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ."),
            "{jwt}"
        );
        let u = user_claims(Some(&["a.b".into()]), Some(&["_INBOX_h1.>".into()]));
        assert_eq!(u["subs"], -1);
        assert_eq!(u["pub"]["allow"][0], "a.b");
        assert_eq!(u["resp"]["max"], -1);
        let system = account_claims(false);
        assert!(system["limits"].get("disk_storage").is_none());
    }

    #[test]
    fn creds_end_with_a_newline_and_frame_both_parts() {
        let c = creds("J.W.T", "SUSEED");
        assert!(c.ends_with('\n'));
        assert!(c.contains("-----BEGIN NATS USER JWT-----\nJ.W.T\n------END NATS USER JWT------"));
        assert!(
            c.contains("-----BEGIN USER NKEY SEED-----\nSUSEED\n------END USER NKEY SEED------\n")
        );
    }
}
