//! Pagination and sorting parameters shared by every list endpoint: validation of the
//! caller's parameters and the wire format of a page. The paginator itself (sorting,
//! limit/offset, total count) is `store::page`.
use serde::{Deserialize, Serialize};

use super::{invalid, Result};
pub use crate::store::page::{Page, Rows, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Raw query parameters; validated into a `Page`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct PageQuery {
    pub page: Option<String>,
    pub page_size: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
}

#[derive(Serialize)]
pub struct Paged<T: Serialize> {
    pub items: Vec<T>,
    pub total_count: i64,
    pub page: i64,
    pub page_size: i64,
}

impl PageQuery {
    pub fn validate(&self) -> Result<Page> {
        let num = |field: &str, v: &Option<String>, default: i64, max: i64| -> Result<i64> {
            match v {
                None => Ok(default),
                Some(s) => match s.parse::<i64>() {
                    Ok(n) if n >= 1 && n <= max => Ok(n),
                    _ => Err(invalid(field, format!("must be an integer from 1 to {max}"))),
                },
            }
        };
        let page = num("page", &self.page, 1, 1_000_000)?;
        let size = num("page_size", &self.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let desc = match self.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(invalid("order", "must be asc or desc")),
        };
        Ok(Page { page, size, sort: self.sort.clone(), desc })
    }
}

impl Page {
    pub fn check_sort(&self, allowed: &[&str]) -> Result<()> {
        match &self.sort {
            Some(s) if !allowed.contains(&s.as_str()) => {
                Err(invalid("sort", format!("must be one of {}", allowed.join(", "))))
            }
            _ => Ok(()),
        }
    }

    pub fn wrap<T: Serialize>(&self, items: Vec<T>, total: i64) -> Paged<T> {
        Paged { items, total_count: total, page: self.page, page_size: self.size }
    }

    /// The wire page of a store page, each row through `view`.
    pub fn view<R, T: Serialize>(&self, rows: Rows<R>, view: impl FnMut(R) -> T) -> Paged<T> {
        self.wrap(rows.rows.into_iter().map(view).collect(), rows.total)
    }
}
