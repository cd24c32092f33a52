//! oxcart_seccomp
