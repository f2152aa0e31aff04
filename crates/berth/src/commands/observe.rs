//! `logs`, `top` and `stats`.
