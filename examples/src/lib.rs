//! Example programs; see the `examples` in this package.
