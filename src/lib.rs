//! opergroupd library.
