//! oxcart_container
