//! `/networks/…` and `/volumes/…`.

use crate::http::{ApiError, ApiResult};
use crate::router::Req;
use crate::server::State;
use std::sync::Arc;

pub async fn route(_st: Arc<State>, r: Req) -> ApiResult {
    Err(ApiError::not_implemented(format!(
        "{} through the API is not supported yet: use `oxcart {} …`",
        r.seg(0),
        r.seg(0).trim_end_matches('s')
    )))
}
