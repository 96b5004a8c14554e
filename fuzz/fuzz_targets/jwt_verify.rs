//! Access-token verification: `tokend::jwt::verify_with_jwks` (resource servers, the CLI)
//! and the server's own `tokend::jwt::verify`.
//!
//! The first input byte picks the mode.
//! - Even: raw. The rest splits at NUL bytes into JWKS bytes, token, issuer and audience
//!   (absent: none). The token is verified against that JWKS and against the fixed keys.
//! - Odd: built. The rest drives `arbitrary` to build a compact JWS from fuzzed header and
//!   payload fields (each the right value, absent, or any JSON value; the first variant of
//!   every choice is the right one, so a short input is a valid token) and either a real
//!   signature by one of the fixed keys, a corrupted one, or fuzzed bytes. The fixed keys:
//!   an ES256 and an EdDSA key generated once per process by `KeyRing::open` in a temporary
//!   key directory, and an RS256 key (generating one takes half a minute in this build, so
//!   it is the test-only key below, dropped into the directory as an operator would). Checks:
//!   nothing verifies without a real signature, with a header algorithm other than the key's,
//!   or with a wrong `typ`, `iss`, `aud`, `exp` or `nbf`; and both verifiers agree (away
//!   from the one-second boundaries where their clocks are read at different times).
//!
//! The body is `fuzz/bodies/jwt_verify.rs`, which `cargo test` also runs on every seed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../bodies/jwt_verify.rs"]
mod body;

fuzz_target!(|data: &[u8]| body::run(data));
