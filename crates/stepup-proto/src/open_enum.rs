//! `open_enum!`: string enums that keep values they do not know.
//!
//! Wire enums (scopes, error codes, credential formats, wallet providers) grow on the server side. A client that
//! fails to parse a value it does not know breaks on the next server release, so every such enum has an
//! `Unknown(String)` variant, and equality, order and hash use the wire form: `Unknown("wallet:export")` built by
//! hand is the same value as the known variant.

/// Declares an open string enum; see the module docs.
macro_rules! open_enum {
    (
        $(#[$enum_doc:meta])*
        pub enum $name:ident, expecting $expecting:literal {
            $( $(#[$doc:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$enum_doc])*
        #[derive(Clone)]
        pub enum $name {
            $( $(#[$doc])* $variant, )+
            /// A value this version does not know, kept as it came.
            Unknown(String),
        }

        impl $name {
            /// Every value this version knows.
            pub const KNOWN: &'static [$name] = &[$($name::$variant,)+];

            /// The wire form.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Unknown(other) => other,
                }
            }

            /// Parses the wire form; a value this version does not know becomes `Unknown`.
            #[must_use]
            pub fn parse(wire: &str) -> $name {
                match wire {
                    $( $wire => $name::$variant, )+
                    other => $name::Unknown(other.to_owned()),
                }
            }

            /// The value's position in [`Self::KNOWN`], or `None` for `Unknown`. Lets callers keep sets of known
            /// values as bit masks.
            #[must_use]
            pub fn known_index(&self) -> Option<usize> {
                // A field-less twin of the enum gives each variant its position as a constant.
                #[allow(dead_code)]
                enum Position { $($variant,)+ }
                match self {
                    $( $name::$variant => Some(Position::$variant as usize), )+
                    $name::Unknown(_) => None,
                }
            }

            /// Whether this version knows the value (it is not `Unknown`).
            #[must_use]
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                match (self, other) {
                    // Hot path (token lookups compare scopes on every request): two known values are equal
                    // exactly when they are the same variant.
                    ($name::Unknown(_), _) | (_, $name::Unknown(_)) => self.as_str() == other.as_str(),
                    _ => std::mem::discriminant(self) == std::mem::discriminant(other),
                }
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        /// Ordered by wire form, so a sorted list is the same whatever this version knows.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // The wire form reads better in logs and test failures than the variant name.
                write!(f, "{:?}", self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::parse(s))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::parse(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::parse(&s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::parse(v))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }

        /// A string: the known values as examples, not a closed list (values this version does not know are
        /// kept, and a server may answer new ones).
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .examples([$($wire),+])
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

pub(crate) use open_enum;
