//! oxcart_image
