//! Pagination and sorting parameters shared by every list endpoint: validation of the
//! caller's parameters and the wire format of a page. The paginator itself (sorting,
//! limit/offset, total count) is `store::page`.
use serde::{Deserialize, Serialize};

use crate::service::{invalid, Result, Word};
pub use crate::store::page::{Page, Rows, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Raw query parameters of every list; validated into a `Page`. In the OpenAPI document
/// `sort` is a parameter of each list (each has its own keys, see http::openapi).
#[derive(Deserialize, Default, Debug, Clone, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1_000_000, default = 1)]
    pub page: Option<String>,
    /// Items per page, 1 to 200.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    pub page_size: Option<String>,
    #[param(ignore)]
    pub sort: Option<String>,
    /// Sort direction.
    #[param(value_type = Option<OrderParam>, inline)]
    pub order: Option<String>,
}

crate::service::param_schema!(OrderParam, order);

fn order() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(["asc", "desc"]))
        .default(Some("asc".into()))
        .build()
}

/// One page of a list: the items and where they stand in the whole.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Paged<T: Serialize> {
    pub items: Vec<T>,
    /// Exact number of matching items across all pages.
    #[schema(minimum = 0)]
    pub total_count: i64,
    #[schema(minimum = 1)]
    pub page: i64,
    #[schema(minimum = 0)]
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

impl PageQuery {
    /// `validate`, and `sort` must be one of the list's keys `S`.
    pub fn validate_sorted<S: Word>(&self) -> Result<Page> {
        let page = self.validate()?;
        page.check_sort::<S>()?;
        Ok(page)
    }
}

impl Page {
    /// `sort`, if given, must be one of the list's keys `S`.
    pub fn check_sort<S: Word>(&self) -> Result<()> {
        match &self.sort {
            Some(s) if !S::all().iter().any(|k| k.as_str() == s) => {
                let keys: Vec<&str> = S::all().iter().map(|k| k.as_str()).collect();
                Err(invalid("sort", format!("must be one of {}", keys.join(", "))))
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
