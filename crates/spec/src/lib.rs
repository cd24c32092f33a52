//! oxcart_spec
