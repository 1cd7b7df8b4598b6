//! The one way to declare an enum whose discriminants are on-disk codes ([`crate::tensor::DType`],
//! [`crate::blob::format::Kind`]).

/// Declares a `#[repr(u8)]` enum of on-disk codes once: each `Variant = code => "name"` row (with its doc)
/// becomes a variant, an arm of `from_code` (any other code is `BlobError::$unknown { code }`), an arm of
/// `name` and an entry of `ALL` (in the rows' order).
macro_rules! code_enum {
    (
        $(#[doc = $doc:literal])*
        pub enum $ty:ident, unknown code: $unknown:ident {
            $($(#[doc = $vdoc:literal])* $var:ident = $code:literal => $name:literal,)+
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr(u8)]
        pub enum $ty {
            $($(#[doc = $vdoc])* $var = $code,)+
        }

        impl $ty {
            /// Every value, in code order.
            pub const ALL: [Self; [$($code),+].len()] = [$(Self::$var),+];

            #[doc = concat!(
                "The value for an on-disk code.\n\n# Errors\n[`BlobError::", stringify!($unknown),
                "`](crate::error::BlobError::", stringify!($unknown), ") for any code but",
                $(" ", stringify!($code),)+ "."
            )]
            pub const fn from_code(code: u8) -> Result<Self, crate::error::BlobError> {
                match code {
                    $($code => Ok(Self::$var),)+
                    _ => Err(crate::error::BlobError::$unknown { code }),
                }
            }

            #[doc = concat!("Short lowercase name:", $(" `", $name, "`",)+ ".")]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$var => $name,)+
                }
            }
        }
    };
}
