//! Apple's secret and record formats, pure: bytes in, values out (and back).
//! No file is opened and nothing is printed here; the callers read and write
//! through [`crate::fsio`].

pub mod kerberos;
pub mod keychain;
pub mod plist_safe;
pub mod preboot;
pub mod record;
pub mod shadowhash;
