//! Shared fixtures for the end-to-end tests: each starts a real process (the gateway on a fresh `init`, a
//! registry on loopback) and stops it when dropped, so a failing test leaves nothing running.
//!
//! - [`cosign`]: cosign signing images through the PKCS#11 module for one gateway.
//! - [`crl`]: the gateway's CRLs fetched as a verifier fetches them.
//! - [`faults`]: a fault-injecting HTTPS proxy between a client and the gateway.
//! - [`gateway`]: `signpath-gateway init` + `serve` on a free port, and the client settings to reach it.
//! - [`github`]: a stand-in for GitHub's REST API (workflow runs, artifacts) that the GitHub connector calls.
//! - [`oidc`]: a CI's token issuer that gateways trust, and a stand-in of GitHub Actions' ID token endpoint.
//! - [`notation`]: one user's notation with the plugin in place and a trust policy for a given root.
//! - [`postgres`]: Debian's PostgreSQL in a temporary data directory on a free loopback port.
//! - [`registry`]: Debian's docker-registry on a free loopback port, and pushing a small image to it.
//! - [`replicas`]: N gateways of one setup on a shared PostgreSQL, behind Debian's HAProxy.
//! - [`tools`]: where the real clients (notation, cosign, pkcs11-tool, ...) are, or why a test cannot run.
//! - [`webdriver`]: headless Chromium through chromedriver, for the approvers' web page.

pub mod cosign;
pub mod crl;
pub mod faults;
pub mod gateway;
pub mod github;
pub mod notation;
pub mod oidc;
pub mod postgres;
pub mod registry;
pub mod replicas;
pub mod tools;
pub mod webdriver;
