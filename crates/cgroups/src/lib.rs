//! oxcart_cgroups
