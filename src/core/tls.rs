//! TLS for every HTTP client of the service (GitHub, ClickHouse): rustls
//! with ring, installed once.

/// Makes rustls use ring. reqwest is built without a default crypto provider
/// (ring builds faster and smaller than aws-lc), and a reqwest client built
/// before a provider is installed panics. Idempotent.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
