//! Helpers that reproduce Go `encoding/json` behaviour we must interoperate
//! with: `omitempty` zero checks, and nil slices or maps written as `null`.

use serde::{Deserialize, Deserializer};

/// Deserialises `null` (what Go writes for a nil slice or map) as the
/// type's default value.
pub(crate) fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// `omitempty` for integers: Go skips a zero.
pub(crate) fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `omitempty` for booleans: Go skips `false`.
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}
