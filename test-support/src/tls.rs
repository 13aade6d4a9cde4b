//! The process-wide TLS crypto provider for tests.

/// Installs rustls' `ring` provider for this process, once. Our reqwest,
/// kube and async-nats builds carry no default provider (mixing aws-lc-rs
/// and ring panics at run time), so every test that builds an HTTP or TLS
/// client calls this first. Safe to call any number of times.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is the goal.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
