//! The one paginator of every list: a page (number, size, sort key, direction), the sort
//! applied to a boxed query with the row id as tie-break, and the exact total beside the
//! rows of the page (after crates.io's `controllers/helpers/pagination.rs`).
//!
//! Validating the caller's page parameters (bounds, allowed sort keys, error messages) is
//! the service's business (`service::list`); here a page is taken as given.
use diesel::dsl::{Asc, CountStar, Desc};
use diesel::query_dsl::methods::{LimitDsl, OffsetDsl, OrderDsl, SelectDsl};
use diesel::query_dsl::LoadQuery;
use diesel::{ExpressionMethods, QueryDsl, QueryResult, RunQueryDsl};

use super::AnyConnection;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// One page of a list: 1-based page number, rows per page, sort key (None: the list's
/// default) and direction.
#[derive(Debug, Clone)]
pub struct Page {
    pub page: i64,
    pub size: i64,
    pub sort: Option<String>,
    pub desc: bool,
}

impl Default for Page {
    fn default() -> Self {
        Page { page: 1, size: DEFAULT_PAGE_SIZE, sort: None, desc: false }
    }
}

/// The rows of one page and how many rows the whole list holds.
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub total: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.size
    }

    /// The sort key, if one was asked for.
    pub fn key(&self) -> Option<&str> {
        self.sort.as_deref()
    }

    /// Orders `q` by `col`, then by `id` so that ties keep a stable order, both in the
    /// page's direction.
    pub fn order<Q, C, I>(&self, q: Q, col: C, id: I) -> Q
    where
        C: ExpressionMethods,
        I: ExpressionMethods,
        Q: OrderDsl<(Asc<C>, Asc<I>), Output = Q> + OrderDsl<(Desc<C>, Desc<I>), Output = Q>,
    {
        if self.desc {
            OrderDsl::order(q, (col.desc(), id.desc()))
        } else {
            OrderDsl::order(q, (col.asc(), id.asc()))
        }
    }

    /// Counts every row `query()` matches, then loads this page of them in the order
    /// `sort` applies (usually through [`Page::order`]). `query` builds the filtered,
    /// selected, boxed query; it is called twice, once for the count.
    pub fn load<'q, Q, U>(
        &self,
        conn: &mut AnyConnection,
        query: impl Fn() -> Q,
        sort: impl FnOnce(Q) -> Q,
    ) -> QueryResult<Rows<U>>
    where
        Q: QueryDsl + RunQueryDsl<AnyConnection> + LimitDsl<Output = Q> + OffsetDsl<Output = Q>,
        Q: SelectDsl<CountStar> + LoadQuery<'q, AnyConnection, U>,
        <Q as SelectDsl<CountStar>>::Output: RunQueryDsl<AnyConnection> + LoadQuery<'q, AnyConnection, i64>,
    {
        let total: i64 = QueryDsl::count(query()).get_result(conn)?;
        let page = OffsetDsl::offset(LimitDsl::limit(sort(query()), self.size), self.offset());
        let rows: Vec<U> = page.load(conn)?;
        Ok(Rows { rows, total })
    }
}
