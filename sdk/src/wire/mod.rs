//! The wire contract: every document and name that crosses a container border.
