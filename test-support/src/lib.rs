//! Dev-only test kit shared by every agentpod test.
