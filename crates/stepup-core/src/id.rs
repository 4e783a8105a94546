//! `shared_id!`: string ids that are cheap to clone (`Arc<str>`) and read well in `Debug`.

/// Declares an id newtype over `Arc<str>` with `new`, `as_str`, `Display`, and `Debug` as `Name("value")`.
macro_rules! shared_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Wraps an id as sent on the wire.
            #[must_use]
            pub fn new(id: impl AsRef<str>) -> Self {
                Self(std::sync::Arc::from(id.as_ref()))
            }

            /// The id as sent on the wire.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), &*self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use shared_id;
